"""Suricata outputs (write-only): datasets (domains as base64 `type string` lines, addresses as
`type ipv4` / `type ip` lines, with a rules file using them) and IP reputation (iprep) files."""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path

from quet.errors import InputError
from quet.indicators.formats import Format, register
from quet.indicators.model import (
    Indicator,
    IndicatorType,
    normalise_cidr,
    normalise_domain,
    normalise_ip,
)

SID_BASE = 1_900_000  # in the 1,000,000-1,999,999 range kept for local rules
MAX_CATEGORIES = 60  # Suricata's hard limit on iprep category ids
DEFAULT_CATEGORY = "Quet"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def dataset_paths(path: Path) -> dict[str, Path]:
    """The files written for `path` (e.g. quet.lst): domains -> quet.lst, ipv4 -> quet-ipv4.lst,
    ip (IPv6) -> quet-ip.lst, rules -> quet.rules, all in the same folder."""
    p = Path(path)
    suffix = p.suffix or ".lst"
    return {
        "domains": p,
        "ipv4": p.with_name(f"{p.stem}-ipv4{suffix}"),
        "ip": p.with_name(f"{p.stem}-ip{suffix}"),
        "rules": p.with_name(f"{p.stem}.rules"),
    }


def _dataset_name(stem: str, kind: str) -> str:
    base = _NAME_CHARS.sub("-", stem).strip("-") or "quet"
    return f"{base}-{kind}"


def _rules(stem: str, files: dict[str, Path], counts: dict[str, int], sid_base: int) -> list[str]:
    """Rules that look up DNS queries, HTTP hosts, TLS SNI and IP addresses in the datasets.

    Relative `load` names are resolved by Suricata against the rules file's folder."""
    rules: list[str] = []
    sid = sid_base
    if counts["domains"]:
        name = _dataset_name(stem, "domains")
        ds = f"dataset:isset,{name},type string,load {files['domains'].name}"
        for proto, buffer, what in (
            ("dns", "dns.query", "DNS query for"),
            ("http", "http.host", "HTTP request to"),
            ("tls", "tls.sni", "TLS connection to"),
        ):
            sid += 1
            rules.append(
                f'alert {proto} any any -> any any (msg:"Quet intel: {what} a listed domain"; '
                f"{buffer}; {ds}; classtype:trojan-activity; sid:{sid}; rev:1;)"
            )
    for kind, label in (("ipv4", "IPv4"), ("ip", "IPv6")):
        if not counts[kind]:
            continue
        name = _dataset_name(stem, kind)
        ds = f"dataset:isset,{name},type {kind},load {files[kind].name}"
        sid += 1
        rules.append(
            f'alert ip $HOME_NET any -> any any (msg:"Quet intel: traffic to a listed {label} '
            f'address"; ip.dst; {ds}; classtype:trojan-activity; sid:{sid}; rev:1;)'
        )
        sid += 1
        rules.append(
            f'alert ip any any -> $HOME_NET any (msg:"Quet intel: traffic from a listed {label} '
            f'address"; ip.src; {ds}; classtype:trojan-activity; sid:{sid}; rev:1;)'
        )
    return rules


def write_datasets(indicators: Iterable[Indicator], path: Path, *, sid_base: int = SID_BASE) -> int:
    """Write Suricata datasets beside `path` (see dataset_paths) and a rules file using them.

    Domains go base64-encoded into a `type string` set (matched on dns.query, http.host and
    tls.sni), IPv4 addresses into `type ipv4`, IPv6 into `type ip`. CIDRs, URLs and hashes are
    skipped (datasets hold exact values). Returns the number of dataset entries written."""
    values: dict[str, set[str]] = {"domains": set(), "ipv4": set(), "ip": set()}
    for ind in indicators:
        try:
            if ind.type is IndicatorType.DOMAIN:
                domain = normalise_domain(ind.value)
                values["domains"].add(base64.b64encode(domain.encode("ascii")).decode("ascii"))
            elif ind.type in (IndicatorType.IPV4, IndicatorType.IPV6):
                ip_kind, ip = normalise_ip(ind.value)
                values["ipv4" if ip_kind is IndicatorType.IPV4 else "ip"].add(ip)
        except InputError:
            continue
    files = dataset_paths(path)
    counts = {k: len(v) for k, v in values.items()}
    for kind, items in values.items():
        if kind != "domains" and not items:
            files[kind].unlink(missing_ok=True)  # an older export's list would be stale
            continue
        with files[kind].open("w", encoding="ascii", newline="\n") as fh:
            fh.writelines(f"{v}\n" for v in _sorted(kind, items))
    rules = _rules(Path(path).stem, files, counts, sid_base)
    with files["rules"].open("w", encoding="ascii", newline="\n") as fh:
        fh.write("# Quet intel: Suricata rules for the datasets beside this file\n")
        fh.writelines(f"{r}\n" for r in rules)
    return sum(counts.values())


def _sorted(kind: str, items: set[str]) -> list[str]:
    if kind == "domains":
        return sorted(items)
    return sorted(items, key=ipaddress.ip_address)


def iprep_categories_path(path: Path) -> Path:
    """The categories file written beside a reputation file: quet.list -> quet.categories.txt."""
    p = Path(path)
    return p.with_name(f"{p.stem}.categories.txt")


def _category_name(text: str) -> str:
    return _NAME_CHARS.sub("_", text).strip("_")[:32]


def _score(confidence: int) -> int:
    """A confidence 0-100 as an iprep score 1-127 (0 would mean "no data")."""
    return min(max(round(confidence * 127 / 100), 1), 127)


def write_iprep(
    indicators: Iterable[Indicator], path: Path, *, category: str = DEFAULT_CATEGORY
) -> int:
    """Write a Suricata IP reputation file `ip,category,score` and its categories file
    (`id,short name,description`, see iprep_categories_path). Every address or network is
    in category 1 (`category`); its family, if any, adds it to a family category (ids 2-60,
    families in name order; past 59 families only category 1). Returns the lines written."""
    scores: dict[str, int] = {}
    families: dict[str, dict[str, int]] = {}
    for ind in indicators:
        try:
            if ind.type in (IndicatorType.IPV4, IndicatorType.IPV6):
                net = normalise_ip(ind.value)[1]
            elif ind.type is IndicatorType.CIDR:
                net = normalise_cidr(ind.value)
            else:
                continue
        except InputError:
            continue
        score = _score(ind.confidence)
        scores[net] = max(scores.get(net, 0), score)
        fam = _category_name(ind.family)
        if fam and fam != _category_name(category):
            per = families.setdefault(fam, {})
            per[net] = max(per.get(net, 0), score)
    main = _category_name(category) or DEFAULT_CATEGORY
    cat_ids = {main: 1}
    for fam in sorted(families)[: MAX_CATEGORIES - 1]:
        cat_ids[fam] = len(cat_ids) + 1
    with iprep_categories_path(path).open("w", encoding="ascii", newline="\n") as fh:
        for name, cid in cat_ids.items():
            desc = "Quet intel: all listed addresses" if cid == 1 else f"Quet intel: {name}"
            fh.write(f"{cid},{name},{desc}\n")
    lines = [(net, 1, s) for net, s in scores.items()]
    for fam, per in families.items():
        if fam in cat_ids:
            lines.extend((net, cat_ids[fam], s) for net, s in per.items())
    lines.sort(key=lambda x: (_net_key(x[0]), x[1]))
    with Path(path).open("w", encoding="ascii", newline="\n") as fh:
        fh.writelines(f"{net},{cid},{s}\n" for net, cid, s in lines)
    return len(lines)


def _net_key(net: str) -> tuple[int, int, int]:
    n = ipaddress.ip_network(net)
    return (n.version, int(n.network_address), n.prefixlen)


def _never(head: bytes, name: str) -> bool:
    return False  # output formats are chosen by name, never detected


SURICATA_DATASET = register(
    Format(
        "suricata-dataset",
        "Suricata datasets (output): domains as base64 `type string`, IPv4 `type ipv4`, "
        "IPv6 `type ip` lists and a .rules file using them",
        (".lst",),
        _never,
        None,
        write_datasets,
    )
)
SURICATA_IPREP = register(
    Format(
        "suricata-iprep",
        "Suricata IP reputation (output): ip,category,score lines and a categories file",
        (".list",),
        _never,
        None,
        write_iprep,
    )
)
