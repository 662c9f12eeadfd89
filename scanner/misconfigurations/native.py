"""The `native` misconfiguration scanner: our own checks, riding the shared walk.

Most check modules are walker visitors over the files they need (sshd_config and its
includes, the account databases, crontabs) or over the modes of every file and directory
(world-writable and set-ID). The sudo policy and the sysctl configuration are read after
it, file by file as they name or mask each other, so that what the walk hands over is not
held in memory on the chance of use.
Check ids are stable: SSH-0xx, ACC-0xx, SUDO-0xx, CRON-0xx, KERN-0xx, FILE-0xx.
"""

from scanner.family import FamilyScanner, ScannerResult
from scanner.misconfigurations.accounts import AccountChecks
from scanner.misconfigurations.common import SCANNER_NAME
from scanner.misconfigurations.cron import CronChecks
from scanner.misconfigurations.permissions import PermissionChecks
from scanner.misconfigurations.sshd import SshdChecks
from scanner.misconfigurations.sudoers import SudoersChecks
from scanner.misconfigurations.sysctl import SysctlChecks

SEVERITY_ORDER = {"MisconfigurationHighSeverity": 0, "MisconfigurationMediumSeverity": 1,
                  "MisconfigurationLowSeverity": 2, "MisconfigurationInfoSeverity": 3}


class NativeScanner(FamilyScanner):
    """Misconfiguration scanner `native`; it has no settings."""

    name = SCANNER_NAME

    def __init__(self, root, settings=None):
        super().__init__(root, settings)
        self.checks = None

    def visitors(self):
        self.checks = [SshdChecks(self.root), AccountChecks(), CronChecks(), PermissionChecks()]
        return self.checks

    def finish(self):
        if self.checks is None:
            return ScannerResult(errors=["native: the walk never ran"])
        results, errors, notes = [], [], []
        for check in self.checks + [SudoersChecks(self.root), SysctlChecks(self.root)]:
            try:
                results.extend(check.results())
            except Exception as error:  # noqa: BLE001 - one broken check must not hide the others
                errors.append(f"{check.name}: {type(error).__name__}: {error}")
            notes.extend(getattr(check, "notes", []))  # the bounds a hostile target made it stop at
        results.sort(key=lambda item: (SEVERITY_ORDER[item["severity"]], item["id"], item["location"]))
        return ScannerResult(results=results, errors=errors, notes=notes)
