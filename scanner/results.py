"""The scan's results in the API's AssetScan schema: result blocks, stats and summary."""

from scanner.vocabulary import FAMILIES, FAMILIES_BY_API_KEY, VULNERABILITY_SEVERITIES, scanner_status


def asset_scan_document(outcome):
    """The AssetScan fields a scanner owns, for `assetscan.json` and the final PATCH."""
    document = {}
    for family in FAMILIES:
        document[family.api_key] = outcome.blocks.get(family.api_key) or {"status": scanner_status("Skipped")}
    document["stats"] = stats_document(outcome)
    document["summary"] = summary(outcome)
    return document


def stats_document(outcome):
    stats = {"general": {"scanTime": {"startTime": outcome.started}}}
    if outcome.ended:
        stats["general"]["scanTime"]["endTime"] = outcome.ended
    stats.update(outcome.stats)
    return stats


def summary(outcome):
    """ScanFindingsSummary: how many results each family found."""
    totals = {family.summary_key: len(_results(outcome, family)) for family in FAMILIES
              if family.summary_key != "totalVulnerabilities"}
    vulnerabilities = _results(outcome, FAMILIES_BY_API_KEY["vulnerabilities"])
    totals["totalVulnerabilities"] = {
        f"total{severity.capitalize()}Vulnerabilities": sum(1 for v in vulnerabilities if v.get("severity") == severity)
        for severity in VULNERABILITY_SEVERITIES
    }
    return totals


def _results(outcome, family):
    block = outcome.blocks.get(family.api_key) or {}
    return block.get(family.results_key) or []
