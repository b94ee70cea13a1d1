"""The report renderers: documents built by hand are written as DOCX, XLSX and PDF, and every file
is reopened (python-docx, openpyxl, pdftotext, pdftoppm) to check layout, figures and diacritics."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quet.reports.dates import (
    decree_day,
    decree_month,
    doc_number,
    vn_date_line,
    vn_number,
    vn_percent,
    vn_value,
)
from quet.reports.document import (
    Annex,
    AnnexRow,
    CampaignReport,
    FigureRow,
    MonthlyTechnicalReport,
    ProvinceStatus,
    Ranked,
    TrendPoint,
)

ROW1 = "Tổng số cơ quan, tổ chức, doanh nghiệp nhận được thông tin về chiến dịch"
ROW2 = "Tổng số cơ quan tổ chức triển khai chiến dịch"
REASON = "Số liệu rà soát thủ công tại Trường THPT Chợ Mới, đã xác minh ngày 02/01"
KEYS = [
    "received",
    "deployed",
    "devices",
    "scanned",
    "infected",
    "cleaned",
    "coverage",
    "net_hosts",
    "botnet_ips",
]
HEADERS = [
    "Nhận TT",
    "Triển khai",
    "Thiết bị",
    "Đã quét",
    "Nhiễm",
    "Đã xử lý",
    "Độ phủ (%)",
    "Máy kết nối độc hại",
    "IP botnet",
]


def figures() -> list[FigureRow]:
    data = [
        ("received", ROW1, "Organisations that received the campaign information", 1234567, ""),
        ("deployed", ROW2, "Organisations that deployed the campaign", 845, ""),
        ("devices", "Tổng số thiết bị trong phạm vi", "Devices in scope", 12480, ""),
        ("scanned", "Số thiết bị đã được rà quét", "Devices scanned", 11873, ""),
        ("infected", "Số thiết bị phát hiện nhiễm mã độc", "Devices found infected", 317, ""),
        ("cleaned", "Số thiết bị đã được xử lý, gỡ bỏ mã độc", "Devices cleaned", 298, ""),
        (
            "coverage",
            "Tỷ lệ thiết bị có phần mềm phòng chống mã độc được cập nhật",
            "Coverage",
            87.5,
            "%",
        ),
        ("net_hosts", "Số máy nội bộ kết nối tới địa chỉ độc hại", "Internal hosts", 42, ""),
        ("botnet_ips", "Số địa chỉ IP botnet thuộc đơn vị", "Botnet IPs", None, ""),
    ]
    rows = [
        FigureRow(key=k, number=str(i), label=vi, label_en=en, value=v, unit=u)
        for i, (k, vi, en, v, u) in enumerate(data, start=1)
    ]
    rows[4].value = 320
    rows[4].overridden = True
    rows[4].measured = 317
    rows[4].note = REASON
    rows[8].note = "2 đơn vị chưa báo cáo"
    return rows


def annex_rows(
    prefix: str, names: list[str], missing: int | None, late: int | None
) -> list[AnnexRow]:
    out = []
    for i, name in enumerate(names):
        status = "missing" if i == missing else "accepted" if i % 2 == 0 else "submitted"
        values: dict[str, int | float | None] = {
            k: (None if status == "missing" else (i + 1) * 100 + j) for j, k in enumerate(KEYS)
        }
        if status != "missing":
            values["coverage"] = 90.0 + i / 2
        out.append(
            AnnexRow(
                code=f"{prefix}{i}",
                name=name,
                status=status,
                late=i == late,
                submitted_at=None
                if status == "missing"
                else datetime(2026, 1, 3 + i, 9, 30, tzinfo=UTC),
                values=values,
            )
        )
    return out


def campaign_report(**changes: object) -> CampaignReport:
    doc = CampaignReport(
        parent_body="UBND TỈNH BẮC KẠN",
        issuer="SỞ THÔNG TIN VÀ TRUYỀN THÔNG",
        issuer_short="STTTT",
        number="5/BC-STTTT",
        place="Bắc Kạn",
        day=date(2026, 1, 5),
        subject="V/v báo cáo kết quả triển khai Chiến dịch rà quét, xử lý mã độc năm 2025",
        recipients_to=["Cục An toàn thông tin - Bộ Thông tin và Truyền thông"],
        body=[
            "Thực hiện Công văn số 896/CATTT-NCSC ngày 22/9/2025 của Cục An toàn thông tin về "
            "việc triển khai chiến dịch rà quét, xử lý mã độc trên toàn quốc, Sở Thông tin và "
            "Truyền thông tỉnh Bắc Kạn báo cáo kết quả triển khai như sau:",
            "Toàn bộ số liệu chi tiết được tổng hợp tại Phụ lục kèm theo. Trân trọng./.",
        ],
        recipients=[
            "- Như trên;",
            "- UBND tỉnh (để b/c);",
            "- Giám đốc, các PGĐ Sở;",
            "- Lưu: VT, CNTT.",
        ],
        signer_title="KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC",
        signer_name="Nguyễn Thị Huế",
        org_code="BKN",
        org_name="Sở Thông tin và Truyền thông tỉnh Bắc Kạn",
        campaign_name="Chiến dịch rà quét, xử lý mã độc",
        campaign_year=2025,
        phase="Đợt 1",
        deadline=date(2026, 1, 10),
        status="submitted",
        submitted_at=datetime(2026, 1, 5, 14, 3, tzinfo=UTC),
        evaluation="Các cơ quan, đơn vị đã nghiêm túc triển khai; một số đơn vị cấp xã chậm "
        "báo cáo do thiếu nhân lực kỹ thuật.\nĐã xử lý dứt điểm 298 máy nhiễm mã độc.",
        proposals="Đề nghị Cục hỗ trợ công cụ rà quét cho các huyện vùng sâu, vùng xa.",
        figures=figures(),
        annexes=[
            Annex(
                title="Phụ lục 1: Các đơn vị cấp huyện",
                keys=KEYS,
                headers=HEADERS,
                rows=annex_rows(
                    "H",
                    ["Huyện Ba Bể", "Huyện Chợ Đồn", "Thành phố Bắc Kạn", "Huyện Pác Nặm"],
                    missing=3,
                    late=1,
                ),
            ),
            Annex(
                title="Phụ lục 2: Các đơn vị cấp xã thuộc huyện Chợ Đồn",
                keys=KEYS,
                headers=HEADERS,
                rows=annex_rows(
                    "X", ["Xã Bằng Lũng", "Xã Ngọc Phái", "Xã Đồng Lạc"], missing=2, late=None
                ),
            ),
        ],
        missing=["Huyện Pác Nặm", "Xã Đồng Lạc"],
        late=["Huyện Chợ Đồn"],
        generated_at=datetime(2026, 1, 5, 14, 5, tzinfo=UTC),
    )
    for key, value in changes.items():
        setattr(doc, key, value)
    return doc


def monthly_report() -> MonthlyTechnicalReport:
    start = date(2026, 1, 1)
    daily = [
        TrendPoint(day=start + timedelta(days=i), ips=52000 - i * 310 + (i % 5) * 900)
        for i in range(31)
    ]
    return MonthlyTechnicalReport(
        issuer="TRUNG TÂM GIÁM SÁT AN TOÀN KHÔNG GIAN MẠNG QUỐC GIA",
        parent_body="CỤC AN TOÀN THÔNG TIN",
        number="7/BC-NCSC",
        place="Hà Nội",
        day=date(2026, 2, 3),
        month=start,
        ips_month=1_050_321,
        ips_previous_month=1_234_000,
        ips_same_month_last_year=2_010_000,
        daily=daily,
        by_family=[
            Ranked("Mirai", 412345, 450000),
            Ranked("Ramnit", 210777, 200000),
            Ranked("Sality", 98765, None),
            Ranked("Conficker", 50210, 61000),
        ],
        by_province=[
            Ranked("Thành phố Hồ Chí Minh", 301234, 320000),
            Ranked("Hà Nội", 255100, 260000),
            Ranked("Đồng Nai", 40210, 39000),
        ],
        by_isp=[
            Ranked("Tập đoàn Bưu chính Viễn thông Việt Nam (VNPT)", 500100, 520000),
            Ranked("Viettel", 400200, 410000),
        ],
        state_agency_ips=[Ranked("Sở Y tế Đồng Nai", 17, 20), Ranked("UBND huyện Ba Bể", 4, 1)],
        participation=[
            ProvinceStatus(
                "BKN",
                "Tỉnh Bắc Kạn",
                "province",
                812,
                790,
                True,
                datetime(2026, 1, 30, 8, 0, tzinfo=UTC),
            ),
            ProvinceStatus("DNI", "Tỉnh Đồng Nai", "province", 1500, 1320, False, None),
            ProvinceStatus(
                "BYT",
                "Bộ Y tế",
                "ministry",
                120,
                118,
                True,
                datetime(2026, 1, 29, 17, 45, tzinfo=UTC),
            ),
        ],
        notes=["Số lượng địa chỉ IP botnet tiếp tục giảm nhờ các đợt rà quét định kỳ."],
        recipients=["- Cục trưởng (để b/c);", "- Lưu: VT, NCSC."],
        signer_title="GIÁM ĐỐC",
        signer_name="Trần Văn Đức",
    )


# ----------------------------------------------------------------------------- formatters


def test_decree_date_line_examples() -> None:
    assert vn_date_line("Hà Nội", date(2026, 1, 5)) == "Hà Nội, ngày 05 tháng 01 năm 2026"
    assert vn_date_line("Bắc Kạn", date(2026, 2, 28)) == "Bắc Kạn, ngày 28 tháng 02 năm 2026"
    assert vn_date_line("Đồng Nai", date(2020, 10, 5)) == "Đồng Nai, ngày 05 tháng 10 năm 2020"
    assert vn_date_line("Hà Nội", date(2026, 3, 9)) == "Hà Nội, ngày 09 tháng 3 năm 2026"
    assert vn_date_line("", date(2026, 12, 31)) == "Ngày 31 tháng 12 năm 2026"
    assert vn_date_line("Hà Nội", date(2026, 1, 5), "en") == "Hà Nội, 5 January 2026"


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2999, 12, 31)))
def test_date_line_parses_back(day: date) -> None:
    line = vn_date_line("Hà Nội", day)
    m = re.fullmatch(r"Hà Nội, ngày (\d{2}) tháng (\d{1,2}) năm (\d{4})", line)
    assert m, line
    assert date(int(m[3]), int(m[2]), int(m[1])) == day
    assert len(m[2]) == (2 if day.month < 3 or day.month >= 10 else 1)
    assert decree_day(day.day) == m[1] and decree_month(day.month) == m[2]


def test_formatter_bounds() -> None:
    with pytest.raises(ValueError):
        decree_month(13)
    with pytest.raises(ValueError):
        decree_day(0)
    assert doc_number("5/BC-STTTT") == "05/BC-STTTT"
    assert doc_number("12/BC-STTTT") == "12/BC-STTTT"


def test_number_examples() -> None:
    assert vn_number(1234567) == "1.234.567"
    assert vn_number(-1234) == "-1.234"
    assert vn_number(0) == "0"
    assert vn_number(12.5) == "12,5"
    assert vn_number(12.0) == "12"
    assert vn_number(1234567, lang="en") == "1,234,567"
    assert vn_number(None) == "—"
    assert vn_number(float("nan")) == "—"
    assert vn_percent(12.5) == "12,5 %"
    assert vn_percent(100.0) == "100 %"
    assert vn_value(None, "%") == "—"
    assert vn_value(87.5, "%") == "87,5 %"


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_integers_round_trip(n: int) -> None:
    text = vn_number(n)
    assert re.fullmatch(r"-?\d{1,3}(\.\d{3})*", text), text
    assert int(text.replace(".", "")) == n


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
def test_floats_round_trip(x: float) -> None:
    text = vn_number(x, decimals=2)
    assert re.fullmatch(r"-?\d{1,3}(\.\d{3})*,\d{2}", text), text
    assert abs(float(text.replace(".", "").replace(",", ".")) - x) <= 0.0051


@given(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
def test_percent_never_fails(x: float | None) -> None:
    text = vn_percent(x)
    assert text == "—" or text.endswith(" %")


# ----------------------------------------------------------------------------- helpers


def poppler(tool: str) -> str:
    from conftest import require

    path = shutil.which(tool)
    require(tool, path is not None)
    assert path is not None
    return path


def pdf_text(path: Path, first: int | None = None, last: int | None = None) -> str:
    args = [poppler("pdftotext"), "-enc", "UTF-8"]
    if first is not None:
        args += ["-f", str(first), "-l", str(last or first)]
    out = subprocess.run([*args, str(path), "-"], capture_output=True, text=True, check=True)
    return out.stdout


def _grey(pixel: object) -> float:
    assert isinstance(pixel, int | float)
    return pixel


def flat(text_: str) -> str:
    return " ".join(text_.split())


def pdf_pages(path: Path) -> list[tuple[float, float]]:
    out = subprocess.run(
        [poppler("pdfinfo"), "-f", "1", "-l", "99", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        (float(w), float(h)) for w, h in re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+)", out)
    ]


def mm(length: object) -> float:
    assert isinstance(length, int)
    return length / 36000


# ----------------------------------------------------------------------------- DOCX


@pytest.fixture(scope="module")
def campaign_docx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from quet.reports.docx import render_campaign_docx

    path = tmp_path_factory.mktemp("docx") / "bao-cao.docx"
    render_campaign_docx(campaign_report(), path)
    return path


def _runs(document: object) -> list[Any]:
    from docx.document import Document

    assert isinstance(document, Document)
    runs = [r for p in document.paragraphs for r in p.runs]
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                runs += [r for p in cell.paragraphs for r in p.runs]
    return runs


def test_docx_page_fonts_and_margins(campaign_docx: Path) -> None:
    import docx
    from docx.enum.section import WD_ORIENT
    from docx.oxml.ns import qn

    document = docx.Document(str(campaign_docx))
    first = document.sections[0]
    assert round(mm(first.page_width)) == 210 and round(mm(first.page_height)) == 297
    assert 20 <= round(mm(first.top_margin)) <= 25 and 20 <= round(mm(first.bottom_margin)) <= 25
    assert 30 <= round(mm(first.left_margin)) <= 35 and 15 <= round(mm(first.right_margin)) <= 20
    # page numbers in the header, not on the first page
    assert first.different_first_page_header_footer
    assert 'w:instr="PAGE"' in first.header._element.xml
    assert not first.first_page_header.paragraphs[0].text
    # wide annexes on a landscape section that still shows the number on its first page
    last = document.sections[-1]
    assert last.orientation == WD_ORIENT.LANDSCAPE and round(mm(last.page_width)) == 297
    assert not last.different_first_page_header_footer
    # Times New Roman for every script, on the style and on every run
    normal = document.styles["Normal"]
    assert normal.font.name == "Times New Roman"
    runs = [r for r in _runs(document) if r.text.strip()]
    assert len(runs) > 100
    for run in runs:
        fonts = run._element.rPr.find(qn("w:rFonts"))
        for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
            assert fonts.get(qn(attr)) == "Times New Roman", run.text
        size = run.font.size.pt
        assert 11 <= size <= 14, (run.text, size)


# The schema's order of the property children we write (Word refuses a file out of order).
_ORDER = {
    "pPr": [
        "pStyle",
        "keepNext",
        "keepLines",
        "pageBreakBefore",
        "widowControl",
        "numPr",
        "pBdr",
        "shd",
        "tabs",
        "spacing",
        "ind",
        "jc",
        "rPr",
        "sectPr",
    ],
    "rPr": ["rStyle", "rFonts", "b", "bCs", "i", "iCs", "color", "sz", "szCs", "u", "lang"],
    "tblPr": [
        "tblStyle",
        "tblW",
        "jc",
        "tblInd",
        "tblBorders",
        "shd",
        "tblLayout",
        "tblCellMar",
        "tblLook",
    ],
    "tcPr": ["tcW", "gridSpan", "vMerge", "tcBorders", "shd", "noWrap", "tcMar", "vAlign"],
}


def _out_of_order(xml: bytes) -> list[str]:
    from lxml import etree

    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    bad = []
    for name, order in _ORDER.items():
        for node in etree.fromstring(xml).iter(w + name):
            tags = [child.tag.removeprefix(w) for child in node]
            known = [order.index(t) for t in tags if t in order]
            if known != sorted(known):
                bad.append(f"{name}: {tags}")
    return bad


@pytest.mark.parametrize("kind", ["campaign", "monthly"])
def test_docx_properties_in_schema_order(kind: str, tmp_path: Path) -> None:
    import zipfile

    from quet.reports.docx import render_campaign_docx, render_monthly_docx

    path = tmp_path / "x.docx"
    if kind == "campaign":
        render_campaign_docx(campaign_report(), path)
    else:
        render_monthly_docx(monthly_report(), path)
    with zipfile.ZipFile(path) as archive:
        for part in ("word/document.xml", "word/styles.xml", "word/header1.xml"):
            if part in archive.namelist():
                assert _out_of_order(archive.read(part)) == [], part


def test_docx_header_block(campaign_docx: Path) -> None:
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    from quet.reports.docxkit import text_width_mm

    document = docx.Document(str(campaign_docx))
    head = document.tables[0]
    left = [p for p in head.cell(0, 0).paragraphs if p.text]
    right = [p for p in head.cell(0, 1).paragraphs if p.text]
    assert [p.text for p in left] == ["UBND TỈNH BẮC KẠN", "SỞ THÔNG TIN VÀ TRUYỀN THÔNG"]
    assert not left[0].runs[0].bold and left[1].runs[0].bold
    assert all(12 <= p.runs[0].font.size.pt <= 13 for p in left)
    # a short rule under the issuer: a paragraph with a top border
    assert any("w:pBdr" in p._p.xml for p in head.cell(0, 0).paragraphs)
    nation, motto = right
    assert nation.text == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    assert nation.runs[0].bold and 12 <= nation.runs[0].font.size.pt <= 13
    assert motto.text == "Độc lập - Tự do - Hạnh phúc"
    assert motto.runs[0].bold and 13 <= motto.runs[0].font.size.pt <= 14
    assert "w:bottom" in motto._p.xml  # the rule under the motto, as long as the words
    cell_w = mm(head.columns[1].width)
    ruled = (
        cell_w
        - 2 * 1.9
        - mm(motto.paragraph_format.left_indent)
        - mm(motto.paragraph_format.right_indent)
    )
    assert abs(ruled - text_width_mm(motto.text, 13, True)) < 2
    number = head.cell(1, 0).paragraphs
    assert number[0].text == "Số: 05/BC-STTTT"
    assert number[1].text.startswith("V/v báo cáo kết quả")
    dateline = head.cell(1, 1).paragraphs[0]
    assert dateline.text == "Bắc Kạn, ngày 05 tháng 01 năm 2026"
    assert dateline.runs[0].italic and not dateline.runs[0].bold
    texts = [p.text for p in document.paragraphs]
    assert "Kính gửi: Cục An toàn thông tin - Bộ Thông tin và Truyền thông" in texts
    body = next(p for p in document.paragraphs if p.text.startswith("Thực hiện Công văn"))
    assert body.alignment == WD_ALIGN_PARAGRAPH.JUSTIFY
    assert 1.0 <= body.paragraph_format.first_line_indent.cm <= 1.27


def test_docx_signature_and_recipients(campaign_docx: Path) -> None:
    import docx

    document = docx.Document(str(campaign_docx))
    sign = next(t for t in document.tables if t.cell(0, 0).text.startswith("Nơi nhận"))
    recipients = [p for p in sign.cell(0, 0).paragraphs if p.text]
    assert recipients[0].text == "Nơi nhận:"
    run = recipients[0].runs[0]
    assert run.bold and run.italic and run.font.size.pt == 12
    assert [p.text for p in recipients[1:]][-1] == "- Lưu: VT, CNTT."
    assert all(p.runs[0].font.size.pt == 11 for p in recipients[1:])
    signer = [p for p in sign.cell(0, 1).paragraphs if p.text]
    assert signer[0].text == "KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC" and signer[0].runs[0].bold
    assert signer[-1].text == "Nguyễn Thị Huế" and signer[-1].runs[0].bold


def test_docx_appendix_form_and_figures(campaign_docx: Path) -> None:
    import docx

    document = docx.Document(str(campaign_docx))
    texts = [p.text for p in document.paragraphs]
    assert "PHỤ LỤC" in texts and "Mẫu thống kê, báo cáo kết quả triển khai" in texts
    assert any(t == "- Tên đơn vị: Sở Thông tin và Truyền thông tỉnh Bắc Kạn" for t in texts)
    assert "Đã xử lý dứt điểm 298 máy nhiễm mã độc." in texts
    assert any(t.startswith("(Kèm theo Báo cáo số 05/BC-STTTT ngày 05/01/2026") for t in texts)
    assert "Đơn vị chưa báo cáo (2): Huyện Pác Nặm; Xã Đồng Lạc." in texts
    # a page break separates the letter from the appendix
    assert any('w:type="page"' in p._p.xml for p in document.paragraphs)
    table = next(
        t
        for t in document.tables
        if t.rows[0].cells[0].text == "STT" and t.rows[0].cells[1].text == "Nội dung"
    )
    assert [c.text for c in table.rows[0].cells] == ["STT", "Nội dung", "Số lượng", "Ghi chú"]
    figs = figures()
    assert len(table.rows) == 1 + len(figs)
    for row, fig in zip(table.rows[1:], figs, strict=True):
        cells = [c.text for c in row.cells]
        assert cells[0] == fig.number and cells[1] == fig.label
        assert cells[2] == vn_value(fig.value, fig.unit)
    assert table.rows[1].cells[1].text == ROW1 and table.rows[2].cells[1].text == ROW2
    assert table.rows[1].cells[2].text == "1.234.567"
    assert table.rows[7].cells[2].text == "87,5 %"
    assert table.rows[9].cells[2].text == "—"  # not available, never 0
    assert REASON in table.rows[5].cells[3].text
    assert "Số liệu đo được: 317" in table.rows[5].cells[3].text
    assert "w:tblBorders" in table._tbl.xml and 'w:val="single"' in table._tbl.xml


def test_docx_annexes(campaign_docx: Path) -> None:
    import docx

    document = docx.Document(str(campaign_docx))
    annexes = [t for t in document.tables if t.rows[0].cells[1].text == "Đơn vị"]
    assert len(annexes) == 2
    first = annexes[0]
    assert [c.text for c in first.rows[0].cells][3:-1] == HEADERS
    missing = [c.text for c in first.rows[4].cells]
    assert missing[1] == "Huyện Pác Nặm" and missing[2] == "Chưa báo cáo"
    assert missing[3:-1] == ["—"] * len(KEYS) and missing[-1] == "chưa báo cáo"
    late = [c.text for c in first.rows[2].cells]
    assert (
        late[3] == "200" and late[-1] == "nộp muộn" and late[3 + KEYS.index("coverage")] == "90,5 %"
    )


def test_docx_blank_number_and_empty_text() -> None:
    import docx

    from quet.reports.docx import render_campaign_docx

    buffer = io.BytesIO()
    render_campaign_docx(
        campaign_report(number="", evaluation="", proposals="", annexes=[], parent_body=""),
        buffer,
    )
    document = docx.Document(io.BytesIO(buffer.getvalue()))
    head = document.tables[0]
    assert head.cell(1, 0).paragraphs[0].text == "Số:      /BC-STTTT"
    assert [p.text for p in head.cell(0, 0).paragraphs if p.text] == [
        "SỞ THÔNG TIN VÀ TRUYỀN THÔNG"
    ]
    assert len(document.sections) == 1  # no annex: no landscape section
    assert sum(1 for p in document.paragraphs if set(p.text) == {"."}) == 4  # dotted lines


def test_docx_monthly(tmp_path: Path) -> None:
    import docx

    from quet.reports.docx import render_monthly_docx

    path = tmp_path / "ky-thuat.docx"
    render_monthly_docx(monthly_report(), path)
    document = docx.Document(str(path))
    texts = [p.text for p in document.paragraphs]
    assert "BÁO CÁO KỸ THUẬT" in texts
    assert "Tình hình địa chỉ IP botnet tháng 01 năm 2026" in texts
    assert any("giảm 14,9 % so với tháng trước (1.234.000)" in t for t in texts)
    assert document.tables[0].cell(1, 1).paragraphs[0].text == "Hà Nội, ngày 03 tháng 02 năm 2026"
    assert len(document.inline_shapes) == 1  # the daily chart
    trend = document.tables[1]
    assert trend.cell(1, 1).text == "1.050.321"
    families = next(t for t in document.tables if t.cell(0, 1).text == "Họ mã độc")
    assert [c.text for c in families.rows[1].cells] == [
        "1",
        "Mirai",
        "412.345",
        "450.000",
        "-8,4 %",
    ]
    assert [c.text for c in families.rows[3].cells][3:] == ["—", "—"]
    part = next(t for t in document.tables if t.cell(0, 2).text == "Loại")
    assert [c.text for c in part.rows[2].cells] == [
        "2",
        "Tỉnh Đồng Nai",
        "Tỉnh",
        "1.500",
        "1.320",
        "Không",
        "—",
    ]


# ----------------------------------------------------------------------------- XLSX


def test_xlsx_campaign(tmp_path: Path) -> None:
    import openpyxl

    from quet.reports.xlsx import render_campaign_xlsx

    path = tmp_path / "bao-cao.xlsx"
    render_campaign_xlsx(campaign_report(), path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames[0] == "Báo cáo" and len(book.sheetnames) == 3
    assert all(len(n) <= 31 for n in book.sheetnames)
    assert book.sheetnames[1].startswith("Phụ lục 1")
    sheet = book["Báo cáo"]
    header = next(r for r in range(1, 10) if sheet.cell(r, 1).value == "STT")
    assert sheet.cell(header, 2).value == "Nội dung" and sheet.cell(header, 1).font.bold
    assert sheet.freeze_panes == f"A{header + 1}"
    values = {sheet.cell(r, 7).value: r for r in range(header + 1, header + 10)}
    for fig in figures():
        row = values[fig.key]
        cell = sheet.cell(row, 3)
        assert cell.value == fig.value  # numbers stay numbers; None stays empty
        if fig.value is not None:
            assert isinstance(cell.value, int | float)
        assert sheet.cell(row, 2).value == fig.label
    assert sheet.cell(values["received"], 2).value == ROW1
    assert "%" in sheet.cell(values["coverage"], 3).number_format
    infected = values["infected"]
    assert sheet.cell(infected, 5).value == 317 and sheet.cell(infected, 6).value == "Có"
    assert REASON in sheet.cell(infected, 4).value
    assert sheet.column_dimensions["B"].width > 40

    annex = book[book.sheetnames[1]]
    head = next(r for r in range(1, 10) if annex.cell(r, 1).value == "STT")
    heads = [annex.cell(head, c).value for c in range(1, 17)]
    assert heads[6:15] == HEADERS
    rows = list(annex.iter_rows(min_row=head + 1, values_only=True))
    assert len(rows) == 4
    assert rows[0][6:15] == (100, 101, 102, 103, 104, 105, 90.0, 107, 108)
    assert isinstance(rows[0][5], datetime)
    assert rows[3][2] == "Huyện Pác Nặm" and rows[3][3] == "Chưa báo cáo"
    assert rows[3][6:15] == (None,) * 9 and rows[3][15] == "chưa báo cáo"
    assert rows[1][4] == "Có"


def test_xlsx_monthly(tmp_path: Path) -> None:
    import openpyxl

    from quet.reports.xlsx import render_monthly_xlsx

    path = tmp_path / "ky-thuat.xlsx"
    report = monthly_report()
    render_monthly_xlsx(report, path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames[0] == "Tổng quan" and "Tham gia" in book.sheetnames
    assert all(len(n) <= 31 for n in book.sheetnames)
    overview = list(book["Tổng quan"].iter_rows(min_row=5, max_row=7, values_only=True))
    assert overview[0][1] == 1_050_321 and overview[1][1] == 1_234_000
    assert overview[1][2] == pytest.approx(-14.89, abs=0.01)
    daily = book["Số IP botnet theo ngày"]
    days = list(daily.iter_rows(min_row=4, values_only=True))
    assert len(days) == 31 and days[0][1] == report.daily[0].ips
    assert days[0][0].date() == date(2026, 1, 1)
    family = list(book["Theo họ mã độc"].iter_rows(min_row=4, values_only=True))
    assert family[0][:4] == (1, "Mirai", 412345, 450000) and family[2][3] is None
    part = list(book["Tham gia"].iter_rows(min_row=4, values_only=True))
    assert part[1][2] == "Tỉnh Đồng Nai" and part[1][4:7] == (1500, 1320, "Không")


@given(st.text(max_size=60), st.lists(st.text(max_size=40), max_size=5))
def test_sheet_titles_are_valid(name: str, taken: list[str]) -> None:
    from quet.reports.xlsx import sheet_title

    title = sheet_title(name, taken)
    assert 1 <= len(title) <= 31
    assert not set(title) & set("[]:*?/\\")
    assert title.lower() not in {t.lower() for t in taken}


# ----------------------------------------------------------------------------- PDF and HTML


@pytest.fixture(scope="module")
def campaign_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from quet.reports.pdf import render_campaign_pdf

    path = tmp_path_factory.mktemp("pdf") / "bao-cao.pdf"
    render_campaign_pdf(campaign_report(), path)
    return path


def test_pdf_text_and_diacritics(campaign_pdf: Path) -> None:
    text_ = flat(pdf_text(campaign_pdf))
    for expected in (
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "Bắc Kạn, ngày 05 tháng 01 năm 2026",
        "Số: 05/BC-STTTT",
        "Tổng số cơ quan, tổ chức, doanh nghiệp",
        "PHỤ LỤC",
        "Mẫu thống kê, báo cáo kết quả triển khai",
        "1.234.567",
        "87,5 %",
        "Huyện Pác Nặm",
        "Chưa báo cáo",
        "Nguyễn Thị Huế",
    ):
        assert expected in text_, expected
    assert "Số liệu đo được: 317" in text_ or "Số liệu đo được:" in text_


def test_pdf_pages(campaign_pdf: Path) -> None:
    pages = pdf_pages(campaign_pdf)
    assert len(pages) >= 3
    assert pages[0] == pytest.approx((595.28, 841.89), abs=0.5)  # A4 portrait
    assert pages[-1] == pytest.approx((841.89, 595.28), abs=0.5)  # the annexes: landscape
    # the page number: not on page 1, "2" at the top of page 2
    assert pdf_text(campaign_pdf, 1).split()[0] != "1"
    assert pdf_text(campaign_pdf, 2).split()[0] == "2"
    fonts = subprocess.run(
        [poppler("pdffonts"), str(campaign_pdf)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    assert fonts and all(" yes yes yes " in line for line in fonts)  # embedded, Unicode


def test_pdf_page_images(campaign_pdf: Path, tmp_path: Path) -> None:
    from PIL import Image

    subprocess.run(
        [poppler("pdftoppm"), "-r", "50", "-png", str(campaign_pdf), str(tmp_path / "page")],
        check=True,
    )
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == len(pdf_pages(campaign_pdf))
    first = Image.open(images[0]).convert("L")
    assert abs(first.size[0] - 413) <= 1 and abs(first.size[1] - 585) <= 1  # A4 at 50 dpi
    px_per_mm = 50 / 25.4
    dark = [
        (x, y)
        for y in range(first.height)
        for x in range(first.width)
        if _grey(first.getpixel((x, y))) < 128
    ]
    assert len(dark) > 2000
    # ink stays inside the decree's margins (left 30 mm, right 15 mm, top 20 mm)
    assert min(x for x, _ in dark) >= 29 * px_per_mm
    assert max(x for x, _ in dark) <= first.width - 14 * px_per_mm
    assert min(y for _, y in dark) >= 19 * px_per_mm


def test_pdf_monthly(tmp_path: Path) -> None:
    from quet.reports.pdf import render_monthly_pdf

    path = tmp_path / "ky-thuat.pdf"
    render_monthly_pdf(monthly_report(), path)
    text_ = flat(pdf_text(path))
    for expected in (
        "BÁO CÁO KỸ THUẬT",
        "Tình hình địa chỉ IP botnet tháng 01 năm 2026",
        "1.050.321",
        "Thành phố Hồ Chí Minh",
        "Tỉnh Đồng Nai",
        "Sở Y tế Đồng Nai",
        "Hà Nội, ngày 03 tháng 02 năm 2026",
        "Trần Văn Đức",
        "Số IP botnet theo ngày",
    ):
        assert expected in text_, expected
    assert all(size == pytest.approx((595.28, 841.89), abs=0.5) for size in pdf_pages(path))


def test_html_fragment_and_page() -> None:
    from quet.reports.pdf import render_campaign_html, render_monthly_html

    hostile = campaign_report(org_name="<script>alert(1)</script> Sở <b>")
    fragment = render_campaign_html(hostile, standalone=False)
    assert fragment.lstrip().startswith("<style>") and '<article class="vn-doc' in fragment
    assert "<html" not in fragment and "@page" not in fragment
    assert "<script>" not in fragment and "&lt;script&gt;" in fragment
    page = render_campaign_html(campaign_report())
    assert page.startswith("<!doctype html>") and "@page" in page
    assert 'data-key="received"' in page and ROW1 in page
    monthly = render_monthly_html(monthly_report(), standalone=False)
    assert monthly.count("<svg") == 2 and 'role="img"' in monthly
    english = render_campaign_html(campaign_report(), lang="en", standalone=False)
    assert "2. Figures" in english and "Organisations that received" in english
    assert "SOCIALIST REPUBLIC OF VIETNAM" in english


def test_pdf_fetches_nothing(tmp_path: Path) -> None:
    """The URL fetcher refuses http(s) and file: no connection reaches a listening server."""
    import socket

    from quet.reports.pdf import OfflineFetcher, _write_pdf

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        html = (
            f'<link rel="stylesheet" href="http://127.0.0.1:{port}/x.css">'
            f'<p>ảnh<img src="http://127.0.0.1:{port}/a.png">'
            f'<img src="file:///etc/hostname"></p>'
        )
        out = io.BytesIO()
        _write_pdf(html, out)
        assert out.getvalue().startswith(b"%PDF")
        with pytest.raises(OSError):
            server.accept()  # nobody connected
    finally:
        server.close()
    with pytest.raises(ValueError):
        OfflineFetcher().fetch("https://example.org/x.png")


def test_render_bytes() -> None:
    from quet.reports.render import FORMATS, MEDIA_TYPES, render_bytes

    assert set(MEDIA_TYPES) == set(FORMATS)
    report = campaign_report()
    assert render_bytes(report, "docx")[:2] == b"PK"
    assert render_bytes(report, "XLSX")[:2] == b"PK"
    assert render_bytes(monthly_report(), "pdf")[:5] == b"%PDF-"
    with pytest.raises(ValueError, match="docx, xlsx, pdf"):
        render_bytes(report, "odt")


# ----------------------------------------------------------------------------- review fixes


def no_data_monthly() -> MonthlyTechnicalReport:
    """A month without statistics: no figure for the month, last month or last year (None, never
    0); an unknown province and operator; the issuer's abbreviation for the number."""
    report = monthly_report()
    report.number = ""
    report.issuer_short = "TTGSATKGMQG"
    report.ips_month = None
    report.ips_previous_month = None
    report.ips_same_month_last_year = None
    report.daily = []
    report.by_province = [Ranked("Hà Nội", 12, 3), Ranked("", 40, None)]
    report.by_isp = [Ranked("  ", 5, None)]
    return report


def test_monthly_without_data_says_so_in_every_format(tmp_path: Path) -> None:
    import docx
    import openpyxl

    from quet.reports.docx import render_monthly_docx
    from quet.reports.labels import monthly_summary
    from quet.reports.pdf import render_monthly_pdf
    from quet.reports.xlsx import render_monthly_xlsx

    report = no_data_monthly()
    assert MonthlyTechnicalReport.change(None, 5) is None
    sentence = monthly_summary(report)
    assert "chưa có dữ liệu" in sentence.lower() and " 0 " not in sentence
    assert "no botnet data" in monthly_summary(report, "en")
    # Last month missing but this month known: said, not compared with 0.
    known = monthly_report()
    known.ips_previous_month = None
    assert "tháng trước chưa có dữ liệu" in monthly_summary(known)
    assert "no data for the previous month" in monthly_summary(known, "en")

    render_monthly_docx(report, tmp_path / "m.docx")
    document = docx.Document(str(tmp_path / "m.docx"))
    texts = [p.text for p in document.paragraphs]
    assert sentence in texts
    trend = document.tables[1]
    assert [trend.cell(1, i).text for i in (1, 2, 3)] == ["—", "—", "—"]
    assert document.tables[0].cell(1, 0).paragraphs[0].text == "Số:      /BC-TTGSATKGMQG"
    provinces = next(t for t in document.tables if t.cell(0, 1).text == "Tỉnh, thành phố")
    assert [provinces.cell(i, 1).text for i in (1, 2)] == ["Hà Nội", "Không rõ"]
    isps = next(t for t in document.tables if t.cell(0, 1).text == "Nhà cung cấp dịch vụ")
    assert isps.cell(1, 1).text == "Không rõ"

    render_monthly_xlsx(report, tmp_path / "m.xlsx")
    book = openpyxl.load_workbook(tmp_path / "m.xlsx")
    overview = book["Tổng quan"]
    rows = list(overview.iter_rows(min_row=5, max_row=7, values_only=True))
    assert [r[1] for r in rows] == [None, None, None]  # empty, not 0
    cells = [c for row in overview.iter_rows(values_only=True) for c in row if c]
    assert sentence in cells
    province = list(book["Theo tỉnh, thành phố"].iter_rows(min_row=4, values_only=True))
    assert province[1][1] == "Không rõ"

    render_monthly_pdf(report, tmp_path / "m.pdf")
    text_ = flat(pdf_text(tmp_path / "m.pdf"))
    assert flat(sentence) in text_ and "Không rõ" in text_ and "/BC-TTGSATKGMQG" in text_


def test_annex_note_overdue_is_not_late_submission() -> None:
    from quet.reports.labels import annex_note

    when = datetime(2026, 1, 3, tzinfo=UTC)
    values: dict[str, int | float | None] = {}
    missing = AnnexRow("A", "Huyện A", "missing", True, None, values)
    draft = AnnexRow("B", "Huyện B", "draft", True, None, values)
    came_late = AnnexRow("C", "Huyện C", "submitted", True, when, values)
    on_time = AnnexRow("D", "Huyện D", "accepted", False, when, values)
    assert annex_note(missing) == "chưa báo cáo; quá hạn"
    assert annex_note(missing, "en") == "not reported; overdue"
    assert annex_note(draft) == "đang soạn; quá hạn"
    assert annex_note(came_late) == "nộp muộn" and annex_note(on_time) == ""


def test_one_name_for_the_accepted_status(monkeypatch: pytest.MonkeyPatch) -> None:
    from quet.cli import report as cli_report  # registers the CLI strings
    from quet.i18n import t
    from quet.reports.labels import status_label
    from quet.server.web import i18n as web_i18n
    from quet.server.web.pages import reports as pages  # registers the page strings

    assert cli_report.app is not None and pages.router is not None
    monkeypatch.setenv("QUET_LANG", "vi")
    assert status_label("accepted") == "Đã chấp nhận"
    assert t("report.status.accepted") == "Đã chấp nhận"
    assert web_i18n.translator("vi")("report.status.accepted") == "Đã chấp nhận"
