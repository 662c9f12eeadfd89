"""cron checks: jobs that run programs from directories every user can write to.

Crontabs are /etc/crontab, /etc/cron.d/*, /etc/anacrontab and the users' crontabs under
/var/spool/cron. A job whose command runs something from /tmp, /var/tmp or /dev/shm runs
whatever any local user (or a process they compromised) put there, as the job's user.
Writable cron files themselves are the permissions check's business (FILE-001).
"""

import re

from scanner.misconfigurations.common import MEDIUM, Check, at, text_lines
from scanner.walker import WholeFileVisitor

CATEGORY = "cron"
WRITABLE_DIR_JOB = Check("CRON-001", CATEGORY, MEDIUM, "A cron job runs a program from a world-writable directory, "
                         "so any local user can replace what it runs.", "Move the program to a root-owned "
                         "directory such as /usr/local/bin and point the job there.")

CRONTABS = ("/etc/crontab", "/etc/anacrontab")
CRONTAB_DIRS = ("/etc/cron.d/", "/var/spool/cron/")
WRITABLE_DIR = re.compile(r"(?:^|[\s;|&'\"=(`])((?:/tmp|/var/tmp|/dev/shm)/[^\s;|&'\"`)]*)")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*=")


def is_crontab(path):
    return path in CRONTABS or path.startswith(CRONTAB_DIRS)


class CronChecks(WholeFileVisitor):
    name = "misconfigurations:cron"
    max_file_size = 1024**2

    def __init__(self):
        self.findings = []

    def wants(self, entry):
        return is_crontab(entry.path)

    def handle(self, entry, data):
        for number, line in text_lines(data):
            if ASSIGNMENT.match(line):  # SHELL=, PATH=, MAILTO= ...
                continue
            found = WRITABLE_DIR.search(line)
            if found:
                self.findings.append(WRITABLE_DIR_JOB.finding(
                    at(entry.display_path, number), f"cron job in {entry.display_path} runs "
                                                    f"{found.group(1)[:200]}"))

    def results(self):
        return self.findings
