"""Importing organisations (a CSV file, or the provinces list) into the tree, within the importer's
scope; shared by POST /orgs/import, the web pages and `quet org import`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.indicators.model import IssueLog
from quet.server import orgdata
from quet.server.orgdata import OrgRecord
from quet.server.services import audit, orgs
from quet.server.services.orgs import set_owned
from quet.store.models import Organisation


@dataclass
class ImportResult:
    """What an import did: codes added and updated, and every rejected line as 'file:line: why'."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def import_csv(
    session: Session, actor: str, path: Path, scope: Organisation, *, source: str | None = None
) -> ImportResult:
    """Read `path` (see orgdata.read_org_csv) and import it under `scope`. `source` names the file
    in messages (an uploaded file's own name rather than its temporary path)."""
    issues = IssueLog()
    records = orgdata.read_org_csv(path, issues)
    if source is not None:
        shown = str(path)
        for issue in issues.issues:
            if issue.path == shown:
                issue.path = source
        for rec in records:
            rec.source = source
    return import_records(session, actor, records, scope, issues)


def import_provinces(
    session: Session, actor: str, edition: str, parent: Organisation
) -> ImportResult:
    """The provinces of `edition` ("2025": 34, "2008": 63) as children of `parent`."""
    records = orgdata.provinces(edition)
    for rec in records:
        rec.parent_code = parent.code
    return import_records(session, actor, records, parent, IssueLog())


def import_records(
    session: Session,
    actor: str,
    records: list[OrgRecord],
    scope: Organisation,
    issues: IssueLog,
) -> ImportResult:
    """Insert new organisations and update existing ones, parents first. A record without a parent
    goes under `scope`; anything that would land outside `scope`'s subtree is rejected. Issues
    already in `issues` (from reading the file) are reported as rejected lines too."""
    known = {
        code: path
        for code, path in session.execute(sa.select(Organisation.code, Organisation.path)).all()
    }
    ordered = orgdata.check_tree(records, frozenset(known), issues)
    result = ImportResult()
    added: dict[str, Organisation] = {}
    for rec in ordered:
        where = f"{rec.source}:{rec.line}" if rec.line else rec.source
        parent_code = rec.parent_code or (scope.code if rec.code != scope.code else "")
        if rec.code in known:
            org = orgs.by_code(session, rec.code)
            assert org is not None
            if not org.path.startswith(scope.path):
                result.rejected.append(f"{where}: {rec.code!r} exists outside your organisation")
                continue
            current_parent = _parent_code(session, org)
            if rec.parent_code and rec.parent_code != current_parent:
                result.rejected.append(
                    f"{where}: {rec.code!r} is under {current_parent!r}, not {rec.parent_code!r}"
                    " (moving organisations is not done by import)"
                )
                continue
            changed = apply_record(org, rec)
            if changed:
                org.updated_at = datetime.now(UTC)
                result.updated.append(rec.code)
                audit.record(
                    session, actor, "org.update", f"org:{rec.code}", org.id, {"fields": changed}
                )
            else:
                result.unchanged.append(rec.code)
            continue
        parent = added.get(parent_code) or orgs.by_code(session, parent_code)
        if parent is None or not parent.path.startswith(scope.path):
            result.rejected.append(
                f"{where}: parent {parent_code!r} of {rec.code!r} is outside your organisation"
            )
            continue
        org = orgs.create(
            session,
            rec.code,
            rec.name,
            rec.kind,
            parent,
            contact_name=rec.contact_name,
            contact_email=rec.contact_email,
            contact_phone=rec.contact_phone,
            sector=rec.sector or "",
            ip_ranges=rec.ip_ranges,
            domains=rec.domains,
            asns=rec.asns,
        )
        added[rec.code] = org
        result.added.append(rec.code)
        audit.record(session, actor, "org.create", f"org:{rec.code}", org.id, {"import": True})
    result.rejected[:0] = [str(issue) for issue in issues.issues]
    if issues.count > len(issues.issues):
        result.rejected.append(f"… and {issues.count - len(issues.issues)} more issues")
    session.flush()
    return result


def _parent_code(session: Session, org: Organisation) -> str:
    parent = orgs.parent(session, org)
    return parent.code if parent else ""


def apply_record(org: Organisation, rec: OrgRecord) -> list[str]:
    """Copy a record's fields onto `org`; returns the names of the fields that changed."""
    changed: list[str] = []
    for name in ("name", "kind", "contact_name", "contact_email", "contact_phone", "sector"):
        value = getattr(rec, name)
        if value is not None and getattr(org, name) != value:
            setattr(org, name, value)
            changed.append(name)
    if set_owned(org, rec.ip_ranges, rec.domains, rec.asns):
        changed.append("networks")
    return changed
