"""The dashboard: counters, riskiest regions, findings trends, riskiest assets, findings impact."""

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
    trend_range = _trend_range()
    counters = {"scans": count(Scan, FINISHED_SCAN), "assets": count(Asset), "findings": count(Finding)}
    if counters["scans"] == 0 and count(Scan) == 0:
        return render("ui/dashboard.html", "ui/dashboard.html", counters=counters, empty=True)
    # The API lists regions by name; the chart is of the riskiest, so the most findings go first.
    regions = sorted(((region["regionName"], region["findingsCount"])
                      for region in dashboard.riskiest_regions()["regions"]),
                     key=lambda region: -sum(region[1].get(kind, 0) for kind in FINDING_KINDS))
    return render("ui/dashboard.html", "ui/dashboard.html", counters=counters, empty=False,
                  regions=charts.stacked_bars(regions, FINDING_KINDS), kinds=FINDING_KINDS,
                  trends=_trends(trend_range), trend_range=trend_range,
                  riskiest=dashboard.riskiest_assets(), impact=dashboard.findings_impact())


@bp.get("/dashboard/trends")
def dashboard_trends():
    trend_range = _trend_range()
    return render_template("ui/_trends.html", trends=_trends(trend_range), trend_range=trend_range)


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
