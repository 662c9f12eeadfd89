"""The scan's results in the API's AssetScan schema: result blocks, stats and summary.

`storable()` is the one gate every result passes on its way out (run.py applies it to
each family's block and stats as they are made; the API and assetscan.json get them
from there): the
API refuses a whole body that holds a NUL or a lone surrogate (neither database can
store them), and text copied from a hostile target (an account name, a sudoers user, a
cron command, a key comment) may hold either. They are escaped visibly as display()
escapes them ('\\x00', '\\x80' for an undecodable byte, '\\ud800'), so the finding still
arrives and shows what the target holds; every other character is left as it is.
"""

from scanner.vocabulary import FAMILIES, FAMILIES_BY_API_KEY, VULNERABILITY_SEVERITIES, scanner_status
from scanner.walker import display


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


def storable(value):
    """`value` (decoded JSON) with every NUL and lone surrogate in its strings and keys escaped visibly."""
    # One-way: a literal '\x00' text on the target looks the same as an escaped NUL. Backslashes are
    # not doubled to tell them apart, since that would alter ordinary data such as Windows paths.
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, dict):
        return {_storable_text(key) if isinstance(key, str) else key: storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(item) for item in value]
    return value


def _storable_text(text):
    if "\x00" not in text and (text.isascii() or _encodes(text)):
        return text
    return "".join(display(ch) if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in text)


def _encodes(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
