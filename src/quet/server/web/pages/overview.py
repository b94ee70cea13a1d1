"""The overview: the big figures of the person's part of the tree, the trend over 30 days, the
devices per child organisation and where the current campaign stands."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from quet.server.services import campaigns, dashboard
from quet.server.web import charts, i18n
from quet.server.web.render import PageRoute, PageUser, SessionDep, lang_of, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# Status colours of docs/web-design.md: green reported, teal deployed, blue received, grey not
# yet, red overdue.
STATE_COLORS = {
    "reported": "#2e7d32",
    "deployed": "#0f6b6b",
    "received": "#1f4e79",
    "pending": "#9aa0a6",
    "overdue": "#a4161a",
}


@router.get("/")
def overview(request: Request, session: SessionDep, principal: PageUser) -> HTMLResponse:
    lang = lang_of(request)
    t = i18n.translator(lang)
    under = principal.org
    visible = campaigns.visible(session, principal)
    current = visible[0] if visible else None
    figures = dashboard.overview(session, under, current)
    days = dashboard.trend(session, under)
    trend = charts.line_chart(
        {
            t("chart.findings_per_day"): days["findings"],
            t("chart.scanned_per_day"): days["scanned"],
        },
        title=t("chart.trend_month"),
        lang=lang,
        width=520,
        height=300,
        colors=["#a4161a", "#1f4e79"],
        show_points=False,
    )
    children = dashboard.tree(session, under, current)
    top = sorted(children, key=lambda n: (-n["devices"], n["name"]))[:15]
    by_child = charts.bar_chart(
        [n["name"] for n in top],
        [n["devices"] for n in top],
        title=t("chart.devices_by_child"),
        lang=lang,
        horizontal=True,
        width=720,
        height=max(160, 34 * len(top) + 40),
    )
    ring = None
    if figures.campaign is not None and figures.campaign.members:
        # How far each organisation got; lateness is a separate figure under the ring.
        steps = figures.campaign.steps
        parts = [(t(f"status.{s}"), float(steps[s])) for s in STATE_COLORS if steps.get(s)]
        colors = [STATE_COLORS[s] for s in STATE_COLORS if steps.get(s)]
        ring = charts.donut(
            parts,
            title=t("chart.status"),
            lang=lang,
            colors=colors,
            center_label=t("fig.orgs"),
        )
    return render(
        request,
        "pages/overview.html",
        principal=principal,
        nav_active="overview",
        f=figures,
        trend=trend,
        by_child=by_child,
        ring=ring,
        phase=campaigns.current_phase(current) if current is not None else None,
    )
