"""The services behind organisation changes, passwords and sign-in, called directly (the API and
the web pages only map their answers and errors), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server import security
from quet.server.deps import Principal
from quet.server.services import orgs, users
from quet.server.services.errors import Forbidden, NotFound
from quet.store.models import AuditEntry, Organisation, User
from server_fixtures import make_org, make_user

pytest_plugins = ["server_fixtures"]  # server_app, db_session


def principal(session: Session, username: str) -> Principal:
    user = users.by_username(session, username)
    assert user is not None
    org = session.get(Organisation, user.org_id)
    assert org is not None
    return Principal(user, org)


def entries(session: Session, action: str) -> list[AuditEntry]:
    return list(
        session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action).order_by("id"))
    )


def test_update_changes_fields_and_networks_with_one_audit_entry(db_session: Session) -> None:
    make_org(db_session, "P1", kind="province", ip_ranges=("10.1.0.0/16",))
    make_user(db_session, "lan", "officer", "P1")
    org = orgs.by_code(db_session, "P1")
    assert org is not None
    changes = orgs.OrgChanges(
        contact_phone="0206 1", ip_ranges=["10.1.0.0/16", "2001:db8::/32"], asns=[64500]
    )
    orgs.update(db_session, principal(db_session, "lan"), org, changes)
    db_session.commit()
    db_session.expire_all()
    org = orgs.by_code(db_session, "P1")
    assert org is not None
    assert org.contact_phone == "0206 1" and org.kind == "province"  # None left kind alone
    assert sorted(n.cidr for n in org.networks) == ["10.1.0.0/16", "2001:db8::/32"]
    assert [a.asn for a in org.asns] == [64500]
    (entry,) = entries(db_session, "org.update")
    assert entry.actor == "user:lan" and entry.target == "org:P1"
    assert entry.detail == {"fields": ["contact_phone", "networks"]}
    # The same values again change nothing and record nothing.
    orgs.update(db_session, principal(db_session, "lan"), org, changes)
    db_session.commit()
    assert len(entries(db_session, "org.update")) == 1


def test_update_refuses_viewers_and_a_non_national_root(db_session: Session) -> None:
    make_org(db_session, "P1", kind="province")
    make_user(db_session, "hoa", "viewer", "P1")
    org = orgs.by_code(db_session, "P1")
    assert org is not None
    with pytest.raises(Forbidden):
        orgs.update(db_session, principal(db_session, "hoa"), org, orgs.OrgChanges(name="X"))
    assert org.name != "X"
    root = orgs.root(db_session)
    assert root is not None
    admin = principal(db_session, "admin")
    with pytest.raises(InputError, match="national"):
        orgs.update(db_session, admin, root, orgs.OrgChanges(kind="province"))
    assert root.kind == "national"
    orgs.update(db_session, admin, root, orgs.OrgChanges(kind="national", name="Gốc"))
    assert root.name == "Gốc"


def test_visible_hides_organisations_outside_the_scope(db_session: Session) -> None:
    make_org(db_session, "P1", kind="province")
    make_org(db_session, "P2", kind="province")
    make_user(db_session, "lan", "officer", "P1")
    lan = principal(db_session, "lan")
    assert orgs.visible(db_session, lan, "P1").code == "P1"
    assert orgs.visible_or_own(db_session, lan, "").code == "P1"
    for code in ("P2", "VN", "NOPE"):
        with pytest.raises(NotFound):
            orgs.visible(db_session, lan, code)


@pytest.mark.parametrize(
    ("old", "new", "confirm", "reason"),
    [
        ("wrong-password", "a-new-long-password", None, "wrong"),
        (None, "short", None, "short"),
        (None, None, None, "same"),
        (None, "a-new-long-password", "another-long-password", "mismatch"),
    ],
)
def test_change_password_refusals(
    db_session: Session, old: str | None, new: str | None, confirm: str | None, reason: str
) -> None:
    make_org(db_session, "P1")
    first = make_user(db_session, "lan", "officer", "P1")
    user = users.by_username(db_session, "lan")
    assert user is not None
    before = user.password_hash
    with pytest.raises(users.PasswordRejected) as caught:
        users.change_password(db_session, user, old or first, new or first, confirm=confirm)
    assert caught.value.reason == reason
    assert user.password_hash == before and not entries(db_session, "user.password")


def test_change_password(db_session: Session) -> None:
    make_org(db_session, "P1")
    first = make_user(db_session, "lan", "officer", "P1")
    user = users.by_username(db_session, "lan")
    assert user is not None
    user.must_change_password = True
    users.change_password(db_session, user, first, "a-new-long-password", confirm=None)
    db_session.commit()
    assert users.authenticate(db_session, "lan", "a-new-long-password") is not None
    assert users.authenticate(db_session, "lan", first) is None
    assert not user.must_change_password
    (entry,) = entries(db_session, "user.password")
    assert entry.actor == entry.target == "user:lan"


def test_reset_password_within_scope_and_rights(db_session: Session) -> None:
    make_org(db_session, "P1")
    make_org(db_session, "P2")
    make_user(db_session, "lan", "officer", "P1")
    make_user(db_session, "hoa", "viewer", "P1")
    make_user(db_session, "minh", "viewer", "P2")
    make_user(db_session, "an", "admin", "P1")
    lan = principal(db_session, "lan")
    with pytest.raises(NotFound):
        users.reset_password(db_session, lan, "minh")  # another province: not told it exists
    with pytest.raises(NotFound):
        users.reset_password(db_session, lan, "nobody")
    with pytest.raises(Forbidden):
        users.reset_password(db_session, principal(db_session, "hoa"), "lan")  # a viewer
    with pytest.raises(Forbidden):
        users.reset_password(db_session, lan, "an")  # an officer cannot make administrators
    password = users.reset_password(db_session, lan, "hoa")
    db_session.commit()
    hoa = db_session.scalars(sa.select(User).where(User.username == "hoa")).one()
    assert hoa.must_change_password and security.verify_password(hoa.password_hash, password)
    (entry,) = entries(db_session, "user.reset")
    assert entry.actor == "user:lan" and entry.target == "user:hoa"


def test_sign_in_audits_both_outcomes(db_session: Session) -> None:
    make_org(db_session, "P1")
    password = make_user(db_session, "lan", "officer", "P1")
    assert users.sign_in(db_session, "lan", "not-it", 8, "127.0.0.1") is None
    found = users.sign_in(db_session, "lan", password, 8, "127.0.0.1")
    assert found is not None
    user, token, row = found
    db_session.commit()
    assert user.username == "lan" and row.ip == "127.0.0.1"
    session_user = users.session_user(db_session, token)
    assert session_user is not None and session_user[0].id == user.id
    (failed,) = entries(db_session, "session.failed")
    (started,) = entries(db_session, "session.start")
    assert failed.actor == started.actor == "user:lan" and started.org_id == user.org_id
