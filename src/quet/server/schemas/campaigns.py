"""Campaign shapes: creation with phases, the participation status, relay results, reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PhaseIn(BaseModel):
    number: int = Field(ge=1, le=100)
    name: str = Field("", max_length=200)
    starts: date
    ends: date
    report_deadline: date

    @model_validator(mode="after")
    def _order(self) -> PhaseIn:
        if self.ends < self.starts:
            raise ValueError(f"phase {self.number}: ends before it starts")
        if self.report_deadline < self.starts:
            raise ValueError(f"phase {self.number}: report deadline before the phase starts")
        return self


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    year: int = Field(ge=2000, le=2100)
    description: str = Field("", max_length=10000)
    scope_code: str | None = Field(None, description="default: your own organisation")
    bundle_version: int | None = Field(None, ge=0, le=2**31 - 1)
    phases: list[PhaseIn] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _numbers(self) -> CampaignCreate:
        numbers = [p.number for p in self.phases]
        if len(set(numbers)) != len(numbers):
            raise ValueError("phase numbers must be unique")
        return self


class PhasePublic(BaseModel):
    number: int
    name: str
    starts: date
    ends: date
    report_deadline: date


class CampaignPublic(BaseModel):
    id: int
    name: str
    year: int
    description: str
    scope_code: str
    bundle_version: int | None
    created_by: str
    created_at: datetime
    phases: list[PhasePublic]


class ParticipationPublic(BaseModel):
    org_code: str
    org_name: str
    parent_code: str | None
    notified_at: datetime | None
    received_at: datetime | None
    received_by: str
    deployed_at: datetime | None
    reported_at: datetime | None
    late: bool
    devices: int
    infected: int


class CampaignDetail(CampaignPublic):
    participation: list[ParticipationPublic]
    not_acknowledged: list[str] = Field(description="codes of organisations not yet acknowledged")


class DeliveryPublic(BaseModel):
    org_code: str
    channel: str
    ok: bool
    error: str


class AckIn(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    name: str = Field("", max_length=200, description="who acknowledges (shown in the status)")


class AckPublic(BaseModel):
    campaign_id: int
    campaign_name: str
    org_code: str
    received_at: datetime
    received_by: str


class ReportIn(BaseModel):
    """The report's text fields are free-form here (their form is another issue's)."""

    fields: dict[str, Any] = Field(default_factory=dict)
