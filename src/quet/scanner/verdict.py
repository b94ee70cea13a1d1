"""Verdicts: what a worker saw, judged against the signature set. Pure: values in, findings out."""

from __future__ import annotations

from quet.scanner.result import Finding, Kind, ObjectScan
from quet.scanner.signatures import SignatureSet

FILENAME_MIN_SCORE = 60  # Loki's "warning" level; lower scores are notices, not findings
BOMB = "Quet.Heuristic.ArchiveBomb"


def judge_many(objs: list[ObjectScan], sigs: SignatureSet) -> list[list[Finding]]:
    """judge() for a batch, with one vectorised hash search for all of it."""
    maybe = sigs.hashes.candidates(
        [o.md5 for o in objs], [o.sha1 for o in objs], [o.sha256 for o in objs]
    )
    return [judge(obj, sigs, bool(hit)) for obj, hit in zip(objs, maybe, strict=True)]


def judge(obj: ObjectScan, sigs: SignatureSet, maybe_hash: bool = True) -> list[Finding]:
    findings: list[Finding] = []
    if maybe_hash and obj.sha256 and sigs.hashes.is_allowed(obj.md5, obj.sha1, obj.sha256):
        return findings
    if maybe_hash and obj.sha256:
        for hit in sigs.hashes.lookup(obj.md5, obj.sha1, obj.sha256, obj.size):
            findings.append(
                Finding(
                    kind=Kind.HASH,
                    name=hit.name or f"{hit.type}:{hit.value[:12]}",
                    path=obj.path,
                    indicator=f"{hit.type}:{hit.value}",
                    source=hit.source,
                    score=hit.confidence,
                    sha256=obj.sha256,
                )
            )
    for ident in obj.yara:
        namespace, _, rule = ident.partition(":")
        findings.append(
            Finding(
                kind=Kind.YARA,
                name=rule,
                path=obj.path,
                indicator=ident,
                source=sigs.rule_sources.get(namespace, namespace),
                score=obj.yara_scores.get(ident, 100),
                sha256=obj.sha256,
            )
        )
    if obj.problem.startswith("bomb"):
        findings.append(
            Finding(kind=Kind.HEURISTIC, name=BOMB, path=obj.path, detail=obj.problem, score=80)
        )
    findings.extend(match_filename(obj.path, sigs, obj.sha256))
    return findings


def match_filename(path: str, sigs: SignatureSet, sha256: str = "") -> list[Finding]:
    out = []
    for ind in sigs.filenames.match(path):
        if ind.confidence < FILENAME_MIN_SCORE:
            continue
        out.append(
            Finding(
                kind=Kind.FILENAME,
                name=ind.name or "Filename IOC",
                path=path,
                indicator=ind.value,
                source=ind.source,
                score=ind.confidence,
                sha256=sha256,
            )
        )
    return out
