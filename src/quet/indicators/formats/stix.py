"""STIX 2.1 JSON: indicators (their STIX patterns parsed by the stix2 library) and the cyber
observables a bundle points at, read as Indicators; Indicators written back as a valid bundle."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quet.errors import InputError
from quet.indicators.filenames import compile_ioc
from quet.indicators.formats import Format, register
from quet.indicators.model import Indicator, IndicatorType, IssueLog, make

DEFAULT_CONFIDENCE = 50
# Labels a producer may use to name a family when the bundle has no malware object.
_FAMILY_LABELS = ("malware-family:", "malware_family:", "family:", "malware:")
_HASH_KEYS = {"MD5": IndicatorType.MD5, "SHA1": IndicatorType.SHA1, "SHA256": IndicatorType.SHA256}
_ACTOR_TYPES = ("campaign", "intrusion-set", "threat-actor")
_SCO_TYPES = ("ipv4-addr", "ipv6-addr", "domain-name", "url", "file")
_ID_KEY = re.compile(r'"id"\s*:\s*"([^"\\]{1,200})"')
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'", re.DOTALL)
_DQ_KEY = re.compile(r'(:[A-Za-z0-9_.\-]*\.)"([A-Za-z0-9_\-]+)"')

Obj = Mapping[str, Any]


# --- patterns ------------------------------------------------------------------------------


def filename_regex(name: str) -> str:
    """The filename IOC regex matching exactly this file name (as the last path component)."""
    return r"(?:^|[\\/])" + re.escape(name) + "$"


def exact_filename(regex: str) -> str | None:
    """The file name a filename_regex() stands for, or None when the regex is another one."""
    prefix = r"(?:^|[\\/])"
    if not (regex.startswith(prefix) and regex.endswith("$")):
        return None
    body = regex[len(prefix) : -1]
    name = _UNESCAPE.sub(r"\1", body)
    return name if filename_regex(name) == regex else None


def _name_regex(regex: str) -> str:
    return r"(?:^|[\\/])" + regex[1:] if regex.startswith("^") else regex


def _literals(text: str) -> list[str]:
    """The string constants of a comparison's right-hand side: 'x' or ('x', 'y')."""
    return [_UNESCAPE.sub(r"\1", m) for m in _STRING.findall(text)]


def _comparison(
    obj_type: str, path: list[str], operator: str, rhs: str
) -> list[tuple[IndicatorType, str]]:
    """(type, raw value) pairs one comparison asserts; [] when it is not one we match on."""
    if operator.startswith("NOT") or operator not in ("=", "IN", "ISSUBSET", "MATCHES"):
        return []
    values = _literals(rhs)
    if obj_type in ("ipv4-addr", "ipv6-addr") and path == ["value"]:
        if operator == "ISSUBSET":
            return [(IndicatorType.CIDR, v) for v in values]
        if operator == "MATCHES":
            return []
        # make() re-types IPV4 to IPV6 when the address is one.
        return [(IndicatorType.CIDR if "/" in v else IndicatorType.IPV4, v) for v in values]
    if obj_type == "file" and path == ["name"]:
        if operator == "MATCHES":
            # STIX matches the name; our filename IOCs are searched in the whole path.
            return [(IndicatorType.FILENAME, _name_regex(v)) for v in values]
        if operator in ("=", "IN"):
            return [(IndicatorType.FILENAME, filename_regex(v)) for v in values]
        return []
    if operator not in ("=", "IN"):
        return []
    if obj_type == "domain-name" and path == ["value"]:
        return [(IndicatorType.DOMAIN, v) for v in values]
    if obj_type == "url" and path == ["value"]:
        return [(IndicatorType.URL, v) for v in values]
    if obj_type == "file" and len(path) == 2 and path[0] == "hashes":
        kind = _HASH_KEYS.get(path[1].strip("'\"").upper().replace("-", "").replace("_", ""))
        return [(kind, v) for v in values] if kind else []
    return []


def _parse(pattern: str) -> Any:
    # Imported here: the pattern grammar (ANTLR) and stix2 cost ~150 ms, which every
    # `quet` command would otherwise pay at start-up just for the registry.
    from stix2patterns.v20.pattern import Pattern as Pattern20
    from stix2patterns.v21.pattern import Pattern as Pattern21

    errors: list[str] = []
    for parser in (Pattern21, Pattern20):
        try:
            return parser(pattern)
        except Exception as exc:  # the ANTLR-based parser raises many kinds
            errors.append(str(exc).splitlines()[-1] if str(exc) else type(exc).__name__)
    raise ValueError(f"STIX pattern does not parse: {errors[0][:200]}")


def pattern_values(pattern: str) -> list[tuple[IndicatorType, str]]:
    """Every (type, raw value) a STIX pattern compares an observable to.

    OR-ed comparisons are alternatives and AND-ed ones must all hold; either way each named
    observable is evidence on its own, so both yield every comparison. Negated comparisons
    and those we cannot match on (email, x509, LIKE, ...) are left out. Raises ValueError when
    the pattern does not parse.
    """
    # The grammar quotes path keys with ' only; some producers write file:hashes."SHA-256".
    pattern = _DQ_KEY.sub(r"\1'\2'", pattern)
    tree = _parse(pattern)
    try:
        comparisons = tree.inspect().comparisons
    except Exception as exc:  # inspect() walks a tree it did not validate
        raise ValueError(f"STIX pattern not understood: {exc}") from exc
    out: list[tuple[IndicatorType, str]] = []
    for obj_type, items in comparisons.items():
        for path, operator, rhs in items:
            keys = [str(p) for p in path]
            out.extend(_comparison(str(obj_type), keys, str(operator), str(rhs)))
    return out


# --- objects -------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _confidence(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100:
        return value
    return DEFAULT_CONFIDENCE


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


class _Graph:
    """Relationships of one set of objects: what indicates what, what is referenced."""

    def __init__(self, objects: list[Obj]) -> None:
        self.by_id: dict[str, Obj] = {}
        self.rels: list[tuple[str, str, str]] = []  # (source, type, target)
        self.referenced: set[str] = set()
        for obj in objects:
            if isinstance(obj.get("id"), str):
                self.by_id[obj["id"]] = obj
        for obj in objects:
            if obj.get("type") == "relationship":
                src, rtype, dst = obj.get("source_ref"), obj.get("relationship_type"), None
                dst = obj.get("target_ref")
                if isinstance(src, str) and isinstance(dst, str) and isinstance(rtype, str):
                    self.rels.append((src, rtype, dst))
                    self.referenced.update((src, dst))
                continue
            for key, value in obj.items():
                if key.endswith("_ref") and isinstance(value, str):
                    self.referenced.add(value)
                elif key.endswith("_refs") and isinstance(value, list):
                    self.referenced.update(v for v in value if isinstance(v, str))

    def names(self, ids: Iterable[str], types: tuple[str, ...]) -> list[str]:
        out = []
        for ref in ids:
            obj = self.by_id.get(ref, {})
            name = obj.get("name")
            if obj.get("type") in types and isinstance(name, str) and name.strip():
                out.append(name.strip())
        return sorted(set(out))

    def targets(self, src: str, *rtypes: str) -> list[str]:
        return [d for s, r, d in self.rels if s == src and r in rtypes]

    def sources(self, dst: str, *rtypes: str) -> list[str]:
        return [s for s, r, d in self.rels if d == dst and r in rtypes]

    def related(self, node: str) -> tuple[str, str]:
        """(family, campaign) of an object from the objects it indicates, or that use or
        control the infrastructure it belongs to."""
        near = self.targets(node, "indicates")
        for infra in self.sources(node, "consists-of"):
            near += self.sources(infra, "controls", "uses")
            near += self.targets(infra, "controls", "indicates")
        for ind in self.sources(node, "based-on"):
            near += self.targets(ind, "indicates")
        families = self.names(near, ("malware",))
        actors = self.names(near, _ACTOR_TYPES)
        return (families[0] if families else ""), (actors[0] if actors else "")


def _line_index(text: str) -> dict[str, int]:
    """The line of each object's "id" key in the file, for messages and Indicator.line."""
    return line_index(text, _ID_KEY)


def line_index(text: str, key: re.Pattern[str]) -> dict[str, int]:
    """The line where each match of `key` (its group 1: an id) first appears in `text`."""
    lines: dict[str, int] = {}
    line, pos = 1, 0
    for m in key.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        lines.setdefault(m.group(1), line)
    return lines


def _from_indicator(
    obj: Obj, graph: _Graph, source: str, line: int, issues: IssueLog
) -> Iterator[Indicator]:
    pattern = obj.get("pattern")
    if obj.get("pattern_type", "stix") != "stix" or not isinstance(pattern, str):
        return
    ident = str(obj.get("id", "indicator"))
    try:
        values = pattern_values(pattern)
    except ValueError as exc:
        issues.add(source, line, f"{ident}: {exc}")
        return
    labels = _strings(obj.get("labels"))
    family, campaign = graph.related(ident)
    if not family:
        for label in labels:
            if label.lower().startswith(_FAMILY_LABELS):
                family = label.split(":", 1)[1].strip().strip('"')
                break
    fields: dict[str, Any] = {
        "name": obj["name"] if isinstance(obj.get("name"), str) else "",
        "family": family,
        "campaign": campaign,
        "source": source,
        "confidence": _confidence(obj.get("confidence")),
        "first_seen": _time(obj.get("valid_from")),
        "expires": _time(obj.get("valid_until")),
        "tags": _dedupe(labels + _strings(obj.get("indicator_types"))),
        "line": line,
    }
    for kind, raw in values:
        try:
            if kind is IndicatorType.FILENAME:
                compile_ioc(raw)
            yield make(kind, raw, **fields)
        except InputError as exc:
            issues.add(source, line, f"{ident}: {exc}")
        except re.error as exc:
            issues.add(source, line, f"{ident}: file name regex does not compile: {exc}")


def _sco_values(obj: Obj) -> list[tuple[IndicatorType, str]]:
    kind = obj.get("type")
    value = obj.get("value")
    if kind in ("ipv4-addr", "ipv6-addr") and isinstance(value, str):
        return [(IndicatorType.CIDR if "/" in value else IndicatorType.IPV4, value)]
    if kind == "domain-name" and isinstance(value, str):
        return [(IndicatorType.DOMAIN, value)]
    if kind == "url" and isinstance(value, str):
        return [(IndicatorType.URL, value)]
    hashes = obj.get("hashes")
    if kind == "file" and isinstance(hashes, dict):
        out = []
        for key, digest in hashes.items():
            hkind = _HASH_KEYS.get(str(key).upper().replace("-", "").replace("_", ""))
            if hkind and isinstance(digest, str):
                out.append((hkind, digest))
        return out
    return []


def _infrastructure(ident: str, graph: _Graph) -> dict[str, Any]:
    """Name, tags and first/last seen of the infrastructure an observable belongs to."""
    for infra_id in graph.sources(ident, "consists-of"):
        infra = graph.by_id.get(infra_id, {})
        if infra.get("type") != "infrastructure":
            continue
        return {
            "name": infra["name"] if isinstance(infra.get("name"), str) else "",
            "tags": _dedupe(_strings(infra.get("infrastructure_types"))),
            "first_seen": _time(infra.get("first_seen")),
            "last_seen": _time(infra.get("last_seen")),
        }
    return {}


def _sco_wanted(ident: str, graph: _Graph) -> bool:
    """An observable is intel when an indicator is based on it, it indicates something, it is
    part of an infrastructure, or nothing else mentions it (a bare list of observables).
    Observables only mentioned as context (observed-data, e-mail parts) are not."""
    if ident not in graph.referenced:
        return True
    return any(
        (d == ident and r in ("based-on", "consists-of")) or (s == ident and r == "indicates")
        for s, r, d in graph.rels
    )


def indicators_from_objects(
    objects: Iterable[Obj], source: str, issues: IssueLog, lines: Mapping[str, int] | None = None
) -> Iterator[Indicator]:
    """Indicators from STIX objects (one bundle, or one TAXII collection): patterns of
    `indicator` objects first, then observables not already named by a pattern."""
    objs = [o for o in objects if isinstance(o, Mapping)]
    graph = _Graph(objs)
    lines = lines or {}
    seen: set[tuple[str, str]] = set()
    for obj in objs:
        if obj.get("type") == "indicator":
            line = lines.get(str(obj.get("id")), 0)
            for ind in _from_indicator(obj, graph, source, line, issues):
                seen.add(ind.key())
                yield ind
    for obj in objs:
        ident = obj.get("id")
        if obj.get("type") not in _SCO_TYPES or not isinstance(ident, str):
            continue
        if not _sco_wanted(ident, graph):
            continue
        line = lines.get(ident, 0)
        family, campaign = graph.related(ident)
        fields = _infrastructure(ident, graph)
        for kind, raw in _sco_values(obj):
            try:
                ind = make(
                    kind, raw, family=family, campaign=campaign, source=source, line=line, **fields
                )
            except InputError as exc:
                issues.add(source, line, f"{ident}: {exc}")
                continue
            if ind.key() not in seen:
                seen.add(ind.key())
                yield ind


def read_stix(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    """Indicators of a STIX 2.x JSON file: a bundle, a single object or a list of objects."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as exc:
        raise InputError("no such file", path=source) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=source) from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        issues.add(source, exc.lineno, f"not JSON: {exc.msg}")
        return
    except RecursionError:
        issues.add(source, 0, "JSON nested too deeply")
        return
    if isinstance(doc, dict) and doc.get("type") == "bundle":
        objects = doc.get("objects")
    elif isinstance(doc, dict):
        objects = [doc]
    else:
        objects = doc
    if not isinstance(objects, list):
        issues.add(source, 1, "not a STIX bundle, object or list of objects")
        return
    yield from indicators_from_objects(objects, source, issues, _line_index(text))


_BUNDLE = re.compile(rb'"type"\s*:\s*"bundle"')
_STIX_OBJECT = re.compile(rb'"type"\s*:\s*"(indicator|ipv4-addr|ipv6-addr|domain-name|url)"')
_STIX_ID = re.compile(rb'"id"\s*:\s*"[a-z0-9-]+--[0-9a-f-]{36}"')


def _sniff(head: bytes, name: str) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith((b"{", b"[")):
        return False
    if _BUNDLE.search(text) and (b'"objects"' in text or b'"spec_version"' in text):
        return True
    return bool(_STIX_OBJECT.search(text) and _STIX_ID.search(text))


# --- writing -------------------------------------------------------------------------------


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pattern_for(ind: Indicator) -> str | None:
    """The STIX pattern of one Indicator; None for types STIX patterns cannot hold (YARA)."""
    kind = ind.type
    if kind is IndicatorType.CIDR:
        obj = "ipv6-addr" if ":" in ind.value else "ipv4-addr"
        return f"[{obj}:value ISSUBSET {_quote(ind.value)}]"
    simple = {
        IndicatorType.IPV4: "ipv4-addr:value",
        IndicatorType.IPV6: "ipv6-addr:value",
        IndicatorType.DOMAIN: "domain-name:value",
        IndicatorType.URL: "url:value",
        IndicatorType.MD5: "file:hashes.MD5",
        IndicatorType.SHA1: "file:hashes.'SHA-1'",
        IndicatorType.SHA256: "file:hashes.'SHA-256'",
    }
    if kind in simple:
        return f"[{simple[kind]} = {_quote(ind.value)}]"
    if kind is IndicatorType.FILENAME:
        name = exact_filename(ind.value)
        if name is not None:
            return f"[file:name = {_quote(name)}]"
        return f"[file:name MATCHES {_quote(ind.value)}]"
    return None


def bundle_objects(indicators: Iterable[Indicator]) -> list[Any]:
    """stix2 objects for the indicators: one Indicator SDO each, one Malware SDO per family and
    one Campaign per campaign, joined by `indicates` relationships. Indicator.last_seen has no
    place in a STIX indicator and is not written."""
    import stix2

    out: list[Any] = []
    related: dict[tuple[str, str], Any] = {}
    now = datetime.now(UTC)
    for ind in indicators:
        pattern = pattern_for(ind)
        if pattern is None:
            continue
        valid_from = ind.first_seen or now
        props: dict[str, Any] = {
            "pattern": pattern,
            "pattern_type": "stix",
            "valid_from": valid_from,
            "confidence": max(0, min(ind.confidence, 100)),
        }
        if ind.name:
            props["name"] = ind.name
        if ind.tags:
            props["labels"] = list(ind.tags)
        if ind.expires is not None and ind.expires > valid_from:
            props["valid_until"] = ind.expires
        sdo = stix2.v21.Indicator(**props)
        out.append(sdo)
        for kind, name in (("malware", ind.family), ("campaign", ind.campaign)):
            if not name:
                continue
            target = related.get((kind, name))
            if target is None:
                if kind == "malware":
                    target = stix2.v21.Malware(name=name, is_family=True)
                else:
                    target = stix2.v21.Campaign(name=name)
                related[(kind, name)] = target
                out.append(target)
            out.append(stix2.v21.Relationship(sdo, "indicates", target))
    return out


def write_stix(indicators: Iterable[Indicator], path: Path) -> int:
    """Write a STIX 2.1 bundle; returns the number of indicators written (YARA is left out)."""
    import stix2

    objects = bundle_objects(indicators)
    bundle = stix2.v21.Bundle(objects=objects) if objects else stix2.v21.Bundle()
    Path(path).write_text(bundle.serialize(pretty=True) + "\n", encoding="utf-8")
    return sum(1 for o in objects if o.type == "indicator")


STIX = register(
    Format(
        "stix",
        "STIX 2.1 JSON bundle: indicator patterns (IPs, CIDRs, domains, URLs, file hashes and "
        "names) and the observables they point at",
        (".json", ".stix"),
        _sniff,
        read_stix,
        write_stix,
    )
)
