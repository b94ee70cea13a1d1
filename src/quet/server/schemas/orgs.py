"""Organisation shapes: what POST/PATCH /orgs accept and what GET /orgs returns."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from quet.server import orgdata

CODE_PATTERN = r"^[\w.:-]{1,64}$"


def _check_kind(value: str) -> str:
    return orgdata.parse_kind(value)


def _check_email(value: str) -> str:
    return orgdata.parse_email(value)


def _check_networks(values: list[str]) -> list[str]:
    nets, errors = orgdata.parse_networks(",".join(values))
    if errors:
        raise ValueError("; ".join(errors))
    return nets


def _check_domains(values: list[str]) -> list[str]:
    domains, errors = orgdata.parse_domains(",".join(values))
    if errors:
        raise ValueError("; ".join(errors))
    return domains


def _check_sector(value: str) -> str:
    return orgdata.parse_sector(value)


def _check_url(value: str) -> str:
    value = value.strip()
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("a webhook URL starts with http:// or https://")
    return value


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=300)
    kind: str = "unit"
    parent_code: str | None = Field(None, description="default: your own organisation")
    contact_name: str = Field("", max_length=200)
    contact_email: str = Field("", max_length=200)
    contact_phone: str = Field("", max_length=50)
    webhook_url: str = Field("", max_length=500)
    sector: str = Field("", max_length=32, description="government, finance, education, …")
    ip_ranges: list[str] = Field(default_factory=list, max_length=1000)
    domains: list[str] = Field(default_factory=list, max_length=1000)
    asns: list[int] = Field(default_factory=list, max_length=100)

    _kind = field_validator("kind")(_check_kind)
    _email = field_validator("contact_email")(_check_email)
    _nets = field_validator("ip_ranges")(_check_networks)
    _domains = field_validator("domains")(_check_domains)
    _url = field_validator("webhook_url")(_check_url)
    _sector = field_validator("sector")(_check_sector)

    @field_validator("asns")
    @classmethod
    def _asns(cls, values: list[int]) -> list[int]:
        for asn in values:
            if not 0 < asn < 2**32:
                raise ValueError(f"not an AS number: {asn}")
        return list(dict.fromkeys(values))


class OrgUpdate(BaseModel):
    """Every field optional: only those sent are changed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=300)
    kind: str | None = None
    contact_name: str | None = Field(None, max_length=200)
    contact_email: str | None = Field(None, max_length=200)
    contact_phone: str | None = Field(None, max_length=50)
    webhook_url: str | None = Field(None, max_length=500)
    sector: str | None = Field(None, max_length=32)
    ip_ranges: list[str] | None = Field(None, max_length=1000)
    domains: list[str] | None = Field(None, max_length=1000)
    asns: list[int] | None = Field(None, max_length=100)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        return None if value is None else _check_kind(value)

    @field_validator("contact_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else _check_email(value)

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("sector")
    @classmethod
    def _sector(cls, value: str | None) -> str | None:
        return None if value is None else _check_sector(value)

    @field_validator("ip_ranges")
    @classmethod
    def _nets(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _check_networks(values)

    @field_validator("domains")
    @classmethod
    def _domains(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _check_domains(values)

    @field_validator("asns")
    @classmethod
    def _asns(cls, values: list[int] | None) -> list[int] | None:
        if values is None:
            return None
        return OrgCreate._asns(values)


class OrgNode(BaseModel):
    """One line of the tree (GET /orgs), with counts of what is below and inside it."""

    code: str
    name: str
    kind: str
    parent_code: str | None
    depth: int
    children: int
    devices: int
    users: int


class OrgPublic(BaseModel):
    code: str
    name: str
    kind: str
    parent_code: str | None
    depth: int
    contact_name: str
    contact_email: str
    contact_phone: str
    webhook_url: str
    sector: str = ""
    ip_ranges: list[str]
    domains: list[str]
    asns: list[int]
    created_at: datetime
    updated_at: datetime


class ImportReport(BaseModel):
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    rejected: list[str] = Field(description="every line left out, as 'file:line: why'")
