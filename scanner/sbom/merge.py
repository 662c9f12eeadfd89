"""Merging SBOM results: one package per purl (qualifier order normalised), everything else unioned."""

from collections import Counter

from scanner.sbom.common import SbomResult, canonical_purl

LIST_FIELDS = ("licenses", "cpes")


class Merger:
    """Accumulates packages and their locations, de-duplicated by canonical purl."""

    def __init__(self):
        self.packages = {}  # canonical purl -> package dict
        self.locations = {}  # canonical purl -> paths (first-seen order)
        self.distro = None
        self.skips = Counter()
        self.errors = []

    def add(self, pkg, paths=()):
        """Add one API Package; licences and cpes are unioned, other fields keep the first non-empty value."""
        try:
            purl = canonical_purl(pkg["purl"])
        except ValueError:
            self.skips["merge: bad purl"] += 1
            return
        known = self.packages.get(purl)
        if known is None:
            known = self.packages[purl] = {**pkg, "purl": purl, **{f: list(pkg.get(f) or []) for f in LIST_FIELDS}}
        else:
            for key, value in pkg.items():
                if key in LIST_FIELDS:
                    known[key] += [v for v in value or [] if v not in known[key]]
                elif not known.get(key) and value:
                    known[key] = value
        where = self.locations.setdefault(purl, [])
        where += [path for path in paths if path not in where]

    def add_result(self, result):
        for pkg in result.packages:
            self.add(pkg, result.locations.get(pkg["purl"], ()))
        self.distro = self.distro or result.distro
        self.skips.update(result.skips)
        self.errors += result.errors

    def result(self):
        purls = sorted(self.packages)
        return SbomResult(packages=[self.packages[p] for p in purls],
                          locations={p: self.locations[p] for p in purls},
                          distro=self.distro, skips=self.skips, errors=self.errors)


def merge(results):
    """One SbomResult from several (e.g. native and syft): the first result's values win ties."""
    merger = Merger()
    for result in results:
        merger.add_result(result)
    return merger.result()
