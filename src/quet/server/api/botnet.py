"""Botnet IPs over the API: the public lookup (no sign-in, rate-limited, yes/no only), the figures
of the caller's subtree, and its attributed IPs with status."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from quet.errors import InputError
from quet.server.deps import CurrentUser, SessionDep, find_org, service_errors
from quet.server.services import botnet

router = APIRouter(prefix="/botnet", tags=["botnet"])


class LookupOut(BaseModel):
    ip: str = Field(description="the address checked, in canonical form")
    listed: bool = Field(description="seen in a botnet feed on `day`")
    day: date | None = Field(description="the newest feed day (None: no data yet)")
    stale: bool = Field(description="`day` is more than a week old")


class KeyCount(BaseModel):
    key: str
    label: str
    ips: int


class OrgCount(KeyCount):
    code: str = ""


class StatsOut(BaseModel):
    scope: dict[str, str] | None = Field(description="None: the whole country")
    period: str = Field(description="day | week | month")
    start: date = Field(description="the period's first day")
    end: date = Field(description="the period's last day")
    month: str = Field(description="YYYY-MM of `start`")
    has_data: bool = Field(description="any feed data was imported for the period")
    ips: int | None = Field(description="unique botnet IPs in the period (None: no data)")
    last_month: int | None = Field(description="the previous period (None: no data)")
    last_year: int | None = Field(description="the same period a year earlier (None: no data)")
    previous_start: date
    year_ago_start: date
    change_month_pct: float | None
    change_year_pct: float | None
    latest_day: date | None
    latest_day_ips: int
    top_families: list[KeyCount]
    top_provinces: list[KeyCount]
    top_isps: list[KeyCount] = Field(description="key: the ASN; label: the ISP's name")
    top_sectors: list[KeyCount]
    top_orgs: list[OrgCount] = Field(
        description="key: organisation id ('' = unattributed); code: its code"
    )
    trend: list[tuple[date, int]] = Field(
        description="unique IPs per period (its first day), oldest first"
    )


class IpOut(BaseModel):
    ip: str
    family: str
    org: str
    org_name: str
    first_seen: date
    last_seen: date
    days_seen: int
    status: str = Field(description="new | active | gone, relative to the newest feed day")
    asn: int | None
    isp: str


class IpsOut(BaseModel):
    total: int
    latest_day: date | None
    items: list[IpOut]


@router.get(
    "/lookup",
    response_model=LookupOut,
    responses={429: {"description": "too many lookups; see Retry-After"}},
)
def lookup(
    request: Request,
    session: SessionDep,
    ip: Annotated[str, Query(max_length=100, description="default: the caller's address")] = "",
) -> LookupOut | JSONResponse:
    """Public: is this IP (the caller's own by default) in a botnet on the newest feed day?
    Tells nothing about who holds it. At most 30 lookups a minute per client."""
    client = request.client.host if request.client else ""
    wait = botnet.limiter(request.app.state).hit(client or "?")  # IPv6 clients by /64
    if wait:
        seconds = max(1, round(wait + 0.5))
        return JSONResponse(
            {"detail": f"too many lookups; try again in {seconds} s"},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(seconds)},
        )
    asked = ip.strip() or client
    try:
        found = botnet.lookup(session, asked)
    except InputError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    return LookupOut(**found.to_dict())


def _month(value: str) -> date | None:
    if not value:
        return None
    try:
        year, month = value.split("-", 1)
        return date(int(year), int(month), 1)
    except ValueError as exc:
        raise InputError(f"month must be YYYY-MM, got {value[:20]!r}") from exc


@router.get("/stats", response_model=StatsOut)
def stats(
    session: SessionDep,
    principal: CurrentUser,
    org: Annotated[str, Query(max_length=64, description="organisation code")] = "",
    month: Annotated[str, Query(pattern=r"^(\d{4}-\d{2})?$")] = "",
    period: Annotated[str, Query(pattern=r"^(day|week|month)$")] = "month",
    day: Annotated[
        date | None, Query(description="a day of the period (week/day; overrides month)")
    ] = None,
    days: Annotated[int, Query(ge=0, le=3660, description="days of trend")] = 730,
    trend_period: Annotated[
        str, Query(pattern=r"^(day|week|month)$", description="one trend point per …")
    ] = "day",
) -> StatsOut:
    """The figures of one period (a month by default, or the ISO week / day holding `day`) for
    the caller's organisation (or `org` within their scope): the root sees the whole country.
    The trend has one point per day (or per `trend_period`)."""
    under = find_org(session, principal, org or None)
    with service_errors():
        figures = botnet.summary(session, under, day or _month(month), period)
    trend = botnet.trend(session, under, days, period=trend_period) if days else []
    return StatsOut(**figures, trend=trend)


@router.get("/ips", response_model=IpsOut)
def ips(
    session: SessionDep,
    principal: CurrentUser,
    org: Annotated[str, Query(max_length=64)] = "",
    subtree: bool = True,
    since: date | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> IpsOut:
    """The IPs attributed to an organisation (its subtree by default) last seen on or after
    `since` (default: 30 days before the newest feed day), new and active first."""
    under = find_org(session, principal, org or None)
    latest = botnet.latest_day(session)
    rows, total = botnet.org_ips(
        session, under, subtree=subtree, since=since, limit=limit, latest=latest
    )
    return IpsOut(total=total, latest_day=latest, items=[IpOut(**r.to_dict()) for r in rows])
