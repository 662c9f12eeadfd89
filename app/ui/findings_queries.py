"""Findings as the UI lists and exports them: filters from the query string, pages, all rows, one finding.

A finding is "history" once no asset still has it: every AssetFinding pointing
at it is invalidated (findings processing sets invalidatedOn when a later scan
of the asset ran the family and did not see it again) or belongs to a
terminated asset. A finding's own lastSeen cannot tell: an asset not scanned
since still has it. OData cannot ask "some asset finding points here", so that
filter is a peewee sub-select passed as `restrict`.

A scan's findings are those whose lastSeenBy is one of the scan's asset scans:
the only stored link from a finding to what saw it. It names the latest
sighting, so a finding seen again by a later scan belongs to that scan then.
"""

import datetime
import functools
import operator
from dataclasses import dataclass

from flask import abort
from peewee import fn

from app import odata
from app.models import Asset, AssetFinding, AssetScan, Finding
from app.ui.finding_types import DEFAULT_TYPE, TYPES, TYPES_BY_SLUG
from app.ui.listing import Column, TableState, all_of, page_of, quote
from app.ui.presenters import summary_count
from scanner.vocabulary import FAMILIES

#: The most rows one export holds; past it the export says so and stops.
EXPORT_CAP = 50_000
EXPORT_BATCH = 500
ASSET_COLUMNS = (
    Column("asset", "Asset"),
    Column("location", "Location"),
    Column("firstSeen", "First seen", "firstSeen"),
    Column("lastSeen", "Last seen", "lastSeen"),
    Column("invalidatedOn", "Invalidated on", "invalidatedOn"),
)


@dataclass(frozen=True)
class FindingFilters:
    """What the findings table shows, read from its query string."""

    finding_type: object
    search: str = ""
    first_seen_from: datetime.date = None
    first_seen_to: datetime.date = None
    hide_history: bool = False
    asset_id: str = ""
    scan_id: str = ""
    severity: str = ""  # a word of finding_type.severity_words, or "" for every severity

    @classmethod
    def from_args(cls, args):
        """Filters from a query string mapping; an unknown type is the default tab, a bad date or severity a 400."""
        finding_type = TYPES_BY_SLUG.get(args.get("type"), DEFAULT_TYPE)
        return cls(finding_type, args.get("q", "").strip(),
                   _date(args, "first_seen_from"), _date(args, "first_seen_to"),
                   args.get("hide_history") == "1", args.get("asset", "").strip(), args.get("scan", "").strip(),
                   _severity(args, finding_type))

    def odata(self):
        """The OData $filter clauses (ANDed by the caller)."""
        return [f"findingInfo/objectType eq {quote(self.finding_type.object_type)}",
                self._search(),
                f"firstSeen ge {_midnight(self.first_seen_from)}" if self.first_seen_from else None,
                # The "to" day is inclusive: everything before the next midnight.
                f"firstSeen lt {_midnight(self.first_seen_to + datetime.timedelta(days=1))}"
                if self.first_seen_to else None,
                f"findingInfo/severity eq {quote(self.finding_type.stored_severity(self.severity))}"
                if self.severity else None]

    def restrict(self):
        """The peewee condition for the asset, history and scan filters, or None."""
        conditions = [self._held(), last_seen_by_scan(self.scan_id) if self.scan_id else None]
        conditions = [condition for condition in conditions if condition is not None]
        return functools.reduce(operator.and_, conditions) if conditions else None

    def _held(self):
        if not (self.hide_history or self.asset_id):
            return None
        holders = AssetFinding.select(AssetFinding.finding)
        if self.hide_history:
            # A join, not OData's `asset/terminatedOn eq null`: that is a sub-select per asset
            # finding, which PostgreSQL cannot estimate; it then picks a nested loop over every
            # finding of the type (the count took 330 ms instead of 110 at 100k findings).
            holders = (holders.join(Asset, on=(AssetFinding.asset == Asset.id))
                       .where(odata.filter_expression(AssetFinding, "invalidatedOn eq null"),
                              odata.filter_expression(Asset, "terminatedOn eq null")))
        if self.asset_id:
            holders = holders.where(odata.filter_expression(AssetFinding, f"asset/id eq {quote(self.asset_id)}"))
        return Finding.id.in_(holders)

    def _search(self):
        if not self.search:
            return None
        return " or ".join(f"contains(findingInfo/{path}, {quote(self.search)})" for path in self.finding_type.search)


def last_seen_by_scan(scan_id):
    """The peewee condition for findings last seen by one of the scan's asset scans."""
    return Finding.last_seen_by.in_(AssetScan.select(AssetScan.id).where(AssetScan.scan == scan_id))


#: Finding type -> the ScanFindingsSummary counter of the family that finds it.
SUMMARY_KEYS = {family.finding_type: family.summary_key for family in FAMILIES if family.finding_type}


@dataclass(frozen=True)
class ScanTypeCount:
    finding_type: object
    reported: int    # results the scan's asset scans reported (its summary, one per asset and result)
    last_seen: int   # distinct findings whose latest sighting is one of the scan's asset scans


def scan_findings(scan):
    """Per finding type: what the scan's scanners reported, and how many findings it saw last."""
    counts = dict(Finding.select(Finding.object_type, fn.COUNT(Finding.id))
                  .where(last_seen_by_scan(scan["id"])).group_by(Finding.object_type).tuples())
    return [ScanTypeCount(finding_type, summary_count(scan.get("summary"), SUMMARY_KEYS[finding_type.object_type]),
                          counts.get(finding_type.object_type, 0))
            for finding_type in TYPES]


def _date(args, name):
    text = args.get(name, "").strip()
    if not text:
        return None
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        abort(400, f"{name} must be a date like 2026-01-31")
    if day == datetime.date.max:  # the "to" day ends at the next midnight, which does not exist
        abort(400, f"{name} must be a date before {day}")
    return day


def _severity(args, finding_type):
    word = args.get("severity", "").strip().upper()
    if word and finding_type.stored_severity(word) is None:
        known = ", ".join(finding_type.severity_words)
        abort(400, f"severity must be one of {known}" if known else f"{finding_type.label} have no severity")
    return word


def _midnight(day):
    return f"{day.isoformat()}T00:00:00Z"


def table_state(filters):
    """The sort and page of the table of `filters.finding_type`; newest sightings first by default."""
    return TableState.from_request(filters.finding_type.columns, "lastSeen", default_descending=True)


def page(filters, state):
    return page_of(Finding, filters.finding_type.columns, state, filters.odata(), restrict=filters.restrict())


def count(filters):
    result = odata.list_documents(Finding, {"$filter": all_of(filters.odata()), "$top": "0", "$count": "true"},
                                  restrict=filters.restrict())
    return result["count"]


def every(filters, state):
    """The findings of the table, every page in its order, at most EXPORT_CAP, read in batches."""
    cap = EXPORT_CAP
    columns = filters.finding_type.columns
    orderby, order_first = state.orderby(columns), state.order_first(Finding, columns)
    where, restrict = all_of(filters.odata()), filters.restrict()
    for skip in range(0, cap, EXPORT_BATCH):
        top = min(EXPORT_BATCH, cap - skip)
        batch = odata.list_documents(Finding, {"$filter": where, "$orderby": orderby, "$top": str(top),
                                               "$skip": str(skip)}, restrict=restrict,
                                     order_first=order_first)["items"]
        yield from batch
        if len(batch) < top:
            return


def get(finding_id):
    finding = odata.get_document(Finding, finding_id, {})
    if finding is None:
        abort(404, "no finding has that id")
    return finding


def affected_assets(finding_id, state):
    """One page of the finding's AssetFindings, each with its asset."""
    return page_of(AssetFinding, ASSET_COLUMNS, state, [f"finding/id eq {quote(finding_id)}"],
                   expand="asset($select=id,assetInfo,terminatedOn)")
