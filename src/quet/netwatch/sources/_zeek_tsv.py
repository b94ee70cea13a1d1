"""Zeek's TSV writer format for the zeek source: the header state (`#separator`, `#fields`,
`#types`...), rows as dicts, and a columnar fast path that turns a block of rows into events."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import partial
from itertools import compress, repeat
from operator import is_
from typing import Any

from quet.netwatch.records import NetEvent
from quet.netwatch.sources import norm_port, parse_ts

Row = dict[str, object]
# (the Zeek field, its row value -> the event attribute); the value is None (unset), a str, or a
# list of str (set/vector fields). A converter raises ValueError/TypeError for a bad value.
Converter = Callable[[Any], object]
Spec = dict[str, tuple[str, Converter]]

_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})|\\\\")
_CACHE_MAX = 1 << 16
_PLANS_MAX = 64
# The fast path builds events positionally (a third of the cost of keywords); it is off if
# NetEvent's fields ever change order.
_ORDER = (
    *("kind", "ts", "client", "client_port", "server", "server_port", "proto", "query"),
    *("answers", "host", "url", "md5", "sha1", "sha256", "action", "source", "line"),
)
_POSITIONAL = tuple(f.name for f in fields(NetEvent)) == _ORDER
_DEFAULTS: dict[str, object] = {"client_port": 0, "server_port": 0, "ts": None}
_ARROW_MIN = 256  # rows: a smaller block is split in Python (Arrow's fixed cost)


def unescape(text: str) -> str:
    """Undo the TSV writer's escaping: `\\xHH` for separators and unprintables, `\\\\` for `\\`."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1) else "\\", text)


@dataclass
class Header:
    """The state the TSV headers set; a concatenation of logs repeats them, so they may change."""

    path: str
    sep: str = "\t"
    set_sep: str = ","
    empty: str = "(empty)"
    unset: str = "-"
    fields: list[str] | None = None
    containers: list[bool] = field(default_factory=list)
    _plan: FastPlan | None = None
    _planned: bool = False

    def directive(self, line: str) -> None:
        self._planned = False
        if line.startswith("#separator "):
            self.sep = unescape(line[len("#separator ") :]) or "\t"
            return
        key, _, value = line.partition(self.sep)
        if key == "#set_separator":
            self.set_sep = unescape(value) or ","
        elif key == "#empty_field":
            self.empty = value
        elif key == "#unset_field":
            self.unset = value
        elif key == "#path" and value:
            self.path = value
        elif key == "#fields":
            self.fields = value.split(self.sep)
            self.containers = [False] * len(self.fields)
        elif key == "#types" and self.fields is not None:
            types = value.split(self.sep)
            self.containers = [t.startswith(("set[", "vector[", "table[")) for t in types]
            self.containers += [False] * (len(self.fields) - len(self.containers))

    def value(self, index: int, raw: str) -> object:
        """A row's value of column `index` from its text: None, str, or list for containers."""
        if raw == self.unset:
            return None
        if index < len(self.containers) and self.containers[index]:
            items = [] if raw == self.empty else raw.split(self.set_sep)
            return [unescape(item) for item in items]
        return "" if raw == self.empty else unescape(raw)

    def row(self, line: str) -> Row:
        if self.fields is None:
            raise ValueError("a data line before any #fields header")
        parts = line.split(self.sep)
        if len(parts) != len(self.fields):
            raise ValueError(
                f"{len(parts)} fields, but the #fields header names {len(self.fields)}"
            )
        unset, empty, set_sep = self.unset, self.empty, self.set_sep
        row: Row = {}
        for name, raw, container in zip(self.fields, parts, self.containers, strict=True):
            if raw == unset:
                row[name] = None
            elif container:
                items = [] if raw == empty else raw.split(set_sep)
                row[name] = [unescape(item) for item in items]
            else:
                row[name] = "" if raw == empty else unescape(raw)
        return row

    def plan(self, specs: dict[str, tuple[str, Spec]]) -> FastPlan | None:
        """The fast path for the current header and log type; None when rows need `row()`."""
        if self._planned:
            return self._plan
        self._planned = True
        self._plan = None
        spec = specs.get(self.path)
        if spec is None or self.fields is None or not _POSITIONAL or len(self.sep) != 1:
            return None
        index = {name: i for i, name in enumerate(self.fields)}
        # Without a leading ts or an originator, each row's outcome needs the row path anyway.
        if self.fields[0] != "ts" or "id.orig_h" not in index or len(self.fields) < 2:
            return None
        key: tuple[object, ...] = (self.path, self.sep, self.set_sep, self.empty, self.unset)
        key += (tuple(self.fields), tuple(self.containers))
        plan = _PLANS.get(key)
        if plan is None:
            if len(_PLANS) >= _PLANS_MAX:
                _PLANS.clear()
            plan = _PLANS[key] = FastPlan(self, spec[0], spec[1], index)
        self._plan = plan
        return plan


class _Column:
    """One event attribute from one Zeek column, each distinct text converted once."""

    __slots__ = ("attr", "cache", "convert", "index", "port")

    def __init__(self, attr: str, index: int, convert: Callable[[str], object], port: bool) -> None:
        self.attr = attr
        self.index = index
        self.convert = convert
        self.cache: dict[str, object] = {}
        self.port = port  # plain digits: int() in C beats a lookup in a big dict

    def values(self, texts: list[str], bad: set[int]) -> list[Any]:
        first = texts[0]
        n = len(texts)
        # One resolver, port 53, udp, NOERROR: a column with a single value is common.
        if texts[-1] == first and texts[n >> 1] == first and texts.count(first) == n:
            refused: set[int] = set()
            vals = self._fill([None], [first], refused)
            if refused:
                bad.update(range(n))
            return vals * n
        if self.port:
            try:
                ports = list(map(int, texts))
            except ValueError:
                pass
            else:
                if min(ports) >= 0 and max(ports) <= 65535:
                    return ports
        cache = self.cache
        vals = list(map(cache.get, texts))
        if None not in vals:  # no converter returns None: a None is a text not seen yet
            return vals
        # Each new text converted once, then the column looked up again: no Python loop
        # over the rows.
        new: dict[str, Any] = {}
        for raw in set(compress(texts, map(is_, vals, repeat(None)))):
            try:
                val = self.convert(raw)
            except (ValueError, TypeError):
                val = None  # refused: the row goes the row-by-row way
            else:
                if isinstance(val, list):
                    val = tuple(val)  # shared by every row with this text: each copies it
            new[raw] = val
        if len(cache) + len(new) > _CACHE_MAX:
            cache.clear()
            cache.update(zip(texts, vals, strict=True))  # this block's known texts stay
        cache.update(new)
        vals = list(map(cache.get, texts))
        if None in vals:
            for k, val in enumerate(vals):
                if val is None:
                    bad.add(k)
                    vals[k] = ""
        return vals

    def decoded(self, texts: list[str], index: list[int], bad: set[int]) -> list[Any]:
        """The values of a dictionary-encoded column: its distinct `texts` and each row's
        `index` into them."""
        cache = self.cache
        conv = list(map(cache.get, texts))
        if None in conv:
            for k, raw in enumerate(texts):
                if conv[k] is None:
                    try:
                        val = self.convert(raw)
                    except (ValueError, TypeError):
                        continue  # refused: the rows go the row-by-row way
                    if isinstance(val, list):
                        val = tuple(val)  # shared by every row with this text: each copies it
                    if len(cache) >= _CACHE_MAX:
                        cache.clear()
                    conv[k] = cache[raw] = val
        if len(conv) == 1 and conv[0] is not None:
            return conv * len(index)
        vals = list(map(conv.__getitem__, index))
        if None in conv:
            for k, val in enumerate(vals):
                if val is None:
                    bad.add(k)
                    vals[k] = ""
        return vals

    def _fill(self, vals: list[Any], texts: list[str], bad: set[int]) -> list[Any]:
        cache = self.cache
        for k, val in enumerate(vals):
            if val is not None:
                continue
            raw = texts[k]
            val = cache.get(raw)
            if val is None:
                try:
                    val = self.convert(raw)
                except (ValueError, TypeError):
                    bad.add(k)
                    vals[k] = ""
                    continue
                if isinstance(val, list):
                    val = tuple(val)
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                cache[raw] = val
            vals[k] = val
        return vals


class FastPlan:
    """Rows to events a column at a time, with C-level maps instead of a Python loop per row.
    Rows it cannot vouch for (wrong field count, a value a converter refuses, no originator, a
    line that may be JSON or blank) are handed back for the row-by-row path, which reports them
    exactly as before."""

    def __init__(self, header: Header, kind: str, spec: Spec, index: dict[str, int]) -> None:
        # A copy: the caller's header changes with the next directive, this plan must not.
        header = Header(
            header.path,
            header.sep,
            header.set_sep,
            header.empty,
            header.unset,
            list(header.fields or ()),
            list(header.containers),
        )
        self.kind = kind
        self.sep = header.sep
        self.nfields = len(header.fields or ())
        self.value = header.value
        # Float text goes straight to a datetime unless the unset/empty markers could be numbers.
        self.float_ok = not any(_is_float(m) for m in (header.unset, header.empty))
        self.columns: list[_Column] = []
        self.constants: dict[str, object] = {}
        for attr, (name, conv) in spec.items():
            i = index.get(name)
            if i is None:  # a field this log lacks: the same value on every row
                self.constants[attr] = conv(None)
            else:
                convert = partial(_convert, header.value, i, conv)
                # int() takes what norm_port takes from a plain (not set/vector) column.
                port = conv is norm_port and not header.containers[i] and self.float_ok
                self.columns.append(_Column(attr, i, convert, port))

    def events(self, lines: list[str], first: int, where: str) -> tuple[list[NetEvent], list[int]]:
        """The events of the rows it can read, and the positions in `lines` of those it cannot."""
        sep, nf = self.sep, self.nfields
        # One split of the whole block (the separator is one character, so joining cannot make
        # or hide one) and a column is a slice: no list per row.
        counts = list(map(str.count, lines, repeat(sep)))
        at: Sequence[int]
        if counts.count(nf - 1) == len(lines):
            at = range(len(lines))
            slow: list[int] = []
        else:
            at = [k for k, c in enumerate(counts) if c == nf - 1]
            slow = [k for k, c in enumerate(counts) if c != nf - 1]
            lines = [lines[k] for k in at]
        if not lines:
            return [], slow
        bad: set[int] = set()
        attrs = self._arrow_columns(lines, bad) if len(lines) >= _ARROW_MIN else None
        if attrs is None:
            flat = sep.join(lines).split(sep)
            attrs = {"ts": self._times(flat[0::nf], bad)}
            for col in self.columns:
                attrs[col.attr] = col.values(flat[col.index :: nf], bad)
            del flat
        del lines
        clients = attrs["client"]
        if "" in clients:
            bad.update(k for k, c in enumerate(clients) if not c)
        if bad:
            slow = sorted([*slow, *(at[k] for k in bad)])
            keep = [k for k in range(len(at)) if k not in bad]
            attrs = {a: [v[k] for k in keep] for a, v in attrs.items()}
            at = [at[k] for k in keep]
        n = len(at)
        if "answers" in attrs:
            attrs["answers"] = list(map(list, attrs["answers"]))
        else:
            attrs["answers"] = [[] for _ in range(n)]
        attrs["line"] = [first + k for k in at]
        attrs["kind"] = [self.kind] * n
        attrs["source"] = [where] * n
        args = [
            attrs[a] if a in attrs else repeat(self.constants.get(a, _DEFAULTS.get(a, "")), n)
            for a in _ORDER
        ]
        return list(map(NetEvent, *args)), slow

    def _arrow_columns(self, lines: list[str], bad: set[int]) -> dict[str, list[Any]] | None:
        """The columns of a block of rows (each with the right number of separators) read by
        Arrow's CSV reader: only the columns the events need become Python values, each
        distinct text of a column converted once (dictionary-encoded). None when Arrow cannot
        read the block the way the split does (a carriage return inside a row)."""
        if self.sep in "\r\n":
            return None
        try:
            data = "\n".join(lines).encode()
        except UnicodeEncodeError:
            return None
        if b"\r" in data:
            return None
        import pyarrow as pa
        import pyarrow.csv as pcsv

        names = [f"f{i}" for i in range(self.nfields)]
        text = pa.dictionary(pa.int32(), pa.string())
        wanted = {0: pa.string(), **{c.index: text for c in self.columns}}
        try:
            table = pcsv.read_csv(
                pa.py_buffer(data),
                read_options=pcsv.ReadOptions(
                    column_names=names, use_threads=False, block_size=len(data) + 1
                ),
                parse_options=pcsv.ParseOptions(
                    delimiter=self.sep,
                    quote_char=False,
                    escape_char=False,
                    double_quote=False,
                    ignore_empty_lines=False,
                ),
                convert_options=pcsv.ConvertOptions(
                    include_columns=[names[i] for i in wanted],
                    column_types={names[i]: t for i, t in wanted.items()},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                    null_values=[],
                ),
            )
        except (pa.ArrowInvalid, ValueError):
            return None
        if table.num_rows != len(lines):
            return None
        # Through numpy: to_pylist() makes an Arrow scalar per value first.
        times = table.column(names[0]).to_numpy().tolist()
        attrs: dict[str, list[Any]] = {"ts": self._times(times, bad)}
        for col in self.columns:
            chunks = table.column(names[col.index]).chunks
            if len(chunks) != 1:
                return None
            texts = chunks[0].dictionary.to_numpy(zero_copy_only=False).tolist()
            index = chunks[0].indices.to_numpy().tolist()
            attrs[col.attr] = col.decoded(texts, index, bad)
        return attrs

    def _times(self, texts: list[str], bad: set[int]) -> list[datetime | None]:
        if self.float_ok:
            try:
                return list(map(datetime.fromtimestamp, map(float, texts), repeat(UTC)))
            except (ValueError, OverflowError, OSError):
                pass
        out: list[datetime | None] = []
        for k, raw in enumerate(texts):
            # A blank line (all separators) is the row path's to skip; JSON fails parse_ts.
            if not raw.strip():
                bad.add(k)
                out.append(None)
                continue
            try:
                out.append(parse_ts(self.value(0, raw)))
            except ValueError:
                bad.add(k)
                out.append(None)
        return out


def _convert(value: Callable[[int, str], object], index: int, conv: Converter, raw: str) -> object:
    return conv(value(index, raw))


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_PLANS: dict[tuple[object, ...], FastPlan] = {}
