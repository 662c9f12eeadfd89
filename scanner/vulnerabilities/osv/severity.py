"""Severity and CVSS scores from OSV `severity[]` vectors and severity labels.

The bucket comes from CVSS base scores when the advisory has any vector: each vector is
bucketed on its own version's scale (v3 and v4: 9.0 CRITICAL, 7.0 HIGH, 4.0 MEDIUM,
0.1 LOW, 0.0 NEGLIGIBLE; v2 has no CRITICAL: 7.0 HIGH, 4.0 MEDIUM, else LOW) and the
worst bucket wins. Without a vector, severity labels (GitHub's database_specific.severity
"MODERATE", Ubuntu priorities, Red Hat's "Important", Debian urgencies) are used.
"""

from cvss import CVSS2, CVSS3, CVSS4

ORDER = ("NEGLIGIBLE", "LOW", "MEDIUM", "HIGH", "CRITICAL")
MAX_VECTOR = 256

LABELS = {
    "critical": "CRITICAL",
    "high": "HIGH",
    "important": "HIGH",
    "moderate": "MEDIUM",
    "medium": "MEDIUM",
    "low": "LOW",
    "negligible": "NEGLIGIBLE",
    "unimportant": "NEGLIGIBLE",
    "none": "NEGLIGIBLE",
}


def worst(severities):
    """The most severe of some severities; None for none."""
    ranked = [s for s in severities if s in ORDER]
    return max(ranked, key=ORDER.index) if ranked else None


def from_label(label):
    """Map a severity word ("MODERATE", "medium**", "Important") to our enum, or None."""
    if not isinstance(label, str) or len(label) > 64:
        return None
    word = "".join(c for c in label.lower() if c.isalpha() or c == " ").strip()
    return LABELS.get(word)


def bucket(version, score):
    if score <= 0:
        return "NEGLIGIBLE"
    if version.startswith("2"):
        return "HIGH" if score >= 7 else "MEDIUM" if score >= 4 else "LOW"
    if score >= 9:
        return "CRITICAL"
    return "HIGH" if score >= 7 else "MEDIUM" if score >= 4 else "LOW"


def score_vector(kind, vector):
    """An API VulnerabilityCvss for an OSV severity entry; None if it is not a valid vector."""
    if not isinstance(vector, str) or len(vector) > MAX_VECTOR:
        return None
    try:
        if kind == "CVSS_V3":
            return _v3(vector)
        if kind == "CVSS_V2":
            return _v2(vector)
        if kind == "CVSS_V4":
            return _v4(vector)
    except Exception:  # the cvss parser raises many kinds of errors on hostile vectors
        return None
    return None


def _one_decimal(value):
    return round(max(float(value), 0.0), 1)


def _v3(vector):
    parsed = CVSS3(vector)
    version = vector.split("/", 1)[0].partition(":")[2] or "3.1"
    metrics = {
        "baseScore": _one_decimal(parsed.base_score),
        "exploitabilityScore": _one_decimal(parsed.esc),
        "impactScore": _one_decimal(parsed.isc),
    }
    return {"version": version, "vector": parsed.clean_vector(), "metrics": metrics}


def _v2(vector):
    parsed = CVSS2(vector)
    exploitability = 20 * parsed.get_value("AV") * parsed.get_value("AC") * parsed.get_value("Au")
    metrics = {
        "baseScore": _one_decimal(parsed.base_score),
        "exploitabilityScore": _one_decimal(exploitability),
        "impactScore": _one_decimal(parsed.impact_equation()),
    }
    return {"version": "2.0", "vector": parsed.clean_vector(), "metrics": metrics}


def _v4(vector):
    # CVSS v4 has no exploitability or impact sub-scores.
    parsed = CVSS4(vector)
    metrics = {"baseScore": _one_decimal(parsed.base_score)}
    return {"version": "4.0", "vector": parsed.clean_vector(), "metrics": metrics}


def severity_of(cvss_entries, labels):
    """The bucket for a finding: CVSS first, labels second, None when neither says."""
    from_cvss = [bucket(c["version"], c["metrics"]["baseScore"]) for c in cvss_entries]
    return worst(from_cvss) or worst(from_label(label) for label in labels)
