"""`quet bundle`: build content bundles and publish them in a TUF repository (publisher side)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from quet.bundle import build, repo
from quet.bundle.build import BundleError
from quet.i18n import register as tr
from quet.i18n import t
from quet.indicators.model import IssueLog

tr("bundle.error", "Lỗi: {msg}", "Error: {msg}")
tr("bundle.built", "Đã tạo gói phiên bản {version}: {path} ({files} tệp)",
   "Built bundle version {version}: {path} ({files} files)")  # fmt: skip
tr("bundle.issues", "{n} dòng lỗi trong dữ liệu đầu vào (đã bỏ qua):",
   "{n} bad input line(s) (skipped):")  # fmt: skip
tr("bundle.init", "Đã tạo kho TUF tại {repo}.", "Created the TUF repository at {repo}.")
tr("bundle.offline", "KHOÁ GỐC (root) ở {path}: chép sang thiết bị ngoại tuyến rồi xoá khỏi máy này.",
   "ROOT KEY in {path}: move it to offline storage and delete it from this machine.")  # fmt: skip
tr("bundle.ship", "Gửi {root} cho các máy trạm: `quet update --init-root root.json`.",
   "Ship {root} to clients: `quet update --init-root root.json`.")  # fmt: skip
tr("bundle.published", "Đã phát hành gói phiên bản {version} (targets v{t}, snapshot v{s}, timestamp v{ts}).",
   "Published bundle version {version} (targets v{t}, snapshot v{s}, timestamp v{ts}).")  # fmt: skip
tr("bundle.timestamp", "Đã ký lại timestamp (v{ts}).", "Re-signed the timestamp (v{ts}).")
tr("bundle.rotated", "Đã thay khoá {role}; root mới: v{root}.", "Rotated the {role} key; new root: v{root}.")  # fmt: skip
tr("bundle.verified", "Gói hợp lệ: phiên bản {version}, tạo lúc {created}, {files} tệp.",
   "Bundle verifies: version {version}, created {created}, {files} files.")  # fmt: skip

app = typer.Typer(
    help=(
        "Gói nội dung (mẫu nhận diện) và kho cập nhật ký số TUF / content bundles and the "
        "signed TUF update repository.\n\n"
        "Ví dụ / example:  quet bundle init-repo repo --keys keys  →  quet bundle build "
        "--rules yara/ --version 1 -o b.tar.gz  →  quet bundle publish repo b.tar.gz --keys keys"
    ),
    no_args_is_help=True,
    add_completion=False,
)
_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


def _fail(exc: Exception) -> typer.Exit:
    _err.print(f"[red]{escape(t('bundle.error', msg=exc))}[/red]", soft_wrap=True)
    return typer.Exit(2)


def _expiry(keys: Path | None, **given: str | None) -> repo.Expiry:
    expiry = repo.load_expiry(keys) if keys is not None else repo.Expiry()
    for role, text in given.items():
        if text:
            setattr(expiry, role, repo.parse_duration(text))
    return expiry


KeysOpt = Annotated[
    Path, typer.Option("--keys", help="Thư mục khoá trực tuyến / online keys folder.")
]
RootKeysOpt = Annotated[
    Path | None,
    typer.Option(
        "--root-keys",
        help="Thư mục khoá gốc ngoại tuyến (mặc định KEYS-root) / offline root keys folder.",
    ),
]


@app.command("build", help="Đóng gói mẫu nhận diện thành một gói có phiên bản / build a bundle.")
def build_cmd(
    version: Annotated[int, typer.Option("--version", help="Số phiên bản (tăng dần) / version.")],
    output: Annotated[Path, typer.Option("-o", "--output", help=".tar.gz or .tar.zst")],
    rules: Annotated[list[Path] | None, typer.Option("--rules", help="YARA files/folders")] = None,
    hashes: Annotated[list[Path] | None, typer.Option("--hashes", help="hash lists")] = None,
    iocs: Annotated[list[Path] | None, typer.Option("--iocs", help="Loki filename IOCs")] = None,
    from_intel: Annotated[
        bool, typer.Option("--from-intel", help="Kèm chỉ báo từ kho intel / add intel store")
    ] = False,
    db: Annotated[str | None, typer.Option("--db", help="intel store URL")] = None,
) -> None:
    issues = IssueLog()
    try:
        manifest = build.build_bundle(
            output, version, rules=rules or [], hashes=hashes or [], iocs=iocs or [],
            from_intel=from_intel, db_url=db, issues=issues,
        )  # fmt: skip
    except BundleError as exc:
        raise _fail(exc) from exc
    if issues.count:
        _err.print(f"[yellow]{t('bundle.issues', n=issues.count)}[/]")
        for issue in issues.issues[:20]:
            _err.print(f"  [dim]{escape(str(issue))}[/]")
    _out.print(t("bundle.built", version=version, path=output, files=len(manifest.files)))
    for key, value in sorted(manifest.counts.items()):
        _out.print(f"  {key}: {value}")


@app.command("verify", help="Kiểm tra một gói theo manifest / check a bundle against its manifest.")
def verify_cmd(bundle: Annotated[Path, typer.Argument(help="bundle.tar.gz")]) -> None:
    try:
        m = build.read_manifest(bundle)
    except BundleError as exc:
        raise _fail(exc) from exc
    _out.print(t("bundle.verified", version=m.version, created=m.created, files=len(m.files)))


@app.command("init-repo", help="Tạo kho TUF và các khoá / create a TUF repository and its keys.")
def init_repo_cmd(
    repo_dir: Annotated[Path, typer.Argument(help="thư mục kho (phục vụ qua HTTP) / repo dir")],
    keys: KeysOpt,
    root_keys: RootKeysOpt = None,
    expires_root: Annotated[str, typer.Option("--expires-root")] = "365d",
    expires_targets: Annotated[str, typer.Option("--expires-targets")] = "90d",
    expires_snapshot: Annotated[str, typer.Option("--expires-snapshot")] = "30d",
    expires_timestamp: Annotated[str, typer.Option("--expires-timestamp")] = "7d",
    root_key_count: Annotated[int, typer.Option("--root-key-count", min=1)] = 1,
    root_threshold: Annotated[int, typer.Option("--root-threshold", min=1)] = 1,
) -> None:
    root_dir = root_keys or keys.with_name(keys.name + "-root")
    try:
        expiry = _expiry(
            None, root=expires_root, targets=expires_targets,
            snapshot=expires_snapshot, timestamp=expires_timestamp,
        )  # fmt: skip
        repo.init_repo(
            repo_dir, keys, root_dir, expiry=expiry,
            root_key_count=root_key_count, root_threshold=root_threshold,
        )  # fmt: skip
    except BundleError as exc:
        raise _fail(exc) from exc
    _out.print(t("bundle.init", repo=repo_dir))
    _out.print(f"[bold yellow]{escape(t('bundle.offline', path=root_dir))}[/]")
    _out.print(t("bundle.ship", root=repo_dir / "metadata" / "1.root.json"))


@app.command("publish", help="Phát hành một gói vào kho / publish a bundle in the repository.")
def publish_cmd(
    repo_dir: Annotated[Path, typer.Argument(help="repo dir")],
    bundle: Annotated[Path, typer.Argument(help="bundle.tar.gz")],
    keys: KeysOpt,
    expires_targets: Annotated[str | None, typer.Option("--expires-targets")] = None,
    expires_snapshot: Annotated[str | None, typer.Option("--expires-snapshot")] = None,
    expires_timestamp: Annotated[str | None, typer.Option("--expires-timestamp")] = None,
) -> None:
    try:
        expiry = _expiry(
            keys, targets=expires_targets, snapshot=expires_snapshot, timestamp=expires_timestamp
        )
        info = repo.publish(repo_dir, bundle, keys, expiry=expiry)
    except BundleError as exc:
        raise _fail(exc) from exc
    _out.print(
        t(
            "bundle.published",
            version=info.bundle_version,
            t=info.targets_version,
            s=info.snapshot_version,
            ts=info.timestamp_version,
        )
    )


@app.command(
    "refresh-timestamp",
    help="Ký lại timestamp (chạy định kỳ, vd. cron hằng ngày) / re-sign the timestamp (cron).",
)
def refresh_cmd(
    repo_dir: Annotated[Path, typer.Argument(help="repo dir")],
    keys: KeysOpt,
    expires_timestamp: Annotated[str | None, typer.Option("--expires-timestamp")] = None,
) -> None:
    try:
        info = repo.refresh_timestamp(
            repo_dir, keys, expiry=_expiry(keys, timestamp=expires_timestamp)
        )
    except BundleError as exc:
        raise _fail(exc) from exc
    _out.print(t("bundle.timestamp", ts=info.timestamp_version))


@app.command("rotate-key", help="Thay khoá của một vai trò (root, targets, snapshot, timestamp).")
def rotate_cmd(
    role: Annotated[str, typer.Argument(help="root | targets | snapshot | timestamp")],
    repo_dir: Annotated[Path, typer.Argument(help="repo dir")],
    keys: KeysOpt,
    root_keys: RootKeysOpt = None,
) -> None:
    root_dir = root_keys or keys.with_name(keys.name + "-root")
    try:
        info = repo.rotate_key(repo_dir, role, keys, root_dir)
    except BundleError as exc:
        raise _fail(exc) from exc
    _out.print(t("bundle.rotated", role=role, root=info.root_version))
