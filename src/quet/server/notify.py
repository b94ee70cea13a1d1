"""Campaign relay notifications: e-mail over SMTP and signed JSON webhooks, with retries.

No database and no web framework here: callers pass notices and events in and get one Delivery per
organisation back; nothing raises because one organisation's server is down.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape
from typing import Any

import httpx

from quet.errors import InputError
from quet.reports.dates import MONTHS_EN

SIGNATURE_HEADER = "X-Quet-Signature"
DELIVERY_HEADER = "X-Quet-Delivery"
USER_AGENT = "quet-notify/1"


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    username: str = ""
    password: str = ""
    starttls: bool = False
    ssl: bool = False
    sender: str = "quet@localhost"
    timeout: float = 10


@dataclass(frozen=True)
class Notice:
    """One message to one organisation (possibly several mailboxes)."""

    org_code: str
    org_name: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str = ""
    campaign_id: int = 0
    ack_url: str = ""  # the link a person clicks to acknowledge receipt
    # (file name, MIME type "type/subtype", content): e.g. the botnet digest's CSV
    attachments: tuple[tuple[str, str, bytes], ...] = ()


@dataclass
class Delivery:
    org_code: str
    channel: str  # "email" | "webhook"
    ok: bool
    error: str = ""
    attempts: int = 1


# --- message text -------------------------------------------------------------------------------


def date_vi(day: date) -> str:
    """The form Vietnamese official letters use: "ngày 05 tháng 01 năm 2026"."""
    return f"ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def date_en(day: date) -> str:
    return f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"


def _check_address(address: str) -> None:
    # Address() parses and rejects what would break the To header or smuggle extra headers in.
    if not address or any(c in address for c in "\r\n\t ,;<>"):
        raise InputError(f"invalid e-mail address {address!r}")
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError) as exc:
        raise InputError(f"invalid e-mail address {address!r}: {exc}") from exc
    if "@" not in address:
        raise InputError(f"invalid e-mail address {address!r}: no '@domain'")


def campaign_notice(
    org_code: str,
    org_name: str,
    to: Iterable[str],
    campaign_name: str,
    phase: str,
    deadline: date,
    ack_url: str,
    lang: str = "vi",
    *,
    campaign_id: int = 0,
) -> Notice:
    """The "campaign started, please acknowledge" letter, Vietnamese first with English after
    (or the other way round for lang="en"); both languages are always present."""
    if lang not in ("vi", "en"):
        raise InputError(f"unknown language {lang!r}: use 'vi' or 'en'")
    recipients = tuple(a.strip() for a in to if a.strip())
    if not recipients:
        raise InputError(f"organisation {org_code}: no e-mail address to notify")
    for address in recipients:
        _check_address(address)
    if not ack_url.startswith(("https://", "http://")) or any(c in ack_url for c in " \r\n"):
        raise InputError(f"acknowledgement link must be an http(s) URL, got {ack_url!r}")
    for field, value in (("campaign name", campaign_name), ("phase", phase), ("name", org_name)):
        if "\r" in value or "\n" in value:
            raise InputError(f"organisation {org_code}: {field} contains a line break")

    vi_deadline, en_deadline = date_vi(deadline), date_en(deadline)
    vi_text = (
        f"Kính gửi {org_name},\n\n"
        f"Chiến dịch rà quét mã độc «{campaign_name}» ({phase}) đã bắt đầu. "
        "Đề nghị đơn vị xác nhận đã nhận thông báo này bằng cách mở liên kết dưới đây, "
        f"sau đó triển khai rà quét và gửi báo cáo trước {vi_deadline}.\n\n"
        f"Xác nhận đã nhận: {ack_url}\n"
    )
    en_text = (
        f"Dear {org_name},\n\n"
        f'The malware scanning campaign "{campaign_name}" ({phase}) has started. '
        "Please acknowledge receipt of this notice by opening the link below, then run the scan "
        f"and send your report by {en_deadline}.\n\n"
        f"Acknowledge receipt: {ack_url}\n"
    )
    footer = (
        "\n--\nThư này được gửi tự động từ hệ thống Quét; vui lòng không trả lời.\n"
        "This message was sent automatically by Quét; please do not reply.\n"
    )
    link = escape(ack_url, quote=True)
    vi_html = (
        f"<p>Kính gửi {escape(org_name)},</p>"
        f"<p>Chiến dịch rà quét mã độc «{escape(campaign_name)}» ({escape(phase)}) đã bắt đầu. "
        "Đề nghị đơn vị xác nhận đã nhận thông báo này bằng cách mở liên kết dưới đây, "
        f"sau đó triển khai rà quét và gửi báo cáo trước <strong>{vi_deadline}</strong>.</p>"
        f'<p><a href="{link}">Xác nhận đã nhận</a></p>'
    )
    en_html = (
        f'<p lang="en">Dear {escape(org_name)},</p>'
        f'<p lang="en">The malware scanning campaign "{escape(campaign_name)}" ({escape(phase)}) '
        "has started. Please acknowledge receipt of this notice by opening the link below, "
        f"then run the scan and send your report by <strong>{en_deadline}</strong>.</p>"
        f'<p lang="en"><a href="{link}">Acknowledge receipt</a></p>'
    )
    if lang == "vi":
        subject = f"[Quét] Chiến dịch {campaign_name}, {phase}: đề nghị xác nhận đã nhận"
        text = vi_text + "\n" + en_text + footer
        body = vi_html + "<hr>" + en_html
        html_lang = "vi"
    else:
        subject = f"[Quét] Campaign {campaign_name}, {phase}: please acknowledge receipt"
        text = en_text + "\n" + vi_text + footer
        body = en_html + "<hr>" + vi_html
        html_lang = "en"
    html_doc = (
        f'<!DOCTYPE html><html lang="{html_lang}"><head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head><body>{body}"
        "<hr><p><small>Thư này được gửi tự động từ hệ thống Quét; vui lòng không trả lời.<br>"
        "This message was sent automatically by Quét; please do not reply.</small></p>"
        "</body></html>"
    )
    return Notice(
        org_code=org_code,
        org_name=org_name,
        to=recipients,
        subject=subject,
        text=text,
        html=html_doc,
        campaign_id=campaign_id,
        ack_url=ack_url,
    )


def build_message(notice: Notice, sender: str) -> EmailMessage:
    """The MIME message for `notice`; raises ValueError/InputError on a header it cannot carry."""
    if not notice.to:
        raise InputError("no recipients")
    msg = EmailMessage()
    msg["From"] = Address("Quét", addr_spec=sender)
    msg["To"] = [Address(notice.org_name, addr_spec=a) for a in notice.to]
    msg["Subject"] = notice.subject
    msg["Date"] = formatdate(localtime=True)
    domain = sender.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    # Keeps vacation responders and ticket systems from answering a robot.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Quet-Org"] = notice.org_code
    if notice.campaign_id:
        msg["X-Quet-Campaign"] = str(notice.campaign_id)
    # quoted-printable keeps the body 7-bit: some relays still refuse 8-bit mail without 8BITMIME.
    msg.set_content(notice.text, charset="utf-8", cte="quoted-printable")
    if notice.html:
        msg.add_alternative(notice.html, subtype="html", charset="utf-8", cte="quoted-printable")
    for filename, mime, content in notice.attachments:
        maintype, _, subtype = mime.partition("/")
        params = {"charset": "utf-8"} if maintype == "text" else None
        msg.add_attachment(
            content, maintype=maintype, subtype=subtype, filename=filename, params=params
        )
    return msg


# --- SMTP ---------------------------------------------------------------------------------------


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context()
    # An explicit EHLO name: smtplib's default does a reverse DNS lookup that can hang offline.
    local = socket.gethostname() or "localhost"
    conn: smtplib.SMTP
    if smtp.ssl:
        conn = smtplib.SMTP_SSL(
            smtp.host, smtp.port, local_hostname=local, timeout=smtp.timeout, context=context
        )
    else:
        conn = smtplib.SMTP(smtp.host, smtp.port, local_hostname=local, timeout=smtp.timeout)
    try:
        conn.ehlo()
        if smtp.starttls and not smtp.ssl:
            conn.starttls(context=context)
            conn.ehlo()
        if smtp.username:
            _login(conn, smtp.username, smtp.password)
    except BaseException:
        conn.close()
        raise
    return conn


def _login(conn: smtplib.SMTP, username: str, password: str) -> None:
    if username.isascii() and password.isascii():
        conn.login(username, password)
        return
    # smtplib encodes credentials as ASCII; AUTH PLAIN is defined over UTF-8 (RFC 4616).
    if "plain" not in conn.esmtp_features.get("auth", "").lower().split():
        raise smtplib.SMTPNotSupportedError("non-ASCII credentials need AUTH PLAIN")
    token = b"\0" + username.encode() + b"\0" + password.encode()
    code, reply = conn.docmd("AUTH", "PLAIN " + base64.b64encode(token).decode("ascii"))
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _hopeless(exc: Exception) -> bool:
    """A connection failure that retrying cannot fix: fix the settings instead."""
    if isinstance(exc, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError):
        return True
    # smtplib raises the bare base class for "no suitable authentication method".
    return type(exc) is smtplib.SMTPException or isinstance(exc, ssl.SSLCertVerificationError)


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        conn.close()


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    parts = []
    for address, (code, text) in sorted(refused.items()):
        parts.append(f"{address} ({code} {text.decode('utf-8', 'replace').strip()})")
    return "recipient refused: " + ", ".join(parts)


def _smtp_failure(exc: Exception) -> tuple[str, bool]:
    """(message, worth retrying) for an error met while sending one message."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        temporary = any(400 <= code < 500 for code, _ in exc.recipients.values())
        return _refusals(exc.recipients), temporary
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        return f"SMTP {exc.smtp_code} {shown.strip()}", 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"connection lost: {exc}", True
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc}", True
    return f"{type(exc).__name__}: {exc}", False


def send_email(
    notices: Iterable[Notice], smtp: SmtpSettings, retries: int = 2, *, backoff: float = 0.5
) -> list[Delivery]:
    """Send every notice over one SMTP connection (reopened after a failure); one Delivery each.

    A temporary failure (4xx, lost connection) is retried up to `retries` times; a permanent one
    (5xx, refused recipient) is not. A server that cannot be reached fails the whole batch
    without trying each remaining message again.
    """
    where = f"{smtp.host}:{smtp.port}"
    out: list[Delivery] = []
    conn: smtplib.SMTP | None = None
    unreachable = ""
    try:
        for notice in notices:
            if unreachable:
                out.append(Delivery(notice.org_code, "email", False, unreachable, attempts=0))
                continue
            try:
                msg = build_message(notice, smtp.sender)
            except (ValueError, IndexError, InputError) as exc:
                error = f"cannot build message: {exc}"
                out.append(Delivery(notice.org_code, "email", False, error, attempts=0))
                continue
            attempt = 0
            while True:
                attempt += 1
                if conn is None:
                    try:
                        conn = _connect(smtp)
                    except (OSError, smtplib.SMTPException) as exc:
                        if _hopeless(exc):
                            unreachable = f"SMTP server {where} refused us: {_smtp_failure(exc)[0]}"
                            out.append(
                                Delivery(notice.org_code, "email", False, unreachable, attempt)
                            )
                            break
                        if attempt <= retries:
                            time.sleep(backoff * attempt)
                            continue
                        unreachable = f"cannot reach SMTP server {where}: {exc}"
                        out.append(Delivery(notice.org_code, "email", False, unreachable, attempt))
                        break
                try:
                    refused = conn.send_message(msg, smtp.sender, list(notice.to))
                except (OSError, smtplib.SMTPException) as exc:
                    error, temporary = _smtp_failure(exc)
                    if isinstance(exc, smtplib.SMTPRecipientsRefused) and not temporary:
                        # smtplib has already reset the transaction; the connection is still good.
                        out.append(Delivery(notice.org_code, "email", False, error, attempt))
                        break
                    _close(conn)
                    conn = None
                    if temporary and attempt <= retries:
                        time.sleep(backoff * attempt)
                        continue
                    out.append(Delivery(notice.org_code, "email", False, error, attempt))
                    break
                if refused:
                    # Accepted for the others already, so retrying would send them a copy.
                    error = _refusals(refused)
                    out.append(Delivery(notice.org_code, "email", False, error, attempt))
                else:
                    out.append(Delivery(notice.org_code, "email", True, "", attempt))
                break
    finally:
        _close(conn)
    return out


# --- webhooks -----------------------------------------------------------------------------------


def sign_webhook(body: bytes, secret: str, timestamp: int) -> str:
    """The X-Quet-Signature value: "t=<ts>,v1=<hex HMAC-SHA256(secret, '<ts>.' + body)>"."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_webhook(
    body: bytes, header: str, secret: str, tolerance_s: int = 300, now: int | None = None
) -> bool:
    """True when `header` signs exactly `body` with `secret`, no more than `tolerance_s` ago.

    Several v1= entries are allowed (a sender rotating secrets signs with both)."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if timestamp is not None or not (value.isascii() and value.isdigit()):
                return False
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures or not secret:
        return False
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = sign_webhook(body, secret, timestamp).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, s) for s in signatures)


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes we sign and send: compact UTF-8 JSON with sorted keys."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _retryable_status(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def send_webhooks(
    events: Iterable[tuple[str, str, dict[str, Any]]],
    secret: str,
    timeout: float = 5,
    retries: int = 2,
    *,
    backoff: float = 0.5,
) -> list[Delivery]:
    """POST each (org_code, url, payload) as signed JSON; a 2xx answer is a delivery.

    5xx, 408, 429 and connection errors are retried with a growing pause; other answers are
    final. Each attempt is signed afresh (the receiver checks the timestamp) but carries the same
    X-Quet-Delivery id, so a receiver can drop a duplicate.
    """
    if not secret:
        raise InputError("webhook secret is empty: set one so receivers can verify messages")
    out: list[Delivery] = []
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for org_code, url, payload in events:
            try:
                target = httpx.URL(url)
            except httpx.InvalidURL as exc:
                out.append(Delivery(org_code, "webhook", False, f"bad URL {url!r}: {exc}", 0))
                continue
            if target.scheme not in ("http", "https") or not target.host:
                error = f"bad URL {url!r}: need http:// or https://"
                out.append(Delivery(org_code, "webhook", False, error, 0))
                continue
            try:
                body = webhook_body(payload)
            except (TypeError, ValueError) as exc:
                error = f"payload is not JSON: {exc}"
                out.append(Delivery(org_code, "webhook", False, error, 0))
                continue
            delivery_id = str(uuid.uuid4())
            attempt = 0
            while True:
                attempt += 1
                headers = {
                    "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": USER_AGENT,
                    SIGNATURE_HEADER: sign_webhook(body, secret, int(time.time())),
                    DELIVERY_HEADER: delivery_id,
                }
                try:
                    response = client.post(target, content=body, headers=headers)
                except httpx.TransportError as exc:
                    error = f"{url}: {type(exc).__name__}: {exc}"
                    retry = True
                else:
                    if 200 <= response.status_code < 300:
                        out.append(Delivery(org_code, "webhook", True, "", attempt))
                        break
                    error = f"{url}: HTTP {response.status_code} {response.reason_phrase}".strip()
                    retry = _retryable_status(response.status_code)
                if retry and attempt <= retries:
                    time.sleep(backoff * attempt)
                    continue
                out.append(Delivery(org_code, "webhook", False, error, attempt))
                break
    return out
