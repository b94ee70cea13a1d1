"""One self-contained HTML page for a scan: what was found first, then what could not be scanned."""

from __future__ import annotations

import html
from collections import Counter
from datetime import datetime

from quet.i18n import lang
from quet.scanner.result import Finding, ScanResult
from quet.units import human_size

_TEXT = {
    "vi": {
        "title": "Kết quả quét mã độc",
        "clean": "Không phát hiện mã độc",
        "found": "Phát hiện {n} tệp nhiễm mã độc",
        "incomplete": "Quét chưa hoàn tất",
        "host": "Máy",
        "when": "Thời gian",
        "paths": "Đã quét",
        "files": "Tệp",
        "objects": "Đối tượng (kể cả trong tệp nén)",
        "data": "Dung lượng",
        "cached": "Bỏ qua (không đổi)",
        "elapsed": "Thời gian quét",
        "sigs": "Bộ mẫu nhận diện",
        "findings": "Phát hiện",
        "path": "Đường dẫn",
        "name": "Tên nhận diện",
        "kind": "Loại",
        "action": "Xử lý",
        "too_large": "Tệp quá lớn, chưa quét",
        "errors": "Lỗi khi quét",
        "problems": "Tệp nén vượt giới hạn / bất thường",
        "size": "Kích thước",
        "none": "Không có",
        "interrupted": "Quét đã bị dừng giữa chừng: kết quả chỉ là một phần.",
        "kind_hash": "mã băm",
        "kind_yara": "YARA",
        "kind_filename": "tên tệp",
        "kind_c2": "kết nối C2",
        "kind_heuristic": "dấu hiệu",
        "kind_process": "tiến trình",
        "kind_persistence": "khởi động cùng máy",
        "act_reported": "đã báo cáo",
        "act_quarantined": "đã cách ly",
        "act_quarantine-failed": "cách ly thất bại",
    },
    "en": {
        "title": "Malware scan result",
        "clean": "No malware found",
        "found": "{n} infected file(s) found",
        "incomplete": "Scan incomplete",
        "host": "Host",
        "when": "When",
        "paths": "Scanned",
        "files": "Files",
        "objects": "Objects (including archive members)",
        "data": "Data",
        "cached": "Skipped (unchanged)",
        "elapsed": "Scan time",
        "sigs": "Signatures",
        "findings": "Findings",
        "path": "Path",
        "name": "Detection",
        "kind": "Kind",
        "action": "Action",
        "too_large": "Files too large, not scanned",
        "errors": "Errors",
        "problems": "Archive limits / anomalies",
        "size": "Size",
        "none": "None",
        "interrupted": "The scan was stopped part-way: this is a partial result.",
        "kind_process": "process",
        "kind_persistence": "persistence",
        "act_reported": "reported",
        "act_quarantined": "quarantined",
        "act_quarantine-failed": "quarantine failed",
    },
}

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f4f6f8;color:#1d2330}
header{padding:28px 40px;color:#fff}
header.clean{background:linear-gradient(90deg,#13795b,#1f9d74)}
header.found{background:linear-gradient(90deg,#a4161a,#d62828)}
header.incomplete{background:linear-gradient(90deg,#9a6700,#bf8700)}
header h1{margin:0 0 6px;font-size:28px} header p{margin:0;opacity:.9}
main{padding:24px 40px;max-width:1200px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:24px}
.card{background:#fff;border-radius:10px;padding:14px 18px;min-width:150px;box-shadow:0 1px 3px #0001}
.card b{display:block;font-size:22px} .card span{color:#5b6472;font-size:13px}
section{background:#fff;border-radius:10px;padding:16px 20px;margin-bottom:18px;box-shadow:0 1px 3px #0001}
h2{font-size:18px;margin:0 0 12px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:7px 8px;border-bottom:1px solid #e6e9ee;vertical-align:top}
th{color:#5b6472;font-weight:600} td.path{font-family:ui-monospace,monospace;word-break:break-all}
.tag{display:inline-block;border-radius:6px;padding:1px 7px;font-size:12px;background:#eef1f5}
.tag.hash{background:#fde2e1}.tag.yara{background:#fff1c2}.tag.filename{background:#e3ecff}
.tag.c2{background:#f1e3ff}.tag.heuristic{background:#ffe6cc}
.muted{color:#5b6472}
td.act{white-space:nowrap}
.inner{color:#5b6472;font-size:12px;margin-left:8px}
"""


def render(result: ScanResult) -> str:
    tx = _TEXT["en" if lang() == "en" else "vi"]
    e = html.escape
    infected = result.infected_files
    if result.findings:
        state, headline = "found", tx["found"].format(n=infected or len(result.findings))
    elif result.interrupted or result.errors_count:
        state, headline = "incomplete", tx["incomplete"]
    else:
        state, headline = "clean", tx["clean"]
    sigs = result.signatures
    cards = [
        (tx["files"], f"{result.files_scanned:,}"),
        (tx["objects"], f"{result.objects_scanned:,}"),
        (tx["data"], human_size(result.bytes_scanned)),
        (tx["cached"], f"{result.files_cached:,}"),
        (tx["findings"], f"{len(result.findings):,}"),
        (tx["elapsed"], f"{result.elapsed_seconds:.1f} s"),
    ]
    parts = [
        "<!doctype html><html lang='vi'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{e(tx['title'])} — {e(result.hostname)}</title><style>{_CSS}</style></head><body>",
        f"<header class='{state}'><h1>{e(headline)}</h1>",
        f"<p>{e(tx['host'])}: <b>{e(result.hostname)}</b> ({e(result.os)}) · "
        f"{e(tx['when'])}: {e(_when(result.started))} · {e(tx['paths'])}: {e(', '.join(result.paths))}</p>",
        "</header><main>",
    ]
    if result.interrupted:
        parts.append(f"<section><b>{e(tx['interrupted'])}</b></section>")
    parts.append("<div class='cards'>")
    parts += [f"<div class='card'><b>{e(v)}</b><span>{e(k)}</span></div>" for k, v in cards]
    parts.append("</div>")

    parts.append(f"<section><h2>{e(tx['findings'])} ({len(result.findings)})</h2>")
    if result.findings:
        parts.append(
            f"<table><tr><th>{e(tx['path'])}</th><th>{e(tx['name'])}</th>"
            f"<th>{e(tx['action'])}</th></tr>"
        )
        # One row per infected file; archive members and several detections folded in.
        groups: dict[str, list[Finding]] = {}
        for f in result.findings:
            groups.setdefault((f.path or f.detail).split("!", 1)[0], []).append(f)
        for top, found in groups.items():
            inner = sorted({f.path.split("!", 1)[1] for f in found if "!" in f.path})
            inner_html = "".join(f"<div class='inner'>⤷ {e(m)}</div>" for m in inner[:8])
            if len(inner) > 8:
                inner_html += f"<div class='inner'>… +{len(inner) - 8}</div>"
            seen: set[tuple[str, str]] = set()
            names = []
            for f in found:
                if (f.kind, f.name) in seen:
                    continue
                seen.add((f.kind, f.name))
                kind = tx.get("kind_" + f.kind, f.kind)
                detail = f"<div class='muted'>{e(f.detail)}</div>" if f.detail else ""
                names.append(
                    f"<div><span class='tag {e(f.kind)}'>{e(kind)}</span> {e(f.name)}{detail}</div>"
                )
            actions = sorted({tx.get("act_" + f.action, f.action) for f in found})
            qid = next((f.quarantine_id for f in found if f.quarantine_id), "")
            parts.append(
                f"<tr><td class='path'>{e(top)}{inner_html}</td><td>{''.join(names)}</td>"
                f"<td class='act'>{e(', '.join(actions))}"
                f"{f'<div class=muted>{e(qid)}</div>' if qid else ''}</td></tr>"
            )
        parts.append("</table>")
        kinds = Counter(f.kind for f in result.findings)
        parts.append(
            "<p class='muted'>" + " · ".join(f"{k}: {v}" for k, v in kinds.most_common()) + "</p>"
        )
    else:
        parts.append(f"<p class='muted'>{e(tx['none'])}</p>")
    parts.append("</section>")

    for key, rows, cols in (
        ("too_large", result.too_large, ("path", "size")),
        ("problems", result.problems, ("path", "problem")),
        ("errors", result.errors, ("path", "error")),
    ):
        if not rows:
            continue
        parts.append(f"<section><h2>{e(tx[key])} ({len(rows)})</h2><table>")
        for row in rows:
            cells = []
            for col in cols:
                value = row.get(col, "")
                text = human_size(int(value)) if col == "size" else str(value)
                cls = " class='path'" if col == "path" else ""
                cells.append(f"<td{cls}>{e(text)}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table></section>")

    parts.append(f"<section><h2>{e(tx['sigs'])}</h2><table>")
    for key in ("yara_rules", "hashes", "filename_iocs", "c2_ips", "c2_domains", "identity"):
        parts.append(f"<tr><th>{e(key)}</th><td>{e(str(sigs.get(key, '')))}</td></tr>")
    parts.append("</table></section>")
    parts.append(f"<p class='muted'>Quét · scan {e(result.id)}</p></main></body></html>")
    return "\n".join(parts)


def _when(iso: str) -> str:
    """'2026-11-25T07:52:39+00:00' -> '25/11/2026 07:52 UTC', the way Vietnamese readers write dates."""
    try:
        stamp = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return stamp.strftime("%d/%m/%Y %H:%M ") + (stamp.tzname() or "")
