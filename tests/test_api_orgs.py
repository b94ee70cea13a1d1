"""Organisations through the API on SQLite and PostgreSQL: CSV import with bad lines (each named
file:line), updates on re-import, scope of an officer's import, the provinces (34 and 63), the tree
with counts, and editing networks, domains and ASNs (then attributing an IP)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from quet.server.services import orgs
from quet.store.models import Device
from server_fixtures import bearer, make_org, make_token, make_user

pytest_plugins = ["server_fixtures"]  # server_app, client, db_session

GOOD_AND_BAD = """\
code,name,parent_code,kind,ip_ranges,domains,asns,contact_name,contact_email,contact_phone
VN-04,Cao Bằng,VN,province,,caobang.gov.vn,,,,
VN-04-SYT,Sở Y tế tỉnh Cao Bằng,VN-04,department,192.0.2.32 - 192.0.2.63,soyte.caobang.gov.vn,,Lương Văn Hùng,soyte@caobang.gov.vn,0206 3852 491
VN-04-BAD,Sở hỏng,VN-04,department,192.0.2.0/33,,,,,
VN-04-ORPHAN,Mồ côi,VN-77,unit,,,,,,
,Không có mã,VN-04,unit,,,,,,
VN-04-DK,UBND xã Đông Khê,VN-04,xa,192.0.2.100,dongkhe.caobang.gov.vn,AS64497,,,
"""


@pytest.fixture
def boss(db_session: Session) -> str:
    make_user(db_session, "boss", "admin", "VN")
    return make_token(db_session, "boss")


def upload(
    client: TestClient, token: str, text: str, name: str = "donvi.csv"
) -> dict[str, list[str]]:
    files = {"file": (name, text.encode(), "text/csv")}
    r = client.post("/api/v1/orgs/import", files=files, headers=bearer(token))
    assert r.status_code == 200, r.text
    result: dict[str, list[str]] = r.json()
    return result


def test_csv_import_reports_bad_lines(client: TestClient, boss: str, db_session: Session) -> None:
    result = upload(client, boss, GOOD_AND_BAD)
    # A bad cell is reported and left out; the rest of its row is kept.
    assert result["added"] == ["VN-04", "VN-04-SYT", "VN-04-BAD", "VN-04-DK"]
    assert result["updated"] == []
    rejected = result["rejected"]
    assert len(rejected) == 3, rejected
    assert rejected[0].startswith("donvi.csv:4: ") and "192.0.2.0/33" in rejected[0]
    assert any(r.startswith("donvi.csv:6: ") for r in rejected)  # no code
    orphan = next(r for r in rejected if r.startswith("donvi.csv:5: "))
    assert "VN-77" in orphan

    syt = client.get("/api/v1/orgs/VN-04-SYT", headers=bearer(boss)).json()
    assert syt["parent_code"] == "VN-04" and syt["kind"] == "department"
    assert syt["ip_ranges"] == ["192.0.2.32/27"]
    assert syt["contact_email"] == "soyte@caobang.gov.vn"
    dk = client.get("/api/v1/orgs/VN-04-DK", headers=bearer(boss)).json()
    assert dk["kind"] == "unit" and dk["asns"] == [64497] and dk["ip_ranges"] == ["192.0.2.100/32"]
    owner = orgs.owner_of_ip(db_session, "192.0.2.40")
    assert owner is not None and owner.code == "VN-04-SYT"

    # The same file again changes nothing; an edited row is an update.
    again = upload(client, boss, GOOD_AND_BAD)
    assert again["added"] == [] and again["updated"] == []
    assert sorted(again["unchanged"]) == ["VN-04", "VN-04-BAD", "VN-04-DK", "VN-04-SYT"]
    edited = GOOD_AND_BAD.replace("0206 3852 491", "0206 3852 492")
    assert upload(client, boss, edited)["updated"] == ["VN-04-SYT"]

    audit = client.get("/api/v1/audit?action=org.import", headers=bearer(boss)).json()
    assert audit["total"] == 3
    assert audit["items"][-1]["detail"] == {"added": 4, "updated": 0, "rejected": 3}


def test_officer_import_stays_in_scope(client: TestClient, db_session: Session) -> None:
    make_org(db_session, "VN-04", kind="province")
    make_org(db_session, "VN-46", kind="province")
    make_user(db_session, "lan", "officer", "VN-04")
    make_user(db_session, "xem", "viewer", "VN-04")
    lan = make_token(db_session, "lan")
    text = (
        "code,name,parent_code\n"
        "U1,Đơn vị 1,\n"  # no parent: under the importer's organisation
        "U2,Đơn vị 2,U1\n"
        "H1,Đơn vị Huế,VN-46\n"  # someone else's province
        "VN-46,Huế đổi tên,VN\n"  # exists outside scope
    )
    result = upload(client, lan, text, "lan.csv")
    assert result["added"] == ["U1", "U2"]
    assert len(result["rejected"]) == 2
    assert all("outside your organisation" in r for r in result["rejected"])
    assert client.get("/api/v1/orgs/U2", headers=bearer(lan)).json()["parent_code"] == "U1"
    viewer = make_token(db_session, "xem")
    files = {"file": ("x.csv", text.encode(), "text/csv")}
    assert (
        client.post("/api/v1/orgs/import", files=files, headers=bearer(viewer)).status_code == 403
    )


def test_unreadable_upload_is_reported(client: TestClient, boss: str) -> None:
    result = upload(client, boss, "\x00\x01\x02 not a csv at all", "junk.bin")
    assert result["added"] == []
    assert result["rejected"] and all(r.startswith("junk.bin:") for r in result["rejected"])


@pytest.mark.parametrize(("edition", "count"), [("2025", 34), ("2008", 63)])
def test_provinces(client: TestClient, boss: str, edition: str, count: int) -> None:
    r = client.post(f"/api/v1/orgs/provinces?edition={edition}", headers=bearer(boss))
    assert r.status_code == 200, r.text
    assert len(r.json()["added"]) == count and r.json()["rejected"] == []
    tree = client.get("/api/v1/orgs?depth=1", headers=bearer(boss)).json()
    assert tree[0]["code"] == "VN" and tree[0]["children"] == count
    assert len(tree) == count + 1
    assert all(n["kind"] == "province" and n["parent_code"] == "VN" for n in tree[1:])
    second = client.post(f"/api/v1/orgs/provinces?edition={edition}", headers=bearer(boss)).json()
    assert second["added"] == [] and len(second["unchanged"]) == count
    assert (
        client.post("/api/v1/orgs/provinces?edition=1999", headers=bearer(boss)).status_code == 422
    )


def test_tree_counts_and_edits(client: TestClient, boss: str, db_session: Session) -> None:
    p = make_org(db_session, "P1", kind="province")
    make_org(db_session, "P1-A", "P1")
    make_org(db_session, "P1-B", "P1")
    make_user(db_session, "lan", "officer", "P1")
    db_session.add(Device(org_id=p.id, hostname="srv-1"))
    db_session.commit()
    tree = {n["code"]: n for n in client.get("/api/v1/orgs", headers=bearer(boss)).json()}
    assert (tree["P1"]["children"], tree["P1"]["devices"], tree["P1"]["users"]) == (2, 1, 1)
    assert tree["P1-A"]["depth"] == 2 and tree["P1-A"]["parent_code"] == "P1"
    under = client.get("/api/v1/orgs?under=P1&depth=0", headers=bearer(boss)).json()
    assert [n["code"] for n in under] == ["P1"]

    body = {
        "ip_ranges": ["198.51.100.0/25", "2001:db8:4::/48"],
        "domains": ["https://Hue.gov.vn/", "soyte.hue.gov.vn"],
        "asns": [64498],
        "webhook_url": "https://hooks.example.vn/quet",
    }
    r = client.patch("/api/v1/orgs/P1-A", json=body, headers=bearer(boss))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["ip_ranges"] == ["198.51.100.0/25", "2001:db8:4::/48"]
    assert got["domains"] == ["hue.gov.vn", "soyte.hue.gov.vn"]
    assert got["asns"] == [64498] and got["webhook_url"] == "https://hooks.example.vn/quet"
    owner = orgs.owner_of_ip(db_session, "2001:db8:4::1")
    assert owner is not None and owner.code == "P1-A"
    # Keep one domain, add one: the kept row must not collide with itself.
    r = client.patch(
        "/api/v1/orgs/P1-A",
        json={"domains": ["hue.gov.vn", "new.hue.gov.vn"], "asns": []},
        headers=bearer(boss),
    )
    assert r.json()["domains"] == ["hue.gov.vn", "new.hue.gov.vn"] and r.json()["asns"] == []
    for bad in (
        {"ip_ranges": ["0.0.0.0/0"]},
        {"domains": ["not a domain"]},
        {"asns": [0]},
        {"kind": "galaxy"},
        {"contact_email": "nobody@"},
        {"webhook_url": "ftp://x"},
    ):
        assert client.patch("/api/v1/orgs/P1-A", json=bad, headers=bearer(boss)).status_code == 422

    created = client.post(
        "/api/v1/orgs",
        json={"code": "P1-C", "name": "C", "parent_code": "P1", "kind": "Sở"},
        headers=bearer(boss),
    )
    assert created.status_code == 201 and created.json()["kind"] == "department"
    assert created.json()["depth"] == 2
