"""The Spark runner of the botnet SQL (`sql.py`): the same statements through Spark SQL, for
national-scale feeds on a cluster; here (and in the tests) in local mode.

`QUET_SPARK_MASTER` picks the master (default `local[2]`); the event store's Parquet files are
read by Spark itself, the small relations (new events, ranges, organisations, periods) are
handed over as Arrow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from quet.botnet import sql
from quet.botnet.duck import Inputs

_SESSION: Any = None


def session() -> Any:
    """The process's SparkSession (started once: a JVM takes seconds to start)."""
    global _SESSION
    if _SESSION is None:
        from pyspark.sql import SparkSession

        _SESSION = (
            SparkSession.builder.master(os.environ.get("QUET_SPARK_MASTER", "local[2]"))
            .appName("quet-botnet")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate()
        )
        _SESSION.sparkContext.setLogLevel("ERROR")
    return _SESSION


def stop() -> None:
    global _SESSION
    if _SESSION is not None:
        _SESSION.stop()
        _SESSION = None


def _frame(spark: Any, table: pa.Table, schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    table = table.select(schema.names).cast(schema)
    if table.num_rows == 0:
        return spark.createDataFrame([], from_arrow_schema(schema))
    return spark.createDataFrame(table)


def run(inputs: Inputs, spark: Any = None) -> dict[str, pa.Table]:
    """Run every statement of `sql.statements` on Spark; returns the OUTPUTS as Arrow tables."""
    spark = spark or session()
    _frame(spark, inputs.fresh, sql.FRESH_SCHEMA).createOrReplaceTempView("fresh")
    ranges = sql.unique_ranges(inputs.ranges.select(sql.RANGE_SCHEMA.names))
    _frame(spark, ranges, sql.RANGE_SCHEMA).createOrReplaceTempView("ranges")
    _frame(spark, inputs.orgs, sql.ORG_SCHEMA).createOrReplaceTempView("orgs")
    _frame(spark, inputs.periods, sql.PERIOD_SCHEMA).createOrReplaceTempView("periods")
    if inputs.stored_files:
        base = str(Path(inputs.stored_files[0]).parent.parent)
        stored = spark.read.option("basePath", base).parquet(*inputs.stored_files)
        stored.createOrReplaceTempView("stored_raw")
        spark.sql(
            "select ip, family, cast(day as date) as day, hi, lo from stored_raw"
        ).createOrReplaceTempView("stored")
    else:
        schema = pa.schema([f for f in sql.FRESH_SCHEMA if f.name != "src"])
        _frame(spark, schema.empty_table(), schema).createOrReplaceTempView("stored")
    out: dict[str, pa.Table] = {}
    cached = []
    try:
        for name, text in sql.statements(inputs.plens()):
            frame = spark.sql(text)
            if name in sql.OUTPUTS:
                out[name] = sql.conform(name, frame.toArrow())
            else:
                frame = frame.cache()
                cached.append(frame)
                frame.createOrReplaceTempView(name)
    finally:
        for frame in cached:
            frame.unpersist()
    return out
