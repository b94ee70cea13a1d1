"""Report shapes: the form with its figures and annex, edits, overrides, decisions."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class FigurePublic(BaseModel):
    key: str
    number: str
    label: str
    label_en: str
    value: int | float | None = Field(description="what the form says (null: not available)")
    measured: int | float | None = Field(description="the value from data")
    unit: str
    overridden: bool
    note: str


class OverridePublic(BaseModel):
    value: int | float
    reason: str
    by: str
    at: str


class LinePublic(BaseModel):
    code: str
    name: str
    level: int
    status: str = Field(description="draft | submitted | accepted | returned | missing")
    late: bool
    submitted_at: datetime | None
    values: dict[str, int | float | None] | None


class ReportPublic(BaseModel):
    campaign_id: int
    campaign_name: str
    org_code: str
    org_name: str
    status: str
    locked: bool
    phase: str = Field("", description="the phase the deadline belongs to (frozen once submitted)")
    deadline: date = Field(description="the deadline that applies; `late` is judged by it")
    late: bool
    number: str
    place: str
    addressee: str
    signer_title: str
    signer_name: str
    evaluation: str
    proposals: str
    submitted_at: datetime | None
    submitted_by: str
    decided_at: datetime | None
    decided_by: str
    return_reason: str
    figures: list[FigurePublic]
    overrides: dict[str, OverridePublic]
    missing: list[str]
    missing_below: list[str] = Field(
        default_factory=list, description="units further down without a submitted report"
    )
    late_children: list[str]
    children: list[LinePublic]


class ReportUpdate(BaseModel):
    """Part 1 and the letter's details; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    number: str | None = Field(None, max_length=100, examples=["12/BC-STTTT"])
    place: str | None = Field(None, max_length=200, examples=["Cao Bằng"])
    addressee: str | None = Field(None, max_length=2000, description="Kính gửi: one per line")
    signer_title: str | None = Field(None, max_length=200, examples=["GIÁM ĐỐC"])
    signer_name: str | None = Field(None, max_length=200)
    evaluation: str | None = Field(None, max_length=20000)
    proposals: str | None = Field(None, max_length=20000)


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float | None = Field(description="the new value; null goes back to the measured one")
    reason: str = Field(min_length=1, max_length=1000)


class ReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
