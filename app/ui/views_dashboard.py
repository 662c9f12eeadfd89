"""The dashboard: counters, riskiest regions, findings trends, riskiest assets, findings impact.

The page answers with the counters alone; each widget's query takes 100-450 ms at 100k findings,
so every card loads its own partial from its endpoint (hx-trigger="load") and fails in place.
Without script a card links to its endpoint, which then answers a page of that one widget.
"""

import datetime

from flask import abort, render_template, request

from app import dashboard
from app.models import Asset, Finding, Scan
from app.ui import bp, charts
from app.ui.htmx import render
from app.ui.listing import count

#: Trend ranges offered, as the original's: label -> (length, strftime of the axis labels).
TREND_RANGES = {
    "hour": (datetime.timedelta(hours=1), "%H:%M"),
    "day": (datetime.timedelta(days=1), "%H:%M"),
    "week": (datetime.timedelta(weeks=1), "%a %d"),
    "month": (datetime.timedelta(days=30), "%b %d"),
    "year": (datetime.timedelta(days=365), "%b %Y"),
}
#: FindingsCount keys in the order the charts and tabs show them.
FINDING_KINDS = ("vulnerabilities", "exploits", "misconfigurations", "secrets", "malware", "rootkits")
FINISHED_SCAN = "status/state eq 'Done' or status/state eq 'Failed' or status/state eq 'Aborted'"


@bp.get("/")
def dashboard_page():
    trend_range = _trend_range()  # the initial range, handed on to the trends card
    counters = {"scans": count(Scan, FINISHED_SCAN), "assets": count(Asset), "findings": count(Finding)}
    empty = counters["scans"] == 0 and count(Scan) == 0
    return render_template("ui/dashboard.html", counters=counters, empty=empty, trend_range=trend_range)


@bp.get("/dashboard/regions")
def dashboard_regions():
    # The API lists regions by name; the chart is of the riskiest, so the most findings go first.
    regions = sorted(((region["regionName"], region["findingsCount"])
                      for region in dashboard.riskiest_regions()["regions"]),
                     key=lambda region: -sum(region[1].get(kind, 0) for kind in FINDING_KINDS))
    return _widget("ui/_bar_chart.html", "regions-card", "Riskiest regions",
                   regions=charts.stacked_bars(regions, FINDING_KINDS), kinds=FINDING_KINDS)


@bp.get("/dashboard/trends")
def dashboard_trends():
    trend_range = _trend_range()
    return _widget("ui/_trends.html", "trends-card", "Findings trends",
                   trends=_trends(trend_range), trend_range=trend_range)


@bp.get("/dashboard/assets")
def dashboard_assets():
    return _widget("ui/_riskiest_assets.html", "riskiest-card", "Riskiest assets",
                   riskiest=dashboard.riskiest_assets(), kinds=FINDING_KINDS)


@bp.get("/dashboard/impact")
def dashboard_impact():
    return _widget("ui/_findings_impact.html", "impact-card", "Findings impact", impact=dashboard.findings_impact())


def _widget(partial, card_id, title, **context):
    """The card's content for htmx; a page holding only that card for a link followed without script."""
    return render("ui/dashboard_widget.html", partial, partial=partial, card_id=card_id, title=title, **context)


def _trend_range():
    trend_range = request.args.get("range", "week")
    if trend_range not in TREND_RANGES:
        abort(400, f"range: choose one of {', '.join(TREND_RANGES)}")
    return trend_range


def _trends(trend_range):
    length, label_format = TREND_RANGES[trend_range]
    end = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    end_millis = int((end - epoch).total_seconds() * 1000)
    start_millis = end_millis - int(length.total_seconds() * 1000)
    series = {entry["findingType"].lower(): [point["count"] for point in entry["trends"]]
              for entry in dashboard.findings_trends(start_millis, end_millis)}
    labels = [(epoch + datetime.timedelta(milliseconds=millis)).strftime(label_format)
              for millis in dashboard.trend_points(start_millis, end_millis)]
    return charts.line_chart(series, labels)
