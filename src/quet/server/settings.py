"""Server settings from the environment (QUET_*) and the command line; defaults run on a laptop."""

from __future__ import annotations

import secrets

from pydantic_settings import BaseSettings, SettingsConfigDict

from quet import paths


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QUET_", extra="ignore")

    database_url: str = ""  # default: sqlite:///$QUET_HOME/server.sqlite
    host: str = "127.0.0.1"
    port: int = 8440
    public_url: str = ""  # how people and agents reach this server (links in e-mails)
    secret_key: str = ""  # signs CSRF tokens and shared data; generated once under QUET_HOME
    session_hours: int = 12
    secure_cookies: bool = False  # set behind HTTPS
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "quet@localhost"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    webhook_secret: str = ""
    org_code: str = "VN"  # this server's own organisation (the root of what it serves)
    org_name: str = "Trung tâm Giám sát an toàn không gian mạng quốc gia"
    upstream_url: str = ""  # the parent server to share with (a province's → the national one)
    upstream_token: str = ""
    tuf_repo: str = ""  # a TUF repository folder served to agents at /api/v1/tuf/
    rollup_seconds: float = 15.0  # how often changed organisations' roll-ups are refreshed

    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{paths.home() / 'server.sqlite'}"

    def resolved_secret(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = paths.home() / "server-secret"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()
