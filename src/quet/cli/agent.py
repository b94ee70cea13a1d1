"""`quet agent`: enroll this machine with a campaign server, run scheduled scans, show status,
flush the spool."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from quet.errors import InputError
from quet.i18n import register, t

register("agent.enrolled", "Đã đăng ký máy {host} với {url}: thiết bị #{id}, đơn vị {org}",
         "Enrolled {host} with {url}: device #{id}, organisation {org}")  # fmt: skip
register("agent.already", "Máy này đã đăng ký với {url} (thiết bị #{id}); dùng --force để đăng ký lại",
         "This machine is already enrolled with {url} (device #{id}); use --force to enroll again")  # fmt: skip
register("agent.interval", "Khoảng thời gian không hợp lệ: {v} (ví dụ 6h, 30m, 1d)",
         "Not an interval: {v} (e.g. 6h, 30m, 1d)")  # fmt: skip
register("agent.uploaded", "Đã gửi {sent}, đã có sẵn {dup}, bị từ chối {rej}, còn chờ {kept}",
         "Sent {sent}, already there {dup}, rejected {rej}, waiting {kept}")  # fmt: skip
register("agent.pending", "Báo cáo chờ gửi: {n}; bị từ chối: {r} (xem {dir})",
         "Reports waiting: {n}; rejected: {r} (see {dir})")  # fmt: skip
register("agent.kinds", "Loại máy: server, workstation hoặc endpoint",
         "Machine kind: server, workstation or endpoint")  # fmt: skip

app = typer.Typer(
    help=(
        "Tác tử: đăng ký máy với máy chủ chiến dịch, quét định kỳ, gửi kết quả.\n\n"
        "The agent: enroll with a campaign server, scan on a schedule, upload results.\n\n"
        "Ví dụ / examples:  quet agent enroll https://quet.so.gov.vn qe_… --kind server    "
        "quet agent run --paths /home --interval 6h    quet agent status"
    ),
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> float:
    """'6h', '30m', '90s', '1d', '1h30m' or plain seconds."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise InputError(t("agent.interval", v=text))
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise InputError(t("agent.interval", v=text))
    return seconds


def _log(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    err.print(f"[dim]{stamp}[/] {escape(message)}", highlight=False)


@app.command("enroll")
def enroll_cmd(
    url: Annotated[
        str, typer.Argument(help="Địa chỉ máy chủ / server URL, e.g. https://quet.example")
    ],
    token: Annotated[str, typer.Argument(help="Mã đăng ký (qe_…) / enrollment token")],
    kind: Annotated[str, typer.Option(help="server | workstation | endpoint")] = "workstation",
    paths: Annotated[
        list[str] | None, typer.Option("--paths", help="Thư mục quét mặc định / default scan paths")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Đăng ký lại / enroll again")] = False,
) -> None:
    """Đăng ký máy này với máy chủ / enroll this machine with a campaign server."""
    from quet.agent import config, runner
    from quet.agent.client import AgentClient

    if kind not in ("server", "workstation", "endpoint"):
        raise InputError(t("agent.kinds"))
    if not url.startswith(("http://", "https://")):
        raise InputError(f"{url}: the server URL must start with http:// or https://")
    if config.config_path().exists() and not force:
        try:
            old = config.load_config()
        except InputError:
            pass
        else:
            raise InputError(t("agent.already", url=old.server_url, id=old.device_id))
    info = runner.inventory(kind)
    with AgentClient(url) as client:
        answer = client.enroll(token, info)
    cfg = config.AgentConfig(
        server_url=url.rstrip("/"),
        device_id=int(answer["device_id"]),
        credential=str(answer["credential"]),
        org=str(answer.get("org", "")),
        kind=kind,
        paths=list(paths or []),
        enrolled_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
    )
    config.save_config(cfg)
    out.print(t("agent.enrolled", host=info["hostname"], url=cfg.server_url, id=cfg.device_id,
                org=cfg.org))  # fmt: skip


@app.command("run")
def run_cmd(
    once: Annotated[
        bool, typer.Option("--once", help="Một lượt rồi dừng / one cycle, then exit")
    ] = False,
    interval: Annotated[str, typer.Option(help="Chu kỳ quét / scan every (6h, 30m, 1d)")] = "6h",
    paths: Annotated[
        list[str] | None, typer.Option("--paths", help="Thư mục cần quét / folders to scan")
    ] = None,
    system: Annotated[
        bool,
        typer.Option(
            "--system", help="Quét cả tiến trình và khởi động / processes and persistence"
        ),
    ] = False,
    no_update: Annotated[
        bool, typer.Option("--no-update", help="Không cập nhật mẫu / no content update")
    ] = False,
    jobs: Annotated[
        int, typer.Option(help="Số tiến trình quét (0 = mọi lõi) / worker processes")
    ] = 0,
) -> None:
    """Quét định kỳ và gửi kết quả (Ctrl-C để dừng) / scan on a schedule and upload (Ctrl-C stops)."""
    from quet.agent import runner

    options = runner.RunOptions(
        paths=list(paths or []), interval=parse_interval(interval), system=system,
        update=not no_update, jobs=jobs,
    )  # fmt: skip
    result = runner.run(options, _log, once=once)
    if once and result is not None and not result.upload.ok:
        raise typer.Exit(1)


@app.command("status")
def status_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="In JSON / print JSON")] = False,
) -> None:
    """Trạng thái tác tử / the agent's configuration, spool and last results."""
    from quet.agent import config, runner
    from quet.agent.spool import Spool

    cfg = config.load_config()
    spool = Spool()
    data = {
        "config": cfg.public(),
        "spool": spool.counts(),
        "state": config.read_state(),
        "content": runner.content_info(),
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for key, value in {**data["config"], **data["content"], **data["state"]}.items():
        out.print(f"[bold]{key}[/]: {escape(str(value))}", highlight=False)
    counts = data["spool"]
    out.print(t("agent.pending", n=counts["pending"], r=counts["rejected"], dir=spool.rejected_dir))


@app.command("upload")
def upload_cmd() -> None:
    """Gửi ngay các báo cáo đang chờ / send the waiting reports now."""
    from quet.agent import config, runner

    summary = runner.upload(config.load_config())
    out.print(t("agent.uploaded", sent=summary.stored, dup=summary.duplicates,
                rej=summary.rejected, kept=summary.kept))  # fmt: skip
    if summary.error:
        err.print(f"[red]{escape(summary.error)}[/]")
        raise typer.Exit(1)
