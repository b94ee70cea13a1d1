"""Sharing between two real servers on loopback (uvicorn in threads, two databases): a province
pushes signed reports to the national centre and pulls its signed feed; tampering, replays and
unknown keys are refused and store nothing."""

from __future__ import annotations

import base64
import copy
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request
from sqlalchemy.orm import Session

from conftest_db import BACKENDS, database_url
from quet.errors import InputError
from quet.indicators.model import IndicatorType, make
from quet.server import keys
from quet.server.app import create_app
from quet.server.keys import EnvelopeError, ServerKey
from quet.server.services import orgs, sharing
from quet.store.importer import import_indicators
from quet.store.intel import iter_indicators
from quet.store.models import Device, FindingRow, ScanReport, ShareReceipt, SightingRow
from server_fixtures import make_settings

MIRAI = "9f" * 32
WANNACRY = "ed01ebfbc9eb5bbea545af4d01bf5f1071661840480439c6e5babe8e080e41aa"
EMOTET_C2 = "203.0.113.77"


class LiveServer:
    """An app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: FastAPI | Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@dataclass
class Pair:
    national: FastAPI
    province: FastAPI
    national_url: str
    province_url: str
    national_key: ServerKey
    province_key: ServerKey

    def session(self, app: FastAPI) -> Session:
        s: Session = app.state.db.sessions()
        return s

    def engine(self, app: FastAPI) -> sa.Engine:
        e: sa.Engine = app.state.db.engine
        return e


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    """The national centre (VN) and Cao Bằng's server (CB), each with its own database and key;
    the national one knows CB as a province and has registered its key."""
    (tmp_path / "n").mkdir()
    (tmp_path / "p").mkdir()
    with ExitStack() as stack:
        n_url = stack.enter_context(database_url(request.param, tmp_path / "n"))
        p_url = stack.enter_context(database_url(request.param, tmp_path / "p"))
        national = create_app(make_settings(n_url))
        province = create_app(make_settings(p_url, org_code="CB", org_name="Tỉnh Cao Bằng"))
        stack.callback(national.state.db.dispose)
        stack.callback(province.state.db.dispose)
        national.state.server_key = keys.load_or_create(tmp_path / "n-keys")
        province.state.server_key = keys.load_or_create(tmp_path / "p-keys")
        with national.state.db.sessions() as s:
            cb = orgs.create(s, "CB", "Tỉnh Cao Bằng", "province", orgs.root(s))
            sharing.register_peer(s, cb, province.state.server_key.public_text, "Cao Bằng")
            s.commit()
        n_live = stack.enter_context(LiveServer(national))
        p_live = stack.enter_context(LiveServer(province))
        yield Pair(
            national,
            province,
            n_live.url,
            p_live.url,
            national.state.server_key,
            province.state.server_key,
        )


def _seed_province(session: Session) -> None:
    """Two devices of a department of Cao Bằng: Mirai on one (remediated), a C2 connection and
    the EICAR test file on the other (open), one false positive that must not be shared."""
    root = orgs.root(session)
    assert root is not None
    dept = orgs.create(session, "CB-SYT", "Sở Y tế Cao Bằng", "department", root)
    now = datetime.now(UTC)
    devs = [Device(org_id=dept.id, hostname=f"syt-pc-{n}", last_scan_at=now) for n in (1, 2)]
    session.add_all(devs)
    session.flush()
    for dev in devs:
        session.add(
            ScanReport(
                id=str(uuid.uuid4()), device_id=dev.id, org_id=dept.id, started=now, finished=now
            )
        )
    session.flush()
    scans = session.scalars(sa.select(ScanReport).order_by(ScanReport.device_id)).all()

    def finding(i: int, **kw: Any) -> FindingRow:
        return FindingRow(
            scan_id=scans[i].id,
            device_id=devs[i].id,
            org_id=dept.id,
            observed_at=now - timedelta(hours=i + 1),
            **kw,
        )

    session.add_all(
        [
            finding(0, kind="hash", name="Unix.Trojan.Mirai-9976014-0", sha256=MIRAI,
                    status="remediated"),
            finding(1, kind="c2", name="Win.Trojan.Emotet C2", indicator=f"{EMOTET_C2}:8080"),
            finding(1, kind="hash", name="Win.Test.EICAR_HDB-1", sha256="27" * 32),
            finding(1, kind="hash", name="Win.Trojan.Agent", sha256="aa" * 32,
                    status="false_positive"),
        ]
    )  # fmt: skip
    session.commit()


def _shared(engine: sa.Engine, source: str) -> dict[tuple[str, str], Any]:
    return {(i.type.value, i.value): i for i in iter_indicators(engine, source=source)}


def test_push_report_reaches_the_national_store(pair: Pair) -> None:
    with pair.session(pair.province) as s:
        _seed_province(s)
        answer = sharing.push(s, pair.national_url, pair.province_key, period="2026-đợt-1")
    assert answer["accepted"] is True and answer["org"] == "CB"
    assert answer["indicators"]["added"] == 3 and answer["sightings"] == 3
    got = _shared(pair.engine(pair.national), "share:CB")
    assert set(got) == {("sha256", MIRAI), ("sha256", "27" * 32), ("ipv4", EMOTET_C2)}
    assert got[("sha256", MIRAI)].family == "Mirai"
    assert got[("sha256", MIRAI)].name == "Unix.Trojan.Mirai-9976014-0"
    assert got[("sha256", "27" * 32)].family == "EICAR"
    with pair.session(pair.national) as s:
        receipt = s.scalars(sa.select(ShareReceipt)).one()
        assert receipt.period == "2026-đợt-1" and receipt.indicators == 3
        assert receipt.summary["devices"] == 2
        assert receipt.summary["infected"] == 1 and receipt.summary["cleaned"] == 1
        assert receipt.summary["coverage"] == 100.0
        sightings = s.scalars(sa.select(SightingRow)).all()
        assert {x.where for x in sightings} == {"share:CB"}
        root = orgs.root(s)
        assert root is not None
        (latest,) = sharing.latest_summaries(s, root)
        assert latest["org"] == "CB" and latest["summary"]["scanned"] == 2
        peer = sharing.peers(s)[0][0]
        assert peer.last_received is not None


def _post(url: str, envelope: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/sharing/reports", json=envelope, timeout=30)


def _count(engine: sa.Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _report(pair: Pair, **changes: Any) -> dict[str, Any]:
    with pair.session(pair.province) as s:
        root = orgs.root(s)
        assert root is not None
        payload = sharing.report_payload(s, root)
    payload["indicators"] = [
        {"type": "sha256", "value": WANNACRY, "name": "Win.Ransomware.WannaCry-6313787-0"}
    ]
    payload.update(changes)
    return payload


def test_tampered_replayed_and_unknown_reports_are_refused(pair: Pair, tmp_path: Path) -> None:
    engine = pair.engine(pair.national)
    good = keys.seal(pair.province_key, _report(pair))

    tampered = copy.deepcopy(good)
    tampered["payload"]["summary"]["devices"] = 9999
    assert _post(pair.national_url, tampered).status_code == 401
    moved = copy.deepcopy(good)
    moved["sent_at"] = datetime.now(UTC).isoformat()  # a fresh time on a captured envelope
    assert _post(pair.national_url, moved).status_code == 401
    stranger = keys.seal(keys.load_or_create(tmp_path / "stranger"), _report(pair))
    response = _post(pair.national_url, stranger)
    assert response.status_code == 401 and "unknown key" in response.text
    old = keys.seal(
        pair.province_key, _report(pair), sent_at=datetime.now(UTC) - timedelta(hours=1)
    )
    assert _post(pair.national_url, old).status_code == 401
    other_org = keys.seal(pair.province_key, _report(pair, org="DN"))
    assert _post(pair.national_url, other_org).status_code == 403
    assert _post(pair.national_url, {"payload": {}}).status_code == 400
    assert _count(engine, ShareReceipt.__table__) == 0
    assert _shared(engine, "share:CB") == {}

    assert _post(pair.national_url, good).status_code == 200
    assert ("sha256", WANNACRY) in _shared(engine, "share:CB")
    replay = _post(pair.national_url, good)
    assert replay.status_code == 409 and "replay" in replay.text
    assert _count(engine, ShareReceipt.__table__) == 1


def _national_intel(pair: Pair, n: int = 5) -> None:
    rows = [
        make(IndicatorType.SHA256, WANNACRY, name="WannaCry", family="WannaCry"),
        make(IndicatorType.DOMAIN, "emotet-c2.example.net", family="Emotet", confidence=90),
        *(make(IndicatorType.IPV4, f"198.51.100.{i}", family="Mirai") for i in range(1, n - 1)),
    ]
    import_indicators(pair.engine(pair.national), rows, source="vncert")


def test_pull_feed_verifies_and_imports_page_by_page(pair: Pair) -> None:
    _national_intel(pair, 7)
    with pair.session(pair.province) as s:
        pulled = sharing.pull_feed(
            s, pair.national_url, pair.national_key.public_text, pair.province_key, page=3
        )
        assert (pulled.pages, pulled.read, pulled.added) == (3, 7, 7)
        assert pulled.source == "feed:VN"
        again = sharing.pull_feed(
            s, pair.national_url, pair.national_key.public_text, pair.province_key,
            cursor=pulled.cursor,
        )  # fmt: skip
        assert (again.pages, again.read) == (1, 0)  # nothing new since the cursor
    got = _shared(pair.engine(pair.province), "feed:VN")
    assert len(got) == 7
    assert got[("domain", "emotet-c2.example.net")].confidence == 90
    assert got[("sha256", WANNACRY)].family == "WannaCry"


def test_feed_needs_a_registered_child(pair: Pair, tmp_path: Path) -> None:
    url = f"{pair.national_url}/api/v1/sharing/feed"
    assert httpx.get(url).status_code == 401
    stranger = keys.load_or_create(tmp_path / "stranger")
    header = sharing.feed_request_header(stranger, None, 0)
    assert httpx.get(url, headers={sharing.FEED_HEADER: header}).status_code == 401
    header = sharing.feed_request_header(pair.province_key, None, 0)
    assert httpx.get(url, headers={sharing.FEED_HEADER: header}).status_code == 200
    # The province checks with the national key, not with whichever key signed.
    with pytest.raises(EnvelopeError, match="another key"), pair.session(pair.province) as s:
        sharing.pull_feed(s, pair.national_url, stranger.public_text, pair.province_key)


def test_a_tampered_feed_is_refused(pair: Pair) -> None:
    """A man in the middle (a real proxy server) changes one indicator of the national feed."""
    _national_intel(pair)
    mitm = FastAPI()

    @mitm.get("/api/v1/sharing/feed")
    def forward(request: Request) -> dict[str, Any]:
        answer = httpx.get(
            f"{pair.national_url}/api/v1/sharing/feed",
            params=dict(request.query_params),
            headers={sharing.FEED_HEADER: request.headers[sharing.FEED_HEADER]},
        ).json()
        answer["payload"]["indicators"][0]["value"] = "1.1.1.1"
        answer["payload"]["indicators"][0]["type"] = "ipv4"
        return dict(answer)

    with (
        LiveServer(mitm) as proxy,
        pair.session(pair.province) as s,
        pytest.raises(EnvelopeError, match="bad signature"),
    ):
        sharing.pull_feed(s, proxy.url, pair.national_key.public_text, pair.province_key)
    assert _shared(pair.engine(pair.province), "feed:VN") == {}


def test_register_peer_through_the_api(pair: Pair) -> None:
    from server_fixtures import bearer, make_org, make_token

    with pair.session(pair.national) as s:
        make_org(s, "DN", kind="province", name="Thành phố Đà Nẵng")
        token = make_token(s, "admin")
    other = Ed25519PrivateKey.generate()
    body = {"org": "DN", "public_key": keys.public_text(other.public_key())}
    url = f"{pair.national_url}/api/v1/sharing/peers"
    assert httpx.post(url, json=body).status_code == 401
    created = httpx.post(url, json=body, headers=bearer(token))
    assert created.status_code == 200, created.text
    assert created.json()["key_id"] == keys.key_id(other.public_key())
    listed = httpx.get(url, headers=bearer(token)).json()
    assert [p["org"] for p in listed] == ["CB", "DN"]
    taken = {"org": "DN", "public_key": pair.province_key.public_text}
    assert httpx.post(url, json=taken, headers=bearer(token)).status_code == 400
    key = httpx.get(f"{pair.national_url}/api/v1/sharing/key").json()
    assert key["public_key"] == pair.national_key.public_text


# --- the key files and envelopes, without servers --------------------------------------------


def test_key_is_created_once_and_private(tmp_path: Path) -> None:
    first = keys.load_or_create(tmp_path / "k")
    second = keys.load_or_create(tmp_path / "k")
    assert first.public_text == second.public_text
    mode = stat.S_IMODE((tmp_path / "k" / keys.PRIVATE_FILE).stat().st_mode)
    assert mode == 0o600
    assert (tmp_path / "k" / keys.PUBLIC_FILE).read_text().strip() == first.public_text
    assert keys.parse_public(first.public_text + "\n").public_bytes_raw() == (
        first.public.public_bytes_raw()
    )


def test_default_key_lives_in_quet_home(quet_home: Path) -> None:
    key = keys.load_or_create()
    assert (quet_home / "server-keys" / keys.PRIVATE_FILE).is_file()
    assert stat.S_IMODE((quet_home / "server-keys").stat().st_mode) == 0o700
    keys.save_upstream(key.public_text)
    assert keys.load_upstream() == key.public_text


@pytest.mark.parametrize(
    "text",
    ["", "ssh-ed25519 AAAA", "ed25519:not-base64!", "ed25519:" + base64.b64encode(b"x").decode()],
)
def test_bad_public_keys_are_named(text: str) -> None:
    with pytest.raises(InputError, match="key"):
        keys.parse_public(text, "peer.pub")


@pytest.mark.parametrize("field", ["id", "key_id", "sent_at", "payload"])
def test_every_signed_field_is_covered(tmp_path: Path, field: str) -> None:
    key = keys.load_or_create(tmp_path)
    env = keys.seal(key, {"kind": "x", "n": 1.5, "text": "Sở Y tế"})
    assert keys.verify(env, key.public, max_age=timedelta(minutes=1))["text"] == "Sở Y tế"
    changed = copy.deepcopy(env)
    if field == "payload":
        changed["payload"]["n"] = 2.5
    elif field == "sent_at":
        changed["sent_at"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    else:
        changed[field] = changed[field][:-1] + ("0" if changed[field][-1] != "0" else "1")
    with pytest.raises(EnvelopeError):
        keys.verify(changed, key.public, max_age=timedelta(minutes=1))


def test_family_names_from_detections() -> None:
    assert sharing.family_of("Unix.Trojan.Mirai-9976014-0") == "Mirai"
    assert sharing.family_of("Win.Worm.Ramnit-1234") == "Ramnit"
    assert sharing.family_of("W32.Sality.AA") == "Sality"
    assert sharing.family_of("Win.Ransomware.WannaCry-6313787-0") == "WannaCry"
    assert sharing.family_of("Win.Trojan.Agent") == ""


def test_cli_keygen_and_register_peer(quet_home: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from quet.cli.share import app

    runner = CliRunner()
    made = runner.invoke(app, ["keygen"])
    assert made.exit_code == 0, made.output
    public = (quet_home / "server-keys" / keys.PUBLIC_FILE).read_text().strip()
    assert public in made.stdout
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    create_app(make_settings(url)).state.db.dispose()  # migrated, with the root VN
    pub = tmp_path / "child.pub"
    pub.write_text(public + "\n")
    missing = runner.invoke(app, ["register-peer", "XX", str(pub), "--database-url", url])
    assert missing.exit_code == 2
    done = runner.invoke(app, ["register-peer", "VN", str(pub), "--database-url", url])
    assert done.exit_code == 0, done.output
    assert keys.load_or_create().key_id in done.stdout
