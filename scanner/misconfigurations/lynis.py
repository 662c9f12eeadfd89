"""The `lynis` misconfiguration scanner: `lynis audit system --rootdir ROOT`, target findings only.

Off by default (only when listed in `scanners_list`), and never to be run by the local
provider on the control-plane host: even with --rootdir, lynis inspects the machine it
runs on. Most of its tests read that machine's files, processes, kernel and packages
(sshd -T, sysctl, lsmod, systemctl, ps, lsof, dpkg/apt, the host's /etc/profile and
/etc/modprobe.d ...), a full audit runs `apt-get update` and similar, and it writes
/var/run/lynis.pid (and /var/log/lynis-report.dat unless told otherwise).

So we run only the tests below, each read in lynis 3.0.8's source to use nothing but
${ROOTDIR} files (`--tests`), with --no-log, --no-plugins and a private report file in a
temporary directory (also the working directory), and we keep only those tests' findings
from the report (the LYNIS self-check about its own age and anything else is dropped).
The root's path is replaced by '/' in messages. Warnings are High, suggestions Low.

Settings (`scanners_config.lynis`): binary_path (default "lynis"), timeout seconds (1800).
"""

import os
import shutil
import subprocess
import tempfile

from scanner.family import FamilyScanner, ScannerResult
from scanner.misconfigurations.common import HIGH, LOW

SCANNER_NAME = "lynis"
DEFAULT_TIMEOUT = 1800

# Test id -> (location in the target, category, description): the tests verified to read only the target.
TARGET_TESTS = {
    "AUTH-9204": ("/etc/passwd", "authentication", "Accounts other than root with user ID 0."),
    "AUTH-9208": ("/etc/passwd", "authentication", "Accounts that share a user ID."),
    "AUTH-9229": ("/etc/shadow", "authentication", "Password hashes made with weak methods."),
    "AUTH-9230": ("/etc/login.defs", "authentication", "Password hashing rounds in /etc/login.defs."),
    "AUTH-9286": ("/etc/login.defs", "authentication", "Password aging limits in /etc/login.defs."),
    "BANN-7126": ("/etc/issue", "banners", "A legal banner in /etc/issue."),
    "BANN-7130": ("/etc/issue.net", "banners", "A legal banner in /etc/issue.net."),
    "NETW-3200": ("/etc/modprobe.d", "networking", "Uncommon network protocols (dccp, sctp, rds, tipc) that are "
                  "not disabled."),
    "STRG-1846": ("/etc/modprobe.d", "storage", "Firewire storage drivers that are not disabled."),
}


class LynisScanner(FamilyScanner):
    name = SCANNER_NAME

    def __init__(self, root, settings=None):
        super().__init__(root, settings)
        self.report = None
        self.error = None

    def run(self):
        search = f"{os.environ.get('PATH', '')}:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"  # it lives in sbin
        binary = shutil.which(self.settings.get("binary_path") or "lynis", path=search)
        if binary is None:
            self.error = f"lynis: {self.settings.get('binary_path') or 'lynis'} not found"
            return
        with tempfile.TemporaryDirectory(prefix="vmclarity-lynis-") as workdir:
            report = os.path.join(workdir, "report.dat")
            command = [binary, "audit", "system", "--rootdir", self.root.rstrip("/") + "/", "--tests",
                       " ".join(TARGET_TESTS), "--report-file", report, "--no-log", "--no-plugins", "--quick",
                       "--no-colors"]
            try:
                done = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                                      timeout=int(self.settings.get("timeout", DEFAULT_TIMEOUT)),
                                      env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"})
            except subprocess.TimeoutExpired as error:
                self.error = f"lynis: timed out after {error.timeout}s"
                return
            if not os.path.exists(report):
                self.error = f"lynis: no report (exit {done.returncode}): {(done.stderr or done.stdout)[-500:]}"
                return
            with open(report, encoding="utf-8", errors="replace") as handle:
                self.report = handle.read()

    def finish(self):
        if self.error:
            return ScannerResult(errors=[self.error], scanned=False)
        if self.report is None:
            return ScannerResult(errors=["lynis: did not run"], scanned=False)
        return ScannerResult(results=parse_report(self.report, self.root))


def parse_report(text, root):
    """Misconfigurations from a lynis report.dat: the target tests' warning[] and suggestion[] lines."""
    prefix = root.rstrip("/") + "/"
    findings, seen = [], set()
    for line in text.splitlines():
        kind, _, value = line.partition("[]=")
        if kind not in ("warning", "suggestion"):
            continue
        test, message, details, solution = (value.split("|") + ["", "", "", ""])[:4]
        if test not in TARGET_TESTS:
            continue
        message = message.replace(prefix, "/")
        if details and details != "-":
            message += f" ({details.replace(prefix, '/')})"
        if (test, message) in seen:
            continue
        seen.add((test, message))
        findings.append(_finding(test, kind, message, solution))
    return findings


def _finding(test, kind, message, solution):
    location, category, description = TARGET_TESTS[test]
    solution = solution.removeprefix("text:")
    remediation = solution if solution and solution != "-" else f"See https://cisofy.com/lynis/controls/{test}/"
    return {"scannerName": SCANNER_NAME, "id": test, "location": location, "category": category,
            "message": message, "description": description, "remediation": remediation,
            "severity": HIGH if kind == "warning" else LOW}
