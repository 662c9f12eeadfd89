"""The `native` misconfiguration scanner: our own checks, riding the shared walk.

Each check module is a walker visitor over the files it needs (sshd_config and its
includes, the account databases, sudoers, crontabs, sysctl configuration) or over the
modes every file has (world-writable and set-ID files). Beside the walk runs only the
listing of system directories for their modes (the walk shows visitors files only).
Check ids are stable: SSH-0xx, ACC-0xx, SUDO-0xx, CRON-0xx, KERN-0xx, FILE-0xx.
"""

from scanner.family import FamilyScanner, ScannerResult
from scanner.misconfigurations.accounts import AccountChecks
from scanner.misconfigurations.common import SCANNER_NAME
from scanner.misconfigurations.cron import CronChecks
from scanner.misconfigurations.permissions import PermissionChecks, writable_directories
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
        self.directories = []

    def visitors(self):
        self.checks = [SshdChecks(self.root), AccountChecks(), SudoersChecks(self.root), CronChecks(),
                       SysctlChecks(self.root), PermissionChecks()]
        return self.checks

    def run(self):
        self.directories = writable_directories(self.root)

    def finish(self):
        if self.checks is None:
            return ScannerResult(errors=["native: the walk never ran"])
        results, errors = list(self.directories), []
        for check in self.checks:
            try:
                results.extend(check.results())
            except Exception as error:  # noqa: BLE001 - one broken check must not hide the others
                errors.append(f"{check.name}: {type(error).__name__}: {error}")
        results.sort(key=lambda item: (SEVERITY_ORDER[item["severity"]], item["id"], item["location"]))
        return ScannerResult(results=results, errors=errors)
