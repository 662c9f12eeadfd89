"""Benchmark the secrets engine against gitleaks and detect-secrets on the same tree, in one run.

    .venv/bin/python bench/secrets_scan.py [--tree DIR] [--prefix P] [--ds-mb MB] [--cold] [--prefilters MB]

The default tree is built once (hard links, no copies) under
~/.cache/vmclarity-bench/secrets-tree: the debootstrapped Debian root
(~/.cache/vmclarity-tests/bookworm-minbase) when present, else /usr/share/doc, plus the
venv's site-packages as /opt/pylib (a neutral name: gitleaks' default allowlist skips
any path with 'site-packages' in it). Every tool gets the same tree:

  read-once       walk() reading every file with a visitor that does nothing: the limit
  secrets         walk() with our SecretsScanner's visitor (hyperscan prefilter)
  secrets/keywords the same with the keyword fallback (no hyperscan)
  gitleaks        gitleaks detect --no-git --source TREE -f json --exit-code 0
  detect-secrets  detect-secrets scan --all-files on a sample of about --ds-mb MB of the
                  tree's text files (it runs at well under 1 MB/s), its time extrapolated
                  to the whole tree

The page cache is warmed first (or, with --cold, dropped before each tool: root only).
MB/s is the tree's bytes over the time, whatever each tool decides to skip; 'scanned'
says how many bytes our engine actually ran its rules over. --prefilters MB times the
keyword prefilters alone (hyperscan, pyahocorasick, one combined regex, bytes.find) over
that many MB of the tree's text files held in memory.
"""

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scanner.secrets import RULES, SecretsScanner  # noqa: E402
from scanner.walker import Visitor, walk  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(HERE, ".venv", "bin")
SITE_PACKAGES = os.path.join(HERE, ".venv", "lib", "python3.11", "site-packages")
BOOKWORM = os.path.expanduser("~/.cache/vmclarity-tests/bookworm-minbase")
DEFAULT_TREE = os.path.expanduser("~/.cache/vmclarity-bench/secrets-tree")


# --- the tree -------------------------------------------------------------------------

def build_tree(target):
    """Hard-link a Debian root (or /usr/share/doc) and site-packages (as /opt/pylib) into `target`."""
    if os.path.isdir(target):
        return target
    staging = target + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    if os.path.isdir(BOOKWORM):
        link_tree(BOOKWORM, staging)
    else:
        link_tree("/usr/share/doc", os.path.join(staging, "usr", "share", "doc"))
    link_tree(SITE_PACKAGES, os.path.join(staging, "opt", "pylib"))
    os.rename(staging, target)
    return target


def link_tree(source, target):
    """Directories and regular files only; files are hard links (copies across filesystems)."""
    for dirpath, dirnames, filenames in os.walk(source):
        here = os.path.join(target, os.path.relpath(dirpath, source))
        os.makedirs(here, exist_ok=True)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            try:
                os.link(path, os.path.join(here, name))
            except OSError:
                shutil.copy2(path, os.path.join(here, name))


def tree_bytes(root):
    """(bytes of regular files, bytes of those that are text: no NUL in their first 8 KiB)."""
    total = text = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                continue
            total += st.st_size
            with open(path, "rb") as handle:
                if b"\0" not in handle.read(8192):
                    text += st.st_size
    return total, text


def text_files(root, limit_bytes):
    """Up to limit_bytes of the tree's text files (no NUL in the first 8 KiB): [(path, data)]."""
    found, total = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            with open(path, "rb") as handle:
                data = handle.read(16 * 1024**2)
            if b"\0" in data[:8192]:
                continue
            found.append((path, data))
            total += len(data)
            if total >= limit_bytes:
                return found
    return found


# --- the tools ------------------------------------------------------------------------

class ReadsEverything(Visitor):
    name = "read-once"

    def wants(self, entry):
        return True


def run_walk(root, make_visitors, prepare, repeat):
    """Best of `repeat` walks with fresh visitors: (seconds, stats, visitors)."""
    best = None
    for _ in range(repeat):
        visitors = make_visitors()
        prepare()
        started = time.perf_counter()
        stats = walk(root, visitors)
        seconds = time.perf_counter() - started
        if best is None or seconds < best[0]:
            best = (seconds, stats, visitors)
    return best


def run_ours(root, prefix, use_hyperscan, prepare, repeat):
    scanners = []

    def make_visitors():  # the rules compile here, before the clock starts
        scanners[:] = [SecretsScanner(root, {"path_prefix": prefix}, use_hyperscan=use_hyperscan)]
        return scanners[0].visitors()

    seconds, _, _ = run_walk(root, make_visitors, prepare, repeat)
    result = scanners[0].finish()
    return seconds, len(result.results), scanners[0].visitor.bytes_scanned


def run_gitleaks(root):
    gitleaks = shutil.which("gitleaks", path=VENV_BIN) or shutil.which("gitleaks")
    if not gitleaks:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        started = time.perf_counter()
        subprocess.run([gitleaks, "detect", "--no-git", "--source", root, "-r", report, "-f", "json",
                        "--exit-code", "0", "--log-level", "error", "--no-banner"], check=True,
                       stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
        with open(report) as handle:
            return seconds, len(json.load(handle))


def run_detect_secrets(root, sample_mb):
    tool = shutil.which("detect-secrets", path=VENV_BIN) or shutil.which("detect-secrets")
    if not tool:
        return None
    with tempfile.TemporaryDirectory() as sample:
        size = 0
        for path, data in text_files(root, sample_mb * 1024**2):
            target = os.path.join(sample, os.path.relpath(path, root))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as handle:  # a copy: hard links may not cross into the temp dir
                handle.write(data)
            size += len(data)
        started = time.perf_counter()
        # Run from inside the sample: given an absolute path elsewhere, detect-secrets scans nothing.
        out = subprocess.run([tool, "scan", "--all-files", "."], cwd=sample, check=True, capture_output=True).stdout
        seconds = time.perf_counter() - started
    findings = sum(len(items) for items in json.loads(out)["results"].values())
    return seconds, findings, size


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as handle:
        handle.write("1\n")


# --- prefilters alone -----------------------------------------------------------------

def bench_prefilters(root, limit_mb):
    """Time keyword prefilters over in-memory text: every keyword occurrence, case-insensitive."""
    buffers = [data for _, data in text_files(root, limit_mb * 1024**2)]
    size = sum(map(len, buffers))
    keywords = sorted({keyword for rule in RULES for keyword in rule.keywords})
    rows = []
    try:
        import hyperscan
        database = hyperscan.Database()
        database.compile(expressions=[re.escape(k.decode()).encode() for k in keywords],
                         ids=list(range(len(keywords))), flags=[hyperscan.HS_FLAG_CASELESS] * len(keywords))
        hits = []
        rows.append(("hyperscan (keywords)", timed(lambda: [database.scan(
            b, match_event_handler=lambda i, f, t, fl, c: hits.append(t)) for b in buffers]), len(hits)))
        full = hyperscan.Database()
        full.compile(expressions=[rule.trigger or rule.pattern for rule in RULES], ids=list(range(len(RULES))),
                     flags=[hyperscan.HS_FLAG_PREFILTER] * len(RULES))
        hits_full = []
        rows.append(("hyperscan (rule regexes, what we ship)", timed(lambda: [full.scan(
            b, match_event_handler=lambda i, f, t, fl, c: hits_full.append(t)) for b in buffers]), len(hits_full)))
    except ImportError:
        pass
    try:
        import ahocorasick
        automaton = ahocorasick.Automaton()
        for index, keyword in enumerate(keywords):
            automaton.add_word(keyword.decode(), index)
        automaton.make_automaton()
        rows.append(("pyahocorasick (latin-1 lowered)", *timed_count(
            lambda: sum(1 for b in buffers for _ in automaton.iter(b.decode("latin-1").lower())))))
    except ImportError:
        pass
    combined = re.compile(b"|".join(re.escape(k) for k in keywords), re.IGNORECASE)
    rows.append(("re (one combined regex)", *timed_count(
        lambda: sum(1 for b in buffers for _ in combined.finditer(b)))))
    rows.append(("bytes.lower + bytes.find", *timed_count(lambda: sum(find_all(b.lower(), keywords)
                                                                      for b in buffers))))
    print(f"\nkeyword prefilters over {size / 1e6:.0f} MB of text in memory ({len(keywords)} keywords):")
    print(f"{'prefilter':40} {'s':>7} {'MB/s':>7} {'hits':>8}")
    for name, seconds, hits in rows:
        print(f"{name:40} {seconds:7.2f} {size / 1e6 / seconds:7.0f} {hits:8}")


def timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def timed_count(function):
    started = time.perf_counter()
    count = function()
    return time.perf_counter() - started, count


def find_all(data, keywords):
    count = 0
    for keyword in keywords:
        at = data.find(keyword)
        while at >= 0:
            count += 1
            at = data.find(keyword, at + 1)
    return count


# --- main -----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", help="scan this directory instead of the default tree")
    parser.add_argument("--prefix", default="", help="where --tree sits on its machine (path_prefix)")
    parser.add_argument("--ds-mb", type=int, default=5, help="MB of text for detect-secrets (default 5)")
    parser.add_argument("--cold", action="store_true", help="drop the page cache before each tool (root)")
    parser.add_argument("--prefilters", type=int, default=0, metavar="MB", help="also time keyword prefilters")
    parser.add_argument("--no-fallback", action="store_true", help="skip the keyword-fallback run")
    parser.add_argument("--repeat", type=int, default=3, help="walks per figure of ours, best taken (default 3)")
    args = parser.parse_args()
    root = os.path.abspath(args.tree) if args.tree else build_tree(DEFAULT_TREE)
    size, text = tree_bytes(root)  # also warms the page cache
    prepare = drop_caches if args.cold else (lambda: None)
    repeat = 1 if args.cold else args.repeat

    rows = []
    seconds, stats, _ = run_walk(root, lambda: [ReadsEverything()], prepare, repeat)
    rows.append(("read-once (walk, every byte)", seconds, size, "-", f"read {stats.bytes_read / 1e6:.0f} MB"))
    seconds, findings, scanned = run_ours(root, args.prefix, True, prepare, repeat)
    rows.append(("secrets (ours, hyperscan)", seconds, size, findings, f"ran the rules over {scanned / 1e6:.0f} MB"))
    if not args.no_fallback:
        seconds, findings, scanned = run_ours(root, args.prefix, False, prepare, 1)
        rows.append(("secrets (ours, keyword fallback)", seconds, size, findings,
                     f"ran the rules over {scanned / 1e6:.0f} MB"))
    prepare()
    gitleaks = run_gitleaks(root)
    if gitleaks:
        rows.append(("gitleaks detect --no-git", gitleaks[0], size, gitleaks[1], ""))
    prepare()
    detect = run_detect_secrets(root, args.ds_mb)
    if detect:
        seconds, findings, sample = detect
        rows.append(("detect-secrets scan --all-files", seconds * text / sample, size, f"~{findings * text // sample}",
                     f"extrapolated to the tree's {text / 1e6:.0f} MB of text from {sample / 1e6:.1f} MB: "
                     f"{seconds:.1f} s, {findings} findings"))

    print(f"tree {root}: {size / 1e6:.0f} MB, {text / 1e6:.0f} MB of it text"
          f"{' (cold cache each run)' if args.cold else ' (warm cache; best of ' + str(repeat) + ' for walks)'}")
    print(f"{'tool':36} {'s':>8} {'MB/s':>7} {'findings':>9}  notes")
    for name, seconds, total, findings, note in rows:
        print(f"{name:36} {seconds:8.2f} {total / 1e6 / seconds:7.0f} {findings!s:>9}  {note}")
    if args.prefilters:
        bench_prefilters(root, args.prefilters)


if __name__ == "__main__":
    main()
