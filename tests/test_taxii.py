"""The TAXII 2.1 reader against a real medallion server on 127.0.0.1 (memory backend)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from quet.errors import InputError
from quet.indicators.formats.stix import indicators_from_objects
from quet.indicators.model import Indicator, IndicatorType, IssueLog
from quet.indicators.taxii import collections, read_collection

STIX = Path(__file__).parent / "data" / "stix"
SAMPLES = ("apt1.json", "indicators-for-C2-with-COA.json", "infrastructure.json")
COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
PRIVATE = "472c94ae-3113-4e3e-a4dd-a9f4ac7471d4"
EARLY, LATE = "2020-01-01T00:00:00.000000Z", "2021-01-01T00:00:00.000000Z"
SPLIT = 40  # objects before this index were added EARLY, the rest LATE
USER, PASSWORD = "analyst", "s3cret"
ACCEPT = {"Accept": "application/taxii+json;version=2.1"}


def _objects() -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for name in SAMPLES:
        for obj in json.loads((STIX / name).read_text())["objects"]:
            seen.setdefault(obj["id"], obj)
    return list(seen.values())


def _collection(
    ident: str, title: str, objects: list[dict[str, Any]], readable: bool
) -> dict[str, Any]:
    stored, manifest = [], []
    for i, obj in enumerate(objects):
        obj = dict(obj)
        version = obj.get("modified", obj.get("created", EARLY))
        if "modified" not in obj and "created" not in obj:
            obj["_date_added"] = version  # how medallion versions observables
        stored.append(obj)
        manifest.append(
            {
                "id": obj["id"],
                "date_added": EARLY if i < SPLIT else LATE,
                "version": version,
                "media_type": "application/stix+json;version=2.1",
            }
        )
    return {
        "id": ident,
        "title": title,
        "description": "Quét test collection",
        "can_read": readable,
        "can_write": False,
        "media_types": ["application/stix+json;version=2.1"],
        "objects": stored,
        "manifest": manifest,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("medallion")
    objects = _objects()
    data = {
        "/discovery": {
            "title": "Quét test TAXII server",
            "description": "medallion with the OASIS STIX examples",
            "default": f"{base}/intel/",
            "api_roots": [f"{base}/intel/"],
        },
        "intel": {
            "information": {
                "title": "intel",
                "description": "test API root",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 10_000_000,
            },
            "status": [],
            "collections": [
                _collection(COLLECTION, "samples", objects, True),
                _collection(PRIVATE, "private", objects[:3], False),
            ],
        },
    }
    (folder / "data.json").write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(folder / "data.json"),
        },
        "users": {USER: PASSWORD},
        "taxii": {"max_page_size": 100},
    }
    (folder / "config.json").write_text(json.dumps(config))
    log = (folder / "medallion.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medallion.scripts.run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            str(folder / "config.json"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = requests.get(
                    f"{base}/taxii2/", auth=(USER, PASSWORD), headers=ACCEPT, timeout=1
                )
                if r.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(
                    "medallion did not start:\n" + (folder / "medallion.log").read_text()
                )
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _keys(inds: list[Indicator]) -> list[tuple[str, str, str, str]]:
    return [(i.type.value, i.value, i.family, i.campaign) for i in inds]


def test_collections_listed(server: str) -> None:
    assert collections(f"{server}/taxii2/", USER, PASSWORD) == [(COLLECTION, "samples")]


@pytest.mark.parametrize("per_request", [500, 7])
def test_read_collection_matches_stix_reader(server: str, per_request: int) -> None:
    issues = IssueLog()
    inds = list(
        read_collection(
            f"{server}/taxii2/", COLLECTION, USER, PASSWORD, issues=issues, per_request=per_request
        )
    )
    assert len(issues) == 0
    expected = list(indicators_from_objects(_objects(), "x", IssueLog()))
    assert _keys(inds) == _keys(expected)
    assert len(inds) == 14  # 10 from APT1, 2 Poison Ivy indicators, 2 infrastructure SCOs
    first = inds[0]
    assert (first.type, first.value, first.family) == (
        IndicatorType.CIDR,
        "223.166.0.0/15",
        "HUC Packet Transmit Tool (HTRAN)",
    )
    assert first.source == f"taxii:{server}/intel/collections/{COLLECTION}/"


def test_by_title_api_root_and_collection_url(server: str) -> None:
    by_title = list(read_collection(f"{server}/taxii2/", "samples", USER, PASSWORD))
    from_root = list(read_collection(f"{server}/intel/", None, USER, PASSWORD))
    direct = list(
        read_collection(f"{server}/intel/collections/{COLLECTION}/", None, USER, PASSWORD)
    )
    assert _keys(by_title) == _keys(from_root) == _keys(direct)
    assert len(by_title) == 14


def test_added_after(server: str) -> None:
    inds = list(
        read_collection(
            f"{server}/taxii2/",
            COLLECTION,
            USER,
            PASSWORD,
            added_after="2020-06-01T00:00:00Z",
            per_request=5,
        )
    )
    later = list(indicators_from_objects(_objects()[SPLIT:], "x", IssueLog()))
    assert _keys(inds) == _keys(later)
    assert 0 < len(inds) < 14


def test_errors(server: str) -> None:
    with pytest.raises(InputError, match="refused access"):
        list(read_collection(f"{server}/taxii2/", COLLECTION, USER, "wrong"))
    with pytest.raises(InputError, match="no collection 'nope'"):
        list(read_collection(f"{server}/taxii2/", "nope", USER, PASSWORD))
    with pytest.raises(InputError, match="cannot read TAXII objects"):
        list(read_collection(f"{server}/taxii2/", PRIVATE, USER, PASSWORD))
    with pytest.raises(InputError, match=r"no TAXII 2\.1 server"):
        list(read_collection(f"http://127.0.0.1:{_free_port()}/taxii2/", None))
