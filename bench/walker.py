"""Benchmark the scanner's walk against os.walk on the same tree, in the same run.

    .venv/bin/python bench/walker.py [ROOT] [--max-size BYTES] [--repeat N]

(a) metadata only: walk() with a visitor that wants nothing, versus os.walk + lstat;
(b) content: walk() with one visitor that reads every file up to --max-size, versus
    os.walk + lstat + open/read of the same files. A warm-up pass runs first so both
    sides see the same (warm) page cache; the two sides alternate and each figure is the
    best of --repeat runs.
"""

import argparse
import os
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scanner.walker import Visitor, walk  # noqa: E402


class WantsNothing(Visitor):
    name = "wants-nothing"


class ReadsSmallFiles(Visitor):
    name = "reads-small-files"

    def __init__(self, max_size):
        self.max_file_size = max_size

    def wants(self, entry):
        return entry.size <= self.max_file_size

    def feed(self, entry, chunk):
        return None


def baseline(root, max_size):
    """os.walk + lstat, reading regular files up to max_size when it is not None: (files, bytes)."""
    files = read = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            files += 1
            if max_size is not None and st.st_size <= max_size:
                read += read_file(path)
    return files, read


def read_file(path):
    try:
        with open(path, "rb", buffering=0) as handle:
            return sum(len(chunk) for chunk in iter(lambda: handle.read(1024**2), b""))
    except OSError:
        return 0


def scanner_walk(root, max_size):
    visitors = [WantsNothing()] if max_size is None else [ReadsSmallFiles(max_size)]
    stats = walk(root, visitors)
    return stats.files, stats.bytes_read


def best_of(repeat, runs, *args):
    """Best (seconds, files, bytes) of each run; the runs alternate so a noisy machine hurts them alike."""
    best = [None] * len(runs)
    for _ in range(repeat):
        for index, run in enumerate(runs):
            started = time.perf_counter()
            files, read = run(*args)
            seconds = time.perf_counter() - started
            if best[index] is None or seconds < best[index][0]:
                best[index] = (seconds, files, read)
    return best


def row(label, seconds, files, read):
    return (f"{label:<34} {files:>9,} files {read / 1e6:>9.1f} MB {seconds:>7.2f} s "
            f"{files / seconds:>10,.0f} files/s {read / 1e6 / seconds:>8.1f} MB/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="/usr")
    parser.add_argument("--max-size", type=int, default=1024**2, help="largest file read in (b)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    baseline(args.root, args.max_size)  # warm-up: the page cache holds the tree for both sides
    print(f"root {args.root}, files up to {args.max_size:,} bytes read in (b), best of {args.repeat}")
    for label, max_size in (("(a) metadata only", None), ("(b) read files", args.max_size)):
        walked, base = best_of(args.repeat, [scanner_walk, baseline], args.root, max_size)
        print(row(f"{label}: scanner walk()", *walked))
        print(row(f"{label}: os.walk baseline", *base))
        print(f"{'':<34} walk() takes {walked[0] / base[0]:.2f}x the baseline's time")


if __name__ == "__main__":
    main()
