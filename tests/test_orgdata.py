"""Organisation records: the CSV reader, the tree check and the province lists."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.model import IssueLog
from quet.server.orgdata import (
    COLUMNS,
    KINDS,
    OrgRecord,
    check_tree,
    national_root,
    parse_asns,
    parse_networks,
    provinces,
    read_org_csv,
)

DATA = Path(__file__).parent / "data" / "orgs"
SAMPLE = DATA / "orgs.csv"


def issue_lines(issues: IssueLog) -> list[tuple[int, str]]:
    return [(i.line, i.message) for i in issues.issues]


def test_sample_counts_and_values() -> None:
    issues = IssueLog()
    recs = read_org_csv(SAMPLE, issues)
    assert issue_lines(issues) == []
    assert len(recs) == 12
    assert [r.kind for r in recs].count("ministry") == 1
    assert [r.kind for r in recs].count("province") == 2
    assert [r.kind for r in recs].count("department") == 5
    assert [r.kind for r in recs].count("unit") == 4
    by_code = {r.code: r for r in recs}
    assert by_code["BKHCN"].ip_ranges == ["203.0.113.0/25", "2001:db8:100::/48"]
    assert by_code["BKHCN-TTCNTT"].ip_ranges == ["203.0.113.160/27", "203.0.113.200/32"]
    assert by_code["VN-04-SYT"].ip_ranges == ["192.0.2.32/27"]  # "a - b" with spaces
    assert by_code["VN-04-BVDK"].ip_ranges == ["192.0.2.64/28", "2001:db8:4:1::/64"]
    assert by_code["VN-04-DONGKHE"].ip_ranges == ["192.0.2.100/32"]
    assert by_code["VN-04-DONGKHE"].name == "Ủy ban nhân dân xã Đông Khê"
    assert by_code["BKHCN-CDS"].asns == []
    assert by_code["BKHCN-CDS"].contact_phone == ""
    assert [r.line for r in recs] == list(range(2, 14))


def test_sample_one_full_record() -> None:
    recs = read_org_csv(SAMPLE, IssueLog())
    assert recs[10] == OrgRecord(
        code="VN-46-IOC",
        name="Trung tâm Giám sát điều hành đô thị thông minh",
        parent_code="VN-46-SKHCN",
        kind="unit",
        ip_ranges=["198.51.100.128/26", "198.51.100.192/29", "198.51.100.200/32"],
        domains=["ioc.hue.gov.vn", "hue-s.hue.gov.vn"],
        asns=[64498],
        contact_name="Phan Thanh Hải",
        contact_email="ioc@hue.gov.vn",
        contact_phone="0234 3999 911",
        line=12,
        source=str(SAMPLE),
    )


def test_vietnamese_header_semicolons_windows_1258() -> None:
    path = DATA / "orgs-vi-cp1258.csv"
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    issues = IssueLog()
    recs = read_org_csv(path, issues)
    assert issue_lines(issues) == []
    assert [(r.code, r.name, r.parent_code, r.kind) for r in recs] == [
        ("VN-46", "Thành phố Huế", "VN", "province"),
        ("VN-46-SKHCN", "Sở Khoa học và Công nghệ thành phố Huế", "VN-46", "department"),
        ("VN-46-IOC", "Trung tâm Giám sát điều hành đô thị thông minh", "VN-46-SKHCN", "unit"),
    ]
    assert recs[1].asns == [64498]  # "AS 64498" with a space
    assert recs[2].asns == [64498]  # bare number
    assert recs[1].contact_name == "Lê Quang Minh"
    assert recs[2].ip_ranges == ["198.51.100.128/26", "198.51.100.192/29", "198.51.100.200/32"]
    utf8 = {r.code: r for r in read_org_csv(SAMPLE, IssueLog())}
    assert recs[2].name == utf8["VN-46-IOC"].name  # same code points as the UTF-8 sample


def test_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + SAMPLE.read_bytes().replace(b"\n", b"\r\n"))
    issues = IssueLog()
    recs = read_org_csv(path, issues)
    assert len(issues) == 0
    expected = read_org_csv(SAMPLE, IssueLog())
    assert [(r.code, r.name, r.line) for r in recs] == [(r.code, r.name, r.line) for r in expected]


def test_latin1_fallback_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(b"code,name\nX1,Caf\xe9 \x81\n")
    issues = IssueLog()
    recs = read_org_csv(path, issues)
    assert [r.code for r in recs] == ["X1"]
    assert issue_lines(issues) == [
        (1, "neither UTF-8 nor Windows-1258; read as Latin-1, save as UTF-8")
    ]


def test_every_bad_cell_kind_reported_with_file_and_line() -> None:
    path = DATA / "bad.csv"
    issues = IssueLog()
    recs = read_org_csv(path, issues)
    assert all(i.path == str(path) for i in issues.issues)
    assert [str(i).split(": ", 1)[0] for i in issues.issues[:1]] == [f"{path}:1"]
    assert issue_lines(issues) == [
        (1, "unknown column 'ghi chú' ignored"),
        (2, "not an IP address or CIDR network: '192.0.2.0/33'; left out"),
        (3, "not an IP range (start after end or mixed versions): "
            "'192.0.2.63-192.0.2.32'; left out"),
        (3, "not a domain name: 'soyte..caobang.gov.vn'; left out"),
        (3, "not an AS number: 'AS-x'; left out"),
        (3, "not an e-mail address: 'soyte@'; left out"),
        (4, "unknown kind 'phòng ban'; one of: national, province, ministry, department, "
            "district, unit; 'unit' used"),
        (4, "network too broad to belong to one organisation: '0.0.0.0/0'; left out"),
        (4, "not an AS number: 'AS0'; left out"),
        (4, "not an e-mail address (bad domain): 'lan.nt@caobang..gov.vn'; left out"),
        (5, "row without a code; rejected"),
        (6, "row without a name; rejected"),
        (7, "bad code 'mã có dấu cách' (letters, digits and . - _ : / only, ≤ 64); "
            "row rejected"),
        (8, "duplicate code 'VN-04' (first on line 2)"),
        (9, "bad parent code 'VN 04'; left empty"),
        (10, "12 cells but 11 header columns; extra ignored"),
    ]  # fmt: skip
    assert len(issues) == 16
    assert [(r.code, r.line) for r in recs] == [
        ("VN-04", 2),
        ("VN-04-SYT", 3),
        ("VN-04-SKHCN", 4),
        ("VN-04-XA", 9),
        ("VN-04-TT", 10),
    ]
    # the rows stay, without their bad values
    syt, skhcn, xa, tt = recs[1], recs[2], recs[3], recs[4]
    assert (recs[0].ip_ranges, recs[0].domains) == ([], ["caobang.gov.vn"])
    assert (syt.ip_ranges, syt.domains, syt.asns, syt.contact_email) == ([], [], [], "")
    assert (skhcn.kind, skhcn.ip_ranges, skhcn.domains) == ("unit", [], ["skhcn.caobang.gov.vn"])
    assert xa.parent_code == ""
    assert (tt.ip_ranges, tt.domains) == (["192.0.2.128/25"], ["tt.caobang.gov.vn"])


def test_header_without_code_or_name(tmp_path: Path) -> None:
    path = tmp_path / "noheader.csv"
    path.write_text("VN-04,Cao Bằng,VN,province\n", encoding="utf-8")
    issues = IssueLog()
    assert read_org_csv(path, issues) == []
    assert [(i.line, i.message) for i in issues.issues][-1] == (
        1,
        "the header needs a 'code' (mã) and a 'name' (tên) column",
    )


def test_comments_blank_lines_and_quoted_newline(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        '# danh sách đơn vị\n\nMã,Tên,Loại\nA1,"Sở\nY tế",Sở\n\nA2,Bộ Y tế,Bộ\n', encoding="utf-8"
    )
    issues = IssueLog()
    recs = read_org_csv(path, issues)
    assert len(issues) == 0
    assert [(r.code, r.name, r.kind, r.line) for r in recs] == [
        ("A1", "Sở Y tế", "department", 4),
        ("A2", "Bộ Y tế", "ministry", 7),
    ]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_org_csv(tmp_path / "none.csv", IssueLog())
    with pytest.raises(InputError, match="cannot read"):
        read_org_csv(tmp_path, IssueLog())


def test_parse_helpers() -> None:
    assert parse_networks("2001:db8::1, 2001:db8::-2001:db8::ff") == (
        ["2001:db8::1/128", "2001:db8::/120"],
        [],
    )
    assert parse_networks("192.0.2.1-2001:db8::1")[1] == [
        "not an IP range (start after end or mixed versions): '192.0.2.1-2001:db8::1'"
    ]
    assert parse_networks("192.0.2.7/24 192.0.2.0/24") == (["192.0.2.0/24"], [])
    assert parse_asns("AS7552; as131429, 4294967295 4294967296") == (
        [7552, 131429, 4294967295],
        ["not an AS number: '4294967296'"],
    )


def test_tree_orders_parents_first() -> None:
    recs = read_org_csv(SAMPLE, IssueLog())
    issues = IssueLog()
    ordered = check_tree(recs, {"VN"}, issues)
    assert len(issues) == 0
    assert [r.code for r in ordered] == [
        "BKHCN", "BKHCN-CDS", "BKHCN-TTCNTT", "VN-04", "VN-04-SYT", "VN-04-BVDK",
        "VN-04-SKHCN", "VN-04-DONGKHE", "VN-46", "VN-46-SKHCN", "VN-46-IOC", "VN-46-SYT",
    ]  # fmt: skip
    with_root = check_tree([*recs, national_root()], frozenset(), issues)
    assert len(issues) == 0
    assert with_root[0].code == "VN" and len(with_root) == 13


def test_tree_without_the_root_rejects_everything() -> None:
    recs = read_org_csv(SAMPLE, IssueLog())
    issues = IssueLog()
    assert check_tree(recs, issues=issues) == []
    missing = [i for i in issues.issues if "does not exist" in i.message]
    assert [(i.line, i.message) for i in missing] == [
        (2, "parent 'VN' of 'BKHCN' does not exist"),
        (6, "parent 'VN' of 'VN-04' does not exist"),
        (10, "parent 'VN' of 'VN-46' does not exist"),
    ]
    assert len(issues) == 12


def test_tree_cycles_and_missing_parents() -> None:
    path = DATA / "tree.csv"
    recs = read_org_csv(path, IssueLog())
    assert len(recs) == 9
    issues = IssueLog()
    ordered = check_tree(recs, {"VN"}, issues)
    assert [r.code for r in ordered] == ["VN-04", "H"]
    assert all(i.path == str(path) for i in issues.issues)
    assert sorted(issue_lines(issues)) == [
        (3, "parent cycle A → C → B → A; left out"),
        (4, "parent cycle A → C → B → A; left out"),
        (5, "parent cycle A → C → B → A; left out"),
        (6, "parent cycle D → D; left out"),
        (7, "parent 'VN-99' of 'E' does not exist"),
        (8, "parent 'E' was left out; so is this"),
        (9, "parent 'A' was left out; so is this"),
    ]
    assert [r.code for r in check_tree(recs, {"VN", "VN-99"})] == ["VN-04", "E", "F", "H"]


def test_tree_duplicates_first_kept() -> None:
    a1 = OrgRecord("A", "Một", line=1)
    a2 = OrgRecord("A", "Hai", line=2)
    issues = IssueLog()
    assert check_tree([a1, a2], issues=issues) == [a1]
    assert issue_lines(issues) == [(2, "duplicate code 'A'; the first is kept")]


def test_national_root() -> None:
    root = national_root()
    assert (root.code, root.kind, root.parent_code) == ("VN", "national", "")
    assert root.name == "Trung tâm Giám sát an toàn không gian mạng quốc gia (NCSC)"


def test_provinces_2025() -> None:
    ps = provinces("2025")
    assert len(ps) == 34
    assert len({p.code for p in ps}) == 34
    assert all(p.parent_code == "VN" and p.kind == "province" for p in ps)
    names = {p.code: p.name for p in ps}
    assert names["VN-04"] == "Cao Bằng"
    assert names["VN-79"] == "Thành phố Hồ Chí Minh"
    assert names["VN-46"] == "Thành phố Huế"
    assert names["VN-01"] == "Thành phố Hà Nội"
    assert "Hà Giang" not in names.values()  # merged into Tuyên Quang
    assert not any("Thừa Thiên" in n for n in names.values())
    assert provinces() == ps


def test_provinces_2008() -> None:
    ps = provinces("2008")
    assert len(ps) == 63
    assert len({p.code for p in ps}) == 63
    assert all(p.parent_code == "VN" and p.kind == "province" for p in ps)
    names = {p.code: p.name for p in ps}
    assert names["VN-02"] == "Hà Giang"
    assert names["VN-77"] == "Bà Rịa - Vũng Tàu"
    assert names["VN-79"] == "Thành phố Hồ Chí Minh"
    # Thừa Thiên Huế became the centrally-run "Thành phố Huế" on 1 January 2025, before the merger
    assert names["VN-46"] == "Thành phố Huế"
    assert not any("Thừa Thiên" in n for n in names.values())


def test_editions_agree() -> None:
    old = {p.code: p.name for p in provinces("2008")}
    new = {p.code: p.name for p in provinces("2025")}
    assert set(new) <= set(old)  # the GSO kept one merged province's code for each new one
    unchanged = ["VN-01", "VN-04", "VN-11", "VN-12", "VN-14", "VN-20", "VN-22", "VN-38", "VN-40"]
    assert all(old[c] == new[c] for c in [*unchanged, "VN-42", "VN-46"])
    assert (old["VN-24"], new["VN-24"]) == ("Bắc Giang", "Bắc Ninh")  # same code, new province
    tree = check_tree([national_root(), *provinces("2008")])
    assert len(tree) == 64


def test_unknown_edition() -> None:
    with pytest.raises(InputError, match="unknown province edition"):
        provinces("1976")


CELL = st.text(alphabet=st.sampled_from('abcAS09.:/-;, "\n\r\tĐđếứ@#\x00\ufeff'), max_size=12)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELL, max_size=12), max_size=8), header=st.booleans())
def test_fuzz_read_org_csv(tmp_path: Path, rows: list[list[str]], header: bool) -> None:
    lines = ([",".join(COLUMNS)] if header else []) + [",".join(r) for r in rows]
    path = tmp_path / "fuzz.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    check_records(read_org_csv(path, IssueLog()))


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=400))
def test_fuzz_read_org_csv_bytes(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(b"code;name;ip_ranges;asns;domains;kind\n" + raw)
    check_records(read_org_csv(path, IssueLog()))


def check_records(recs: list[OrgRecord]) -> None:
    assert len({r.code for r in recs}) == len(recs)
    for r in recs:
        assert r.code and r.name and r.kind in KINDS
        for net in r.ip_ranges:
            assert ipaddress.ip_network(net).compressed == net
        assert all(0 < a < 2**32 for a in r.asns)


@given(
    parents=st.lists(st.one_of(st.none(), st.integers(0, 12), st.just(-1)), max_size=12),
)
def test_fuzz_check_tree(parents: list[int | None]) -> None:
    recs = [
        OrgRecord(f"N{i}", f"Đơn vị {i}", "" if p is None else ("VN" if p < 0 else f"N{p}"), line=i)
        for i, p in enumerate(parents)
    ]
    issues = IssueLog()
    out = check_tree(recs, {"VN"}, issues)
    seen: set[str] = {"VN", ""}
    for r in out:
        assert r.parent_code in seen
        seen.add(r.code)
    assert len(out) + len(issues) == len(recs)


def test_docs_examples_read_cleanly(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[1] / "docs" / "organisations.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in doc.split("```csv\n")[1:]]
    assert len(blocks) == 2
    for n, block in enumerate(blocks):
        path = tmp_path / f"doc{n}.csv"
        path.write_text(block, encoding="utf-8")
        issues = IssueLog()
        recs = read_org_csv(path, issues)
        assert issue_lines(issues) == []
        assert recs and all(r.code.startswith("VN-04") for r in recs)
    assert set(COLUMNS) <= {c.strip("`") for c in doc.split() if c.startswith("`")}
