"""sudo checks: rules that let someone run any command as another user without a password.

The policy is read the way sudo reads it: /etc/sudoers, and at each `@include` /
`#include` line the file it names, at each `@includedir` / `#includedir` line the files
of that directory in name order (not those whose name ends in '~' or contains a '.'). A
relative path is relative to the including file's directory; `%h` is the target's short
host name (from its /etc/hostname). Every path resolves inside the scanned root, links
too (an absolute target restarts at the root, '..' stops there), so nothing outside it
is read; includes nest at most MAX_INCLUDE_DEPTH deep, a file never includes itself
again, and at most MAX_FILES files are read. The files of /etc/sudoers.d come from the
walk, others by a targeted read.

A rule is `WHO HOSTS = [(RUNAS)] [TAGS:] COMMAND, ...`; a tag such as NOPASSWD: holds for
the commands after it until another tag changes it, and a command of ALL means any
command. Aliases are expanded wherever in the policy they are defined (sudo resolves
them after reading it all): a Cmnd_Alias whose members include ALL (through other
aliases too) is any command, a User_Alias that includes ALL is every user.
"""

import posixpath
import re

from scanner.misconfigurations.common import HIGH, MEDIUM, Check, RootFiles, at, list_dir
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

SUDOERS = "/etc/sudoers"
WALKED_DIR = "/etc/sudoers.d"
MAX_INCLUDE_DEPTH = 16
MAX_FILES = 1000
MAX_ALIAS_DEPTH = 64

ALIAS_KINDS = {"User_Alias": "user", "Runas_Alias": "runas", "Host_Alias": "host", "Cmnd_Alias": "command",
               "Cmd_Alias": "command"}
ALIAS_LINE = re.compile(r"(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)\s+(.*)")
ALIAS_SEPARATOR = re.compile(r"(?<!\\):\s*(?=[A-Z][A-Z0-9_]*\s*=)")  # 'A = x : B = y'
ALIAS_DEFINITION = re.compile(r"([A-Z][A-Z0-9_]*)\s*=\s*(.*)")
INCLUDE = re.compile(r"[@#]include(dir)?\s+(.*)")
INCLUDE_PATH = re.compile(r'"((?:[^"\\]|\\.)*)"|((?:[^\s\\]|\\.)+)')
TAG = re.compile(r"([A-Z_]+)\s*:\s*")
TAGS = {"NOPASSWD", "PASSWD", "NOEXEC", "EXEC", "SETENV", "NOSETENV", "LOG_INPUT", "NOLOG_INPUT", "LOG_OUTPUT",
        "NOLOG_OUTPUT", "MAIL", "NOMAIL", "FOLLOW", "NOFOLLOW", "INTERCEPT", "NOINTERCEPT"}


def in_includedir(name):
    """Whether sudo's @includedir reads a file of this name."""
    return not name.endswith("~") and "." not in name


class SudoersChecks(WholeFileVisitor):
    name = "misconfigurations:sudoers"
    max_file_size = 4 * 1024**2

    def __init__(self, root):
        self.root = root
        self.files = RootFiles(root, self.max_file_size)
        self.aliases = {kind: {} for kind in ALIAS_KINDS.values()}  # kind -> NAME -> [members]
        self.read = 0

    def wants(self, entry):
        directory, name = posixpath.split(entry.path)
        return entry.path == SUDOERS or (directory == WALKED_DIR and in_includedir(name))

    def handle(self, entry, data):
        self.files.add(entry, data)

    def results(self):
        lines = list(self._policy(SUDOERS, (SUDOERS,)))
        for _, line in lines:
            if alias := ALIAS_LINE.match(line):
                self._define(ALIAS_KINDS[alias.group(1)], alias.group(2))
        findings = []
        for where, line in lines:
            if line.startswith("Defaults"):
                findings.extend(self._defaults(line, where))
            elif not ALIAS_LINE.match(line) and "=" in line:
                findings.extend(self._rule(line, where))
        return findings

    # Reading the policy

    def _policy(self, path, chain):
        """(location, line) of the file at `path`, with the lines of what it includes in their place."""
        found = self.files.read(path)
        self.read += 1
        if found is None:
            return
        display, data = found
        for number, line in logical_lines(data):
            include = INCLUDE.match(line)
            if include is None:
                yield at(display, number), line
                continue
            if len(chain) > MAX_INCLUDE_DEPTH:
                continue
            for included in self._included(path, bool(include.group(1)), include.group(2)):
                if included not in chain and self.read < MAX_FILES:
                    yield from self._policy(included, chain + (included,))

    def _included(self, path, directory, argument):
        """The in-root paths an include line of the file at `path` names."""
        target = include_path(argument, self._hostname)
        if target is None:
            return []
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if not directory:
            return [target]
        return [f"{target.rstrip('/')}/{name}" for name, _, _ in list_dir(self.root, target) if in_includedir(name)]

    def _hostname(self):
        found = self.files.read("/etc/hostname")
        words = found[1].decode("utf-8", "replace").split() if found else []
        return words[0].split(".")[0] if words else None

    # Aliases

    def _define(self, kind, text):
        for definition in ALIAS_SEPARATOR.split(text):
            if named := ALIAS_DEFINITION.match(definition.strip()):
                members = [member.strip() for member in re.split(r"(?<!\\),", named.group(2))]
                self.aliases[kind][named.group(1)] = [member for member in members if member]

    def _is_all(self, kind, item, seen=()):
        """Whether a list item is ALL, itself or through aliases of `kind` (a negated item never is)."""
        item = item.strip()
        if item == "ALL":
            return True
        members = self.aliases[kind].get(item)
        if members is None or item in seen or len(seen) >= MAX_ALIAS_DEPTH:
            return False
        return any(self._is_all(kind, member, seen + (item,)) for member in members)

    # Judging

    def _defaults(self, line, where):
        scope, options = (line.split(None, 1) + [""])[:2]
        if "!authenticate" in options.replace(" ", "").split(","):
            covered = f" for {scope.removeprefix('Defaults')[1:]}" if scope != "Defaults" else ""
            yield NO_AUTHENTICATE.finding(where, f"Defaults !authenticate{covered}")

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
            item = item.strip()
            if nopasswd and self._is_all("command", item):
                yield self._any_command(who, runas, "" if item == "ALL" else f" (Cmnd_Alias {item})", where)
                return

    def _any_command(self, who, runas, through, where):
        users = who.split(",")
        if "ALL" in users:
            return EVERYONE.finding(where, f"ALL users may run any command{through} as {runas} without a password")
        if any(self._is_all("user", user) for user in users):
            return EVERYONE.finding(where, f"ALL users ({who}) may run any command{through} as {runas} without "
                                           "a password")
        return NOPASSWD_ALL.finding(where, f"{who} may run any command{through} as {runas} without a password")


def include_path(argument, hostname):
    """The path of an include line's argument: quoted or with backslash escapes, `%h` the host name.

    None when it names the host but the host name is not known.
    """
    found = INCLUDE_PATH.match(argument.strip())
    if found is None:
        return None
    path = re.sub(r"\\(.)", r"\1", found.group(1) if found.group(1) is not None else found.group(2))
    if "%h" in path:
        name = hostname()
        if name is None:
            return None
        path = path.replace("%h", name)
    return path


def logical_lines(data):
    """(first line number, text) with backslash continuations joined and comments dropped; include lines kept."""
    pending, start = "", 0
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not pending:
            start = number
        text = raw.rstrip()
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        text, pending = (pending + text).strip(), ""
        line = text if INCLUDE.match(text) else strip_comment(text).strip()
        if line:
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
