"""Benchmark the OSV matcher against the real PyPI advisories.

    .venv/bin/python bench/osv_match.py [path/to/PyPI/all.zip]

Builds 10,000 packages: every package name in the data at several versions (spread from
the earliest to the latest version the advisories mention, plus one below and one
above), padded with names that are in no advisory. Prints the package and finding
counts, the load time and the best of 5 match times (wall clock and CPU).
"""

import json
import sys
import time
import zipfile

from packaging.version import InvalidVersion, Version

from scanner.vulnerabilities.osv import OsvDatabase, match_packages

DEFAULT_PATH = "/work/shared/data/osv/PyPI/all.zip"
PACKAGES = 10_000
VERSIONS_PER_NAME = 12
ROUNDS = 5


def versions_by_name(path):
    """{name: sorted versions mentioned by its advisories}, read straight from the zip."""
    found = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            record = json.loads(archive.read(member))
            for affected in record.get("affected", []):
                name = affected["package"]["name"]
                texts = list(affected.get("versions", []))
                for rng in affected.get("ranges", []):
                    if rng["type"] == "ECOSYSTEM":
                        texts += [v for event in rng["events"] for v in event.values()]
                found.setdefault(name, set()).update(_valid(texts))
    return {name: sorted(versions) for name, versions in found.items()}


def _valid(texts):
    for text in texts:
        try:
            yield Version(text)
        except InvalidVersion:
            pass


def spread(versions, count):
    """`count` versions from first to last, evenly spaced, plus one below and one above."""
    picks = [versions[round(i * (len(versions) - 1) / max(count - 1, 1))] for i in range(count)]
    return ["0.0.0.1", *dict.fromkeys(str(v) for v in picks), "99999.0"]


def build_packages(path):
    packages = []
    for name, versions in sorted(versions_by_name(path).items()):
        for version in spread(versions, VERSIONS_PER_NAME - 2):
            packages.append(_package(name, version))
    packages = packages[:PACKAGES]
    for n in range(PACKAGES - len(packages)):
        packages.append(_package(f"not-in-any-advisory-{n}", "1.0.0"))
    return packages


def _package(name, version):
    return {"name": name, "version": version, "type": "python", "language": "python",
            "licenses": [], "cpes": [], "purl": f"pkg:pypi/{name}@{version}"}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_PATH
    packages = build_packages(path)
    db = OsvDatabase.from_path(path)
    wall, cpu = [], []
    for _ in range(ROUNDS):
        start, start_cpu = time.perf_counter(), time.process_time()
        findings = match_packages(db, packages)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(f"records:    {db.record_count}")
    print(f"packages:   {len(packages)}")
    print(f"findings:   {len(findings)}")
    print(f"load time:  {db.load_seconds:.3f} s")
    # CPU time too: on a busy machine wall time mostly measures the other processes.
    print(f"match time: {min(wall):.3f} s wall, {min(cpu):.3f} s CPU (best of {ROUNDS})")


if __name__ == "__main__":
    main()
