"""sudo checks: rules that let someone run any command as another user without a password.

Reads /etc/sudoers and the files of /etc/sudoers.d that sudo's @includedir reads (not
those whose name ends in '~' or contains a '.'). A rule is `WHO HOSTS = [(RUNAS)] [TAGS:]
COMMAND, ...`; a tag such as NOPASSWD: holds for the commands after it until another
tag changes it, and a command of ALL means any command. Aliases are not expanded.
"""

import posixpath
import re

from scanner.misconfigurations.common import HIGH, MEDIUM, Check, at
from scanner.walker import WholeFileVisitor

CATEGORY = "sudo"
EVERYONE = Check("SUDO-001", CATEGORY, HIGH, "Every user may run any command as root without a password, so any "
                 "account (or process) that is compromised is root.", "Remove the rule, or drop NOPASSWD and "
                 "limit it to an admin group.")
NOPASSWD_ALL = Check("SUDO-002", CATEGORY, MEDIUM, "A user or group may run any command without typing a "
                     "password, so whoever gets their session gets root.", "Drop NOPASSWD, or limit the rule to "
                     "the few commands that need it.")
NO_AUTHENTICATE = Check("SUDO-003", CATEGORY, HIGH, "`Defaults !authenticate` turns off passwords for every "
                        "sudo rule it covers.", "Remove `!authenticate` from the Defaults line.")

ALIASES = ("User_Alias", "Runas_Alias", "Host_Alias", "Cmnd_Alias", "Cmd_Alias")
TAG = re.compile(r"([A-Z_]+)\s*:\s*")
TAGS = {"NOPASSWD", "PASSWD", "NOEXEC", "EXEC", "SETENV", "NOSETENV", "LOG_INPUT", "NOLOG_INPUT", "LOG_OUTPUT",
        "NOLOG_OUTPUT", "MAIL", "NOMAIL", "FOLLOW", "NOFOLLOW", "INTERCEPT", "NOINTERCEPT"}


def is_sudoers(path):
    if path == "/etc/sudoers":
        return True
    directory, name = posixpath.split(path)
    return directory == "/etc/sudoers.d" and not name.endswith("~") and "." not in name


class SudoersChecks(WholeFileVisitor):
    name = "misconfigurations:sudoers"
    max_file_size = 4 * 1024**2

    def __init__(self):
        self.findings = []

    def wants(self, entry):
        return is_sudoers(entry.path)

    def handle(self, entry, data):
        for number, line in logical_lines(data):
            where = at(entry.display_path, number)
            if line.startswith("Defaults"):
                self._defaults(line, where)
            elif not line.startswith(ALIASES) and "=" in line:
                self._rule(line, where)

    def _defaults(self, line, where):
        scope, options = (line.split(None, 1) + [""])[:2]
        if "!authenticate" in options.replace(" ", "").split(","):
            covered = f" for {scope.removeprefix('Defaults')[1:]}" if scope != "Defaults" else ""
            self.findings.append(NO_AUTHENTICATE.finding(where, f"Defaults !authenticate{covered}"))

    def _rule(self, line, where):
        left, _, commands = line.partition("=")
        words = re.sub(r"\s*,\s*", ",", left.strip()).split()
        if len(words) < 2:
            return
        who = words[0]
        runas = "root"
        nopasswd = False
        for item in split_commands(commands):
            if item.startswith("("):
                runas, _, item = item[1:].partition(")")
                runas = runas.strip() or "root"
                item = item.strip()
            while (tag := TAG.match(item)) and tag.group(1) in TAGS:
                nopasswd = {"NOPASSWD": True, "PASSWD": False}.get(tag.group(1), nopasswd)
                item = item[tag.end():]
            if item.strip() == "ALL" and nopasswd:
                self._any_command(who, runas, where)
                return

    def _any_command(self, who, runas, where):
        if "ALL" in who.split(","):
            self.findings.append(EVERYONE.finding(where, f"ALL users may run any command as {runas} without "
                                                         "a password"))
        else:
            self.findings.append(NOPASSWD_ALL.finding(where, f"{who} may run any command as {runas} without "
                                                             "a password"))

    def results(self):
        return self.findings


def logical_lines(data):
    """(first line number, text) with backslash continuations joined and comments dropped."""
    pending, start = "", 0
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not pending:
            start = number
        text = raw.rstrip()
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        line = strip_comment(pending + text).strip()
        pending = ""
        if line and not line.startswith(("@include", "#include")):
            yield start, line


def strip_comment(line):
    """The line up to a '#' comment; '#123' is a numeric user ID, not a comment."""
    for match in re.finditer(r"#", line):
        if not line[match.end():match.end() + 1].isdigit():
            return line[:match.start()]
    return line


def split_commands(text):
    """Comma-separated command items, ignoring commas inside a (runas) list."""
    items, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return items
