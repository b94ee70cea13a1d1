"""python-docx building blocks for documents laid out by Nghị định 30/2020/NĐ-CP, Phụ lục I: A4,
Times New Roman declared for every script, the margins, the header block, borders drawn as
paragraph borders, the page number in the top margin (not on page 1)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.section import Section
from docx.shared import Cm, Emu, Mm, Pt
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph
from docx.text.run import Run

FONT = "Times New Roman"
BODY_PT = 14
# The decree's ranges: top/bottom 20–25 mm, left 30–35 mm, right 15–20 mm.
MARGIN_TOP_MM = 20
MARGIN_BOTTOM_MM = 20
MARGIN_LEFT_MM = 30
MARGIN_RIGHT_MM = 15
A4_W_MM, A4_H_MM = 210, 297
TEXT_W_MM = A4_W_MM - MARGIN_LEFT_MM - MARGIN_RIGHT_MM  # 165 mm portrait
TEXT_W_LANDSCAPE_MM = A4_H_MM - MARGIN_LEFT_MM - MARGIN_RIGHT_MM  # 252 mm
FIRST_LINE_INDENT_CM = 1.27
CELL_PAD_MM = 1.9  # Word's default left/right cell margin (108 twips)

CENTER = WD_ALIGN_PARAGRAPH.CENTER
LEFT = WD_ALIGN_PARAGRAPH.LEFT
RIGHT = WD_ALIGN_PARAGRAPH.RIGHT
JUSTIFY = WD_ALIGN_PARAGRAPH.JUSTIFY

# Liberation Serif is metric-compatible with Times New Roman: its advance widths measure how long
# a header line is, so the rule under "Độc lập - Tự do - Hạnh phúc" is exactly as long as the text.
_FONT_DIRS = (
    "/usr/share/fonts/truetype/liberation",
    "/usr/share/fonts/truetype/liberation2",
    "/usr/share/fonts/liberation",
    "/usr/share/fonts/liberation-serif",
)

# Word rejects a file whose properties are out of the schema's order, so new children are put
# before the first sibling that must follow them.
_RPR_AFTER_SZCS = (
    "w:highlight",
    "w:u",
    "w:effect",
    "w:bdr",
    "w:shd",
    "w:fitText",
    "w:vertAlign",
    "w:rtl",
    "w:cs",
    "w:em",
    "w:lang",
    "w:eastAsianLayout",
    "w:specVanish",
    "w:oMath",
)
_RPR_AFTER_LANG = ("w:eastAsianLayout", "w:specVanish", "w:oMath")
_PPR_AFTER_PBDR = (
    "w:shd",
    "w:tabs",
    "w:suppressAutoHyphens",
    "w:kinsoku",
    "w:wordWrap",
    "w:overflowPunct",
    "w:topLinePunct",
    "w:autoSpaceDE",
    "w:autoSpaceDN",
    "w:bidi",
    "w:adjustRightInd",
    "w:snapToGrid",
    "w:spacing",
    "w:ind",
    "w:contextualSpacing",
    "w:mirrorIndents",
    "w:suppressOverlap",
    "w:jc",
    "w:textDirection",
    "w:textAlignment",
    "w:textboxTightWrap",
    "w:outlineLvl",
    "w:divId",
    "w:cnfStyle",
    "w:rPr",
    "w:sectPr",
    "w:pPrChange",
)
_TBLPR_ORDER = (
    "w:tblStyle",
    "w:tblpPr",
    "w:tblOverlap",
    "w:bidiVisual",
    "w:tblStyleRowBandSize",
    "w:tblStyleColBandSize",
    "w:tblW",
    "w:jc",
    "w:tblCellSpacing",
    "w:tblInd",
    "w:tblBorders",
    "w:shd",
    "w:tblLayout",
    "w:tblCellMar",
    "w:tblLook",
    "w:tblCaption",
    "w:tblDescription",
    "w:tblPrChange",
)
_TCPR_AFTER_SHD = (
    "w:noWrap",
    "w:tcMar",
    "w:textDirection",
    "w:tcFitText",
    "w:vAlign",
    "w:hideMark",
    "w:headers",
    "w:cellIns",
    "w:cellDel",
    "w:cellMerge",
    "w:tcPrChange",
)


def _put(parent: Any, child: Any, successors: Sequence[str]) -> Any:
    """Insert `child` into `parent` before the first existing element named in `successors`."""
    names = {qn(tag) for tag in successors}
    for i, existing in enumerate(parent):
        if existing.tag in names:
            parent.insert(i, child)
            return child
    parent.append(child)
    return child


def _set_szcs(rpr: Any, half_points: int) -> None:
    node = rpr.find(qn("w:szCs"))
    if node is None:
        node = _put(rpr, OxmlElement("w:szCs"), _RPR_AFTER_SZCS)
    node.set(qn("w:val"), str(half_points))


@lru_cache(maxsize=16)
def _font(bold: bool, size: float) -> object | None:
    try:
        from PIL import ImageFont
    except ImportError:  # pragma: no cover - Pillow comes with WeasyPrint
        return None
    name = "LiberationSerif-Bold.ttf" if bold else "LiberationSerif-Regular.ttf"
    for folder in _FONT_DIRS:
        path = Path(folder) / name
        if path.exists():
            return ImageFont.truetype(str(path), size=int(size * 10))
    return None


def text_width_mm(text: str, size_pt: float, bold: bool = False) -> float:
    """The printed width of one line in Times New Roman (measured with Liberation Serif)."""
    # Vietnamese marks take no advance width: measure the base letters, which every version of
    # the font has (Liberation Serif 1.x lacks the precomposed Vietnamese letters).
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    font = _font(bold, size_pt)
    if font is None:  # no font file: an average Times glyph is about half an em wide
        points = len(text) * size_pt * (0.56 if bold else 0.5)
    else:
        points = float(font.getlength(text)) / 10  # type: ignore[attr-defined]
    return points * 25.4 / 72


def set_run_font(
    run: Run, size: float | None = None, bold: bool | None = None, italic: bool | None = None
) -> Run:
    """Times New Roman for ASCII, high ANSI, East Asian and complex scripts, so Word never
    substitutes a font for the Vietnamese letters; the complex-script size and bold too."""
    run.font.name = FONT
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), FONT)
    if size is not None:
        run.font.size = Pt(size)
        _set_szcs(rpr, int(size * 2))
    if bold is not None:
        run.font.bold = bold
        run.font.cs_bold = bold
    if italic is not None:
        run.font.italic = italic
        run.font.cs_italic = italic
    return run


def setup_document(doc: DocxDocument) -> None:
    """Normal style: Times New Roman 14, Vietnamese language, black; the first section A4."""
    normal = doc.styles["Normal"]
    font = normal.font
    font.name = FONT
    font.size = Pt(BODY_PT)
    rpr = normal.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), FONT)
    lang = OxmlElement("w:lang")
    lang.set(qn("w:val"), "vi-VN")
    lang.set(qn("w:eastAsia"), "vi-VN")
    lang.set(qn("w:bidi"), "ar-SA")
    _put(rpr, lang, _RPR_AFTER_LANG)
    _set_szcs(rpr, BODY_PT * 2)
    pf = normal.paragraph_format
    pf.space_before = Pt(0)
    pf.space_after = Pt(0)
    pf.line_spacing = 1.0
    section = doc.sections[0]
    page_setup(section, landscape=False)
    add_page_number(section)


def page_setup(section: Section, landscape: bool) -> None:
    section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    width, height = (A4_H_MM, A4_W_MM) if landscape else (A4_W_MM, A4_H_MM)
    section.page_width = Mm(width)
    section.page_height = Mm(height)
    section.top_margin = Mm(MARGIN_TOP_MM)
    section.bottom_margin = Mm(MARGIN_BOTTOM_MM)
    section.left_margin = Mm(MARGIN_LEFT_MM)
    section.right_margin = Mm(MARGIN_RIGHT_MM)
    section.header_distance = Mm(10)
    section.footer_distance = Mm(10)


def add_page_number(section: Section) -> None:
    """The page number centred in the top margin, 13 pt, not shown on the first page."""
    section.different_first_page_header_footer = True
    para = section.header.paragraphs[0]
    para.alignment = CENTER
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    rpr = OxmlElement("w:rPr")
    fonts = OxmlElement("w:rFonts")
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), FONT)
    rpr.append(fonts)
    for tag in ("w:sz", "w:szCs"):
        size = OxmlElement(tag)
        size.set(qn("w:val"), "26")
        rpr.append(size)
    run.append(rpr)
    text = OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    field.append(run)
    para._p.append(field)


def para(
    container: DocxDocument | _Cell,
    text: str = "",
    size: float = BODY_PT,
    bold: bool = False,
    italic: bool = False,
    align: WD_ALIGN_PARAGRAPH | None = LEFT,
    first_indent_cm: float | None = None,
    left_indent_cm: float | None = None,
    before: float = 0,
    after: float = 0,
    first: bool = False,
    keep_next: bool = False,
) -> Paragraph:
    """One paragraph in the document or a table cell; `first` reuses a cell's empty paragraph."""
    p: Paragraph
    if first and isinstance(container, _Cell) and not container.paragraphs[0].text:
        p = container.paragraphs[0]
    else:
        p = cast(Paragraph, container.add_paragraph())
    if align is not None:
        p.alignment = align
    pf = p.paragraph_format
    pf.space_before = Pt(before)
    pf.space_after = Pt(after)
    if first_indent_cm is not None:
        pf.first_line_indent = Cm(first_indent_cm)
    if left_indent_cm is not None:
        pf.left_indent = Cm(left_indent_cm)
    if keep_next:
        pf.keep_with_next = True
    if text:
        add_run(p, text, size, bold, italic)
    return p


def add_run(
    p: Paragraph, text: str, size: float = BODY_PT, bold: bool = False, italic: bool = False
) -> Run:
    """A run; newlines in `text` become line breaks inside the paragraph."""
    lines = text.split("\n")
    run = p.add_run(lines[0])
    for line in lines[1:]:
        run.add_break(WD_BREAK.LINE)
        run.add_text(line)
    return set_run_font(run, size, bold, italic)


def border(p: Paragraph, side: str = "bottom", size_eighths: int = 6, space_pt: int = 1) -> None:
    """A solid black rule on one side of a paragraph (its width is the paragraph's)."""
    ppr = p._p.get_or_add_pPr()
    borders = ppr.find(qn("w:pBdr"))
    if borders is None:
        borders = _put(ppr, OxmlElement("w:pBdr"), _PPR_AFTER_PBDR)
    edge = OxmlElement(f"w:{side}")
    edge.set(qn("w:val"), "single")
    edge.set(qn("w:sz"), str(size_eighths))
    edge.set(qn("w:space"), str(space_pt))
    edge.set(qn("w:color"), "000000")
    borders.append(edge)


def rule_paragraph(cell: _Cell, width_mm: float, cell_width_mm: float) -> Paragraph:
    """A short centred rule (a tiny empty paragraph with a top border) of `width_mm`."""
    p = cast(Paragraph, cell.add_paragraph())
    side = max((cell_width_mm - 2 * CELL_PAD_MM - width_mm) / 2, 0)
    p.paragraph_format.left_indent = Mm(side)
    p.paragraph_format.right_indent = Mm(side)
    p.paragraph_format.space_before = Pt(1)
    p.paragraph_format.space_after = Pt(0)
    p.paragraph_format.line_spacing = Pt(2)
    border(p, "top", 6, 0)
    return p


def underline_to_text(
    p: Paragraph, text: str, size: float, bold: bool, cell_width_mm: float
) -> None:
    """Indent a centred one-line paragraph so its bottom border is as long as its text."""
    width = text_width_mm(text, size, bold) + 0.6
    side = max((cell_width_mm - 2 * CELL_PAD_MM - width) / 2, 0)
    p.paragraph_format.left_indent = Mm(side)
    p.paragraph_format.right_indent = Mm(side)
    border(p, "bottom", 6, 1)


def _table_prop(table: Table, tag: str) -> Any:
    tblpr = table._tbl.tblPr
    node = tblpr.find(qn(tag))
    if node is None:
        later = _TBLPR_ORDER[_TBLPR_ORDER.index(tag) + 1 :]
        node = _put(tblpr, OxmlElement(tag), later)
    return node


def table_borders(table: Table, visible: bool) -> None:
    node = _table_prop(table, "w:tblBorders")
    for child in list(node):
        node.remove(child)
    for side in ("top", "left", "bottom", "right", "insideH", "insideV"):
        edge = OxmlElement(f"w:{side}")
        if visible:
            edge.set(qn("w:val"), "single")
            edge.set(qn("w:sz"), "4")
            edge.set(qn("w:space"), "0")
            edge.set(qn("w:color"), "000000")
        else:
            edge.set(qn("w:val"), "nil")
        node.append(edge)


def fixed_table(
    container: DocxDocument, rows: int, widths_mm: Sequence[float], borders: bool
) -> Table:
    """A table with fixed column widths (Word and LibreOffice both honour them)."""
    table = cast(Table, container.add_table(rows=rows, cols=len(widths_mm)))
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    layout = _table_prop(table, "w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    table_borders(table, borders)
    for i, width in enumerate(widths_mm):
        table.columns[i].width = Mm(width)
        for cell in table.columns[i].cells:
            cell.width = Mm(width)
    return table


def header_row(row_cells: Sequence[_Cell], labels: Sequence[str], size: float) -> None:
    for cell, label in zip(row_cells, labels, strict=True):
        para(cell, label, size, bold=True, align=CENTER, first=True, before=2, after=2)
        cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER
        shade(cell, "F2F2F2")
    repeat = OxmlElement("w:tblHeader")
    repeat.set(qn("w:val"), "true")
    row_cells[0]._tc.getparent().get_or_add_trPr().append(repeat)


def shade(cell: _Cell, fill: str) -> None:
    tcpr = cell._tc.get_or_add_tcPr()
    node = OxmlElement("w:shd")
    node.set(qn("w:val"), "clear")
    node.set(qn("w:color"), "auto")
    node.set(qn("w:fill"), fill)
    _put(tcpr, node, _TCPR_AFTER_SHD)


def cell_text(
    cell: _Cell,
    text: str,
    size: float,
    align: WD_ALIGN_PARAGRAPH | None = LEFT,
    bold: bool = False,
    italic: bool = False,
) -> None:
    para(cell, text, size, bold=bold, italic=italic, align=align, first=True, before=2, after=2)
    cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER


def page_break(doc: DocxDocument) -> None:
    doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)


def emu_mm(value: int | Emu | None) -> float:
    return 0.0 if value is None else int(value) / 36000
