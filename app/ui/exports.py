"""Findings as CSV and SARIF 2.1.0: pure functions from Finding documents to text chunks.

Both are generators, so a view can stream an export of tens of thousands of
findings without holding it. Every value came from a scanned disk: CSV cells
that a spreadsheet would run as a formula are defused, and SARIF is built as
JSON (never by pasting strings), with paths percent-encoded into URIs.
"""

import csv
import io
import json
from urllib.parse import quote as quote_uri

from app.ui.finding_types import cell, severity

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "VMClarity"
TOOL_URI = "https://github.com/openclarity/vmclarity"
#: Leading characters that make Excel, LibreOffice or Sheets read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Severity word -> SARIF result level.
LEVELS = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note", "NEGLIGIBLE": "note",
          "INFO": "note"}
#: The level of a type without severities: what it means when one is found.
TYPE_LEVELS = {"Malware": "error", "Rootkit": "error", "Secret": "error", "Exploit": "warning",
               "Package": "note", "InfoFinder": "note"}


def defused(value):
    """A CSV cell a spreadsheet shows as text, never runs: formula starts get a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_chunks(finding_type, findings):
    """The CSV export, a header line then one line per finding."""
    columns = finding_type.columns
    yield _csv_line(["id", *(column.label for column in columns)])
    for finding in findings:
        yield _csv_line([finding.get("id"), *(cell(finding, column) for column in columns)])


def _csv_line(values):
    buffer = io.StringIO()
    csv.writer(buffer).writerow([defused(value) for value in values])
    return buffer.getvalue()


def sarif_chunks(finding_type, findings, truncated_at=None):
    """The SARIF log, one run: the results as they come, then the rules they used.

    A result's ruleIndex points into rules, which therefore can only be
    written once every result is out; JSON does not mind the member order.
    """
    rules = {}
    yield ('{"version": "%s", "$schema": "%s", "runs": [{"columnKind": "unicodeCodePoints", "results": ['
           % (SARIF_VERSION, SARIF_SCHEMA))
    for index, finding in enumerate(findings):
        yield ("," if index else "") + json.dumps(sarif_result(finding_type, finding, rules))
    run_end = {"tool": {"driver": {"name": TOOL_NAME, "informationUri": TOOL_URI, "rules": list(rules.values())}}}
    if truncated_at is not None:
        run_end["properties"] = {"truncated": True, "limit": truncated_at}
    yield "], " + json.dumps(run_end)[1:] + "]}"


def sarif_document(finding_type, findings, truncated_at=None):
    """The whole SARIF log as a dict (for tests and small exports)."""
    return json.loads("".join(sarif_chunks(finding_type, findings, truncated_at)))


def sarif_result(finding_type, finding, rules):
    """One SARIF result; adds its rule to `rules` ({rule id: rule}) on first use."""
    info = finding.get("findingInfo") or {}
    rule_id = rule_id_of(finding_type, info)
    if rule_id not in rules:
        rules[rule_id] = _rule(finding_type, rule_id, info)
    result = {"ruleId": rule_id, "ruleIndex": list(rules).index(rule_id), "level": level_of(info),
              "message": {"text": message_of(finding_type, finding)},
              "partialFingerprints": {"vmclarityFinding/v1": finding.get("id", "")}}
    location = _location(finding_type, info)
    if location:
        result["locations"] = [location]
    return result


def rule_id_of(finding_type, info):
    for name in finding_type.rule_fields:
        if info.get(name) not in (None, ""):
            return str(info[name])
    return finding_type.object_type


def level_of(info):
    word = severity(info)
    if word in LEVELS:
        return LEVELS[word]
    return TYPE_LEVELS.get(info.get("objectType"), "warning")


def message_of(finding_type, finding):
    """The finding's table row in one line: every column but the dates."""
    parts = [f"{column.label}: {text}" for column in finding_type.columns
             if column.key not in ("firstSeen", "lastSeen") and (text := cell(finding, column))]
    return f"{finding_type.object_type} finding. " + "; ".join(parts)


def _rule(finding_type, rule_id, info):
    rule = {"id": rule_id, "shortDescription": {"text": f"{finding_type.object_type} {rule_id}"}}
    description = info.get("description") if finding_type.object_type != "Secret" else None
    if isinstance(description, str) and description:
        rule["fullDescription"] = {"text": description}
    links = [link for link in info.get("links") or info.get("urls") or [] if _is_web(link)]
    if links:
        rule["helpUri"] = links[0]
    return rule


def _location(finding_type, info):
    path = info.get(finding_type.path_field) if finding_type.path_field else None
    if not isinstance(path, str) or not path:
        return None
    physical = {"artifactLocation": {"uri": quote_uri(path, safe="/")}}
    region = {name: info[name] for name in ("startLine", "startColumn", "endLine", "endColumn")
              if isinstance(info.get(name), int) and info[name] > 0}
    if "startLine" in region:  # a region without a start line would mean something else
        physical["region"] = region
    return {"physicalLocation": physical}


def _is_web(link):
    return isinstance(link, str) and link.lower().startswith(("https://", "http://"))
