"""Benchmark: our SBOM (one walk + native visitors) against `syft scan dir:` on the same tree.

The tree is a debootstrap'ed Debian 12 minbase (the one tests/test_sbom_native.py caches)
plus a copy of this venv's site-packages, hard-linked into a temp dir so the cache stays
pristine. Both tools run in the same process run, on a warm page cache (one untimed warm-up
run of each first), each --runs times; the best time counts.

    .venv/bin/python bench/sbom.py [--root DIR] [--runs 3]
"""

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scanner.sbom import collect, native_visitors, run_syft  # noqa: E402
from scanner.walker import walk  # noqa: E402

DEFAULT_ROOT = Path(os.environ.get("VMCLARITY_TEST_CACHE", Path.home() / ".cache/vmclarity-tests")) / "bookworm-minbase"
TYPES = ("deb", "python", "npm", "java-archive", "go-module", "rpm", "apk")


def ours(root):
    visitors = native_visitors(root)
    stats = walk(root, visitors)
    return collect(visitors), stats


def timed(function, runs):
    best, result = None, None
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    return best, result


def counts(result):
    by_type = Counter(p["type"] for p in result.packages)
    return {t: by_type[t] for t in sorted(by_type, key=lambda t: (t not in TYPES, t))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="a root filesystem (default: the test cache)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not Path(args.root, "var/lib/dpkg/status").exists():
        sys.exit(f"{args.root}: no Debian root; run the tests once (they debootstrap it) or pass --root")

    with tempfile.TemporaryDirectory(prefix="vmclarity-bench-") as tmp:
        tree = os.path.join(tmp, "root")
        subprocess.run(["cp", "-al", args.root, tree], check=True)
        shutil.copytree(sysconfig.get_paths()["purelib"], os.path.join(tree, "opt/venv/lib/python3.11/site-packages"),
                        symlinks=True)
        ours(tree), run_syft(tree)  # warm-up: both see a warm page cache

        ours_time, (ours_result, stats) = timed(lambda: ours(tree), args.runs)
        syft_time, syft_result = timed(lambda: run_syft(tree), args.runs)
        default_time, default_result = timed(lambda: run_syft(tree, tuned=False), args.runs)

    print(f"tree: {args.root} + site-packages; {stats.files} files, {stats.directories} dirs, "
          f"{stats.bytes_read / 2**20:.0f} MiB read by our walk; best of {args.runs}")
    print(f"{'analyzer':34} {'seconds':>8}  packages by type")
    rows = [("ours (walk + native visitors)", ours_time, ours_result),
            ("syft dir: (file metadata off)", syft_time, syft_result),
            ("syft dir: (defaults)", default_time, default_result)]
    for label, seconds, result in rows:
        total = len(result.packages)
        print(f"{label:34} {seconds:8.2f}  total {total}: {counts(result)}  {result.errors or ''}")
    print(f"speed-up vs syft defaults: {default_time / ours_time:.1f}x, vs tuned syft: {syft_time / ours_time:.1f}x")


if __name__ == "__main__":
    main()
