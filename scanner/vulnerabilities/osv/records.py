"""Turn raw OSV records into compact entries with pre-parsed versions.

Every field is checked before use: records come from downloaded archives and may be
malformed or malicious. Anything unusable is skipped and counted under a reason.
"""

import re
from dataclasses import dataclass

from scanner.vulnerabilities.osv import ecosystems
from scanner.vulnerabilities.osv.severity import score_vector

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}")
URL_PATTERN = re.compile(r"https?://[^\s\x00-\x1f\x7f\"'<>]{1,2040}")
MAX_TEXT = 16384  # characters kept of summary and of details
MAX_ITEMS = 50000  # versions per affected entry, events per range: beyond is an attack
MAX_REFERENCES = 200
MAX_ALIASES = 100

INTRODUCED, FIXED, LAST_AFFECTED, LIMIT = "introduced", "fixed", "last_affected", "limit"
EVENT_KINDS = (INTRODUCED, FIXED, LAST_AFFECTED, LIMIT)
RANGE_SCHEMES = {"SEMVER": "semver"}  # ECOSYSTEM ranges use the ecosystem's scheme


@dataclass(slots=True)
class Advisory:
    id: str
    aliases: tuple
    summary: str
    details: str
    references: tuple  # http(s) URLs
    cvss: tuple  # API VulnerabilityCvss dicts
    labels: tuple  # severity words, a fallback when there is no CVSS vector


@dataclass(slots=True)
class Range:
    scheme: str
    events: tuple  # (kind, parsed version or None for introduced "0", text), sorted
    limits: tuple  # parsed limit versions; empty means no limit


@dataclass(slots=True)
class Affected:
    advisory: Advisory
    scheme: str
    ranges: tuple
    versions: frozenset  # parsed explicit versions
    texts: frozenset  # explicit versions as written
    cvss: tuple
    labels: tuple


def _text(value, limit=MAX_TEXT):
    return value[:limit] if isinstance(value, str) else ""


def _list(value):
    return value[:MAX_ITEMS] if isinstance(value, list) else []


def _dict(value):
    return value if isinstance(value, dict) else {}


def compile_record(raw, skipped, parse):
    """Return [(ecosystem key, name, Affected)] for a raw record, counting what is skipped.

    `parse(scheme, text)` returns a parsed version or None (and is expected to cache).
    """
    if not isinstance(raw, dict):
        skipped["record is not an object"] += 1
        return []
    if not isinstance(raw.get("id"), str) or not ID_PATTERN.fullmatch(raw["id"]):
        skipped["record without a valid id"] += 1
        return []
    if raw.get("withdrawn"):
        skipped["withdrawn record"] += 1
        return []
    advisory = _advisory(raw)
    entries = []
    for item in _list(raw.get("affected")):
        entry = _affected(item, advisory, skipped, parse)
        if entry:
            entries.append(entry)
    if not entries:
        skipped["record without a usable affected package"] += 1
    return entries


def _advisory(raw):
    aliases = [a for a in _list(raw.get("aliases"))[:MAX_ALIASES] if isinstance(a, str)]
    references = []
    for ref in _list(raw.get("references"))[:MAX_REFERENCES]:
        url = _dict(ref).get("url")
        if isinstance(url, str) and URL_PATTERN.fullmatch(url):
            references.append(url)
    cvss, labels = _severity(raw.get("severity"), _dict(raw.get("database_specific")))
    return Advisory(
        id=raw["id"],
        aliases=tuple(a for a in aliases if ID_PATTERN.fullmatch(a) and a != raw["id"]),
        summary=_text(raw.get("summary")).strip(),
        details=_text(raw.get("details")).strip(),
        references=tuple(dict.fromkeys(references)),
        cvss=cvss,
        labels=labels,
    )


def _severity(entries, *specific):
    """(CVSS dicts, severity words) from a severity[] list and *_specific objects."""
    cvss, labels = [], []
    for entry in _list(entries)[:20]:
        entry = _dict(entry)
        kind, score = entry.get("type"), entry.get("score")
        scored = score_vector(kind, score)
        if scored:
            cvss.append(scored)
        elif kind == "Ubuntu" and isinstance(score, str):
            labels.append(score)
    for extra in specific:
        for key in ("severity", "urgency"):
            if isinstance(extra.get(key), str):
                labels.append(extra[key])
    return tuple(cvss), tuple(labels)


def _affected(item, advisory, skipped, parse):
    item = _dict(item)
    package = _dict(item.get("package"))
    raw_ecosystem, name = package.get("ecosystem"), package.get("name")
    if not isinstance(raw_ecosystem, str) or not isinstance(name, str) or not name:
        skipped["affected entry without ecosystem or name"] += 1
        return None
    key = ecosystems.index_ecosystem(raw_ecosystem)
    if key is None:
        skipped["unsupported ecosystem"] += 1
        return None
    scheme = ecosystems.scheme_name(key)
    ranges = [r for r in (_range(x, scheme, skipped, parse) for x in _list(item.get("ranges"))) if r]
    texts = [v for v in _list(item.get("versions")) if isinstance(v, str)]
    parsed = [p for p in (parse(scheme, v) for v in texts) if p is not None]
    if not ranges and not texts:
        skipped["affected entry without usable ranges or versions"] += 1
        return None
    cvss, labels = _severity(
        item.get("severity"), _dict(item.get("ecosystem_specific")), _dict(item.get("database_specific"))
    )
    entry = Affected(advisory, scheme, tuple(ranges), frozenset(parsed), frozenset(texts), cvss, labels)
    return key, ecosystems.normalize_name(key, name), entry


def _range(raw, ecosystem_scheme, skipped, parse):
    raw = _dict(raw)
    kind = raw.get("type")
    if kind == "GIT":
        skipped["GIT range ignored"] += 1
        return None
    if kind not in ("ECOSYSTEM", "SEMVER"):
        skipped["range of unknown type"] += 1
        return None
    scheme = RANGE_SCHEMES.get(kind, ecosystem_scheme)
    events = []
    for event in _list(raw.get("events")):
        compiled = _event(event, scheme, parse)
        if compiled is None:
            skipped["range with an invalid event or version"] += 1
            return None
        events.append(compiled)
    if not any(kind == INTRODUCED for kind, _, _ in events):
        skipped["range without an introduced event"] += 1
        return None
    limits = [parsed for kind, parsed, _ in events if kind == LIMIT]
    if any(kind == LIMIT and parsed is None for kind, parsed, _ in events):
        limits = []  # a "*" limit is infinity: no limit at all
    ordered = sorted((e for e in events if e[0] != LIMIT), key=_event_order)
    return Range(scheme, tuple(ordered), tuple(limits))


def _event(event, scheme, parse):
    """(kind, parsed, text); parsed is None only for introduced "0" and limit "*"."""
    event = _dict(event)
    if len(event) != 1:
        return None
    kind, text = next(iter(event.items()))
    if kind not in EVENT_KINDS or not isinstance(text, str):
        return None
    if (kind == INTRODUCED and text == "0") or (kind == LIMIT and "*" in text):
        return kind, None, text
    parsed = parse(scheme, text)
    return (kind, parsed, text) if parsed is not None else None


def _event_order(event):
    # The spec sorts events by version, with introduced "0" before everything.
    return (0,) if event[1] is None else (1, event[1])
