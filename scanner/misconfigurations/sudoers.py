"""sudo checks: rules that let someone run any command as another user without a password.

The policy is read the way sudo reads it: /etc/sudoers, and at each `@include` /
`#include` line the file it names, at each `@includedir` / `#includedir` line the files
of that directory in name order (not those whose name ends in '~' or contains a '.'). A
relative path is relative to the including file's directory; `%h` is the target's short
host name (from its /etc/hostname). Every path resolves inside the scanned root, links
too (an absolute target restarts at the root, '..' stops there), so nothing outside it
is read. Files are read on demand, not from the walk, and one at a time as the lines
are used; a path is read (a directory listed) once per policy, since a second reading
finds nothing new. Includes nest at most MAX_INCLUDE_DEPTH deep, at most MAX_FILES
files and directories and MAX_POLICY_BYTES are read, at most MAX_KEPT rule lines and
alias members are kept; a note says when a bound cut the policy short.

A rule is `WHO HOSTS = [(RUNAS)] [TAGS:] COMMAND, ...`; a tag such as NOPASSWD: holds for
the commands after it until another tag changes it, and a command of ALL means any
command. Aliases are expanded wherever in the policy they are defined (sudo resolves
them after reading it all): a Cmnd_Alias whose members include ALL (through other
aliases too) is any command, a User_Alias that includes ALL is every user.
"""

import io
import posixpath
import re

from scanner.misconfigurations.common import HIGH, MEDIUM, Check, at, list_dir, read_config

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
MAX_FILE_SIZE = 4 * 1024**2
MAX_INCLUDE_DEPTH = 16
MAX_FILES = 1000  # files read and directories listed
MAX_POLICY_BYTES = 16 * 1024**2
MAX_KEPT = 100_000  # rule lines and alias members held until the policy is judged

ALIAS_KINDS = {"User_Alias": "user", "Runas_Alias": "runas", "Host_Alias": "host", "Cmnd_Alias": "command",
               "Cmd_Alias": "command"}
ALIAS_LINE = re.compile(r"(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)\s+(.*)")
ALIAS_SEPARATOR = re.compile(r"(?<!\\):\s*(?=[A-Z][A-Z0-9_]*\s*=)")  # 'A = x : B = y'
ALIAS_DEFINITION = re.compile(r"([A-Z][A-Z0-9_]*)\s*=\s*(.*)")
MEMBER = re.compile(r"(?:\\.?|[^\\,])+")  # an item of a comma-separated list; '\,' does not separate
INCLUDE = re.compile(r"[@#]include(dir)?\s+(.*)")
INCLUDE_PATH = re.compile(r'"((?:[^"\\]|\\.)*)"|((?:[^\s\\]|\\.)+)')
TAG = re.compile(r"([A-Z_]+)\s*:\s*")
TAGS = {"NOPASSWD", "PASSWD", "NOEXEC", "EXEC", "SETENV", "NOSETENV", "LOG_INPUT", "NOLOG_INPUT", "LOG_OUTPUT",
        "NOLOG_OUTPUT", "MAIL", "NOMAIL", "FOLLOW", "NOFOLLOW", "INTERCEPT", "NOINTERCEPT"}


def in_includedir(name):
    """Whether sudo's @includedir reads a file of this name."""
    return not name.endswith("~") and "." not in name


class SudoersChecks:
    """The sudo policy of the target; not a walk visitor: it reads just the files the policy names."""

    name = "misconfigurations:sudoers"

    def __init__(self, root):
        self.root = root
        self.aliases = {kind: {} for kind in ALIAS_KINDS.values()}  # kind -> NAME -> [members]
        self.expands_to_all = {}  # kind -> names of the aliases that include ALL
        self.claimed = set()  # in-root paths read, and directories listed (with a trailing '/')
        self.size = self.kept = 0
        self.hostname = None
        self.notes = []

    def results(self):
        rules = []
        for where, line in self._policy(SUDOERS, 0):
            if self.kept >= MAX_KEPT:
                break
            if alias := ALIAS_LINE.match(line):
                self._define(ALIAS_KINDS[alias.group(1)], alias.group(2))
            elif line.startswith("Defaults") or "=" in line:
                rules.append((where, line))
                self.kept += 1
        if self.kept >= MAX_KEPT:
            self._note(f"more than {MAX_KEPT} rule lines and alias members; the rest was not judged")
        findings = []
        for where, line in rules:
            judge = self._defaults if line.startswith("Defaults") else self._rule
            findings.extend(judge(line, where))
        return findings

    def _note(self, text):
        note = f"native: sudoers: {text}"
        if note not in self.notes:
            self.notes.append(note)

    # Reading the policy

    def _policy(self, path, depth):
        """(location, line) of the file at `path`, with the lines of what it includes in their place."""
        found = self._read(path)
        if found is None:
            return
        where, data = found
        for number, line in logical_lines(data):
            include = INCLUDE.match(line)
            if include is None:
                yield at(where, number), line
            elif depth >= MAX_INCLUDE_DEPTH:
                self._note(f"includes nested more than {MAX_INCLUDE_DEPTH} deep were not read")
            else:
                for included in self._included(path, bool(include.group(1)), include.group(2)):
                    yield from self._policy(included, depth + 1)

    def _read(self, path):
        """(display path, bytes) of a policy file not read before, within the bounds; else None."""
        if self.size >= MAX_POLICY_BYTES:
            self._note(f"the policy is larger than {MAX_POLICY_BYTES} bytes; the rest was not read")
            return None
        if not self._claim(path):
            return None
        found = read_config(self.root, path, MAX_FILE_SIZE)
        self.size += len(found[1]) if found else 0
        return found

    def _claim(self, key):
        """Whether `key` (a file's path, or a directory's with '/') is new and within MAX_FILES; claims it."""
        if key in self.claimed:
            return False
        if len(self.claimed) >= MAX_FILES:
            self._note(f"more than {MAX_FILES} files and directories included; the rest were not read")
            return False
        self.claimed.add(key)
        return True

    def _included(self, path, directory, argument):
        """The in-root paths an include line of the file at `path` names."""
        target = include_path(argument, self._hostname)
        if target is None:
            return []
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if not directory:
            return [target]
        if not self._claim(target.rstrip("/") + "/"):
            return []
        return [f"{target.rstrip('/')}/{name}" for name in list_dir(self.root, target, self.notes)
                if in_includedir(name)]

    def _hostname(self):
        if self.hostname is None:
            found = read_config(self.root, "/etc/hostname", 4096)
            words = found[1].decode("utf-8", "replace").split() if found else []
            self.hostname = words[0].split(".")[0] if words else ""
        return self.hostname or None

    # Aliases

    def _define(self, kind, text):
        # Lazily, and counted: one hostile line may define or list millions.
        for definition in split_lazily(ALIAS_SEPARATOR, text):
            if (named := ALIAS_DEFINITION.match(definition.strip())) is None:
                continue
            members = self.aliases[kind][named.group(1)] = []
            self.kept += 1
            for member in MEMBER.finditer(named.group(2)):
                if self.kept >= MAX_KEPT:
                    return
                if member := member.group().strip():
                    members.append(member)
                    self.kept += 1

    def _is_all(self, kind, item):
        """Whether a list item is ALL, itself or through aliases of `kind` (a negated item never is)."""
        item = item.strip()
        return item == "ALL" or item in self._aliases_of_all(kind)

    def _aliases_of_all(self, kind):
        """The aliases of `kind` that include ALL, directly or through others: found once, from ALL upwards.

        Walking down from each alias instead costs as many paths as there are, and aliases
        that list the next one twice double them at every level.
        """
        if kind not in self.expands_to_all:
            listed_in = {}  # NAME -> the aliases that list it
            for name, members in self.aliases[kind].items():
                for member in members:
                    listed_in.setdefault(member, []).append(name)
            found, todo = set(), list(listed_in.get("ALL", []))
            while todo:
                name = todo.pop()
                if name not in found:
                    found.add(name)
                    todo.extend(listed_in.get(name, []))
            self.expands_to_all[kind] = found
        return self.expands_to_all[kind]

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


def split_lazily(separator, text):
    """The parts of `text` between matches of the `separator` pattern, one at a time."""
    start = 0
    for found in separator.finditer(text):
        yield text[start:found.start()]
        start = found.end()
    yield text[start:]


def logical_lines(data):
    """(first line number, text) with backslash continuations joined and comments dropped; include lines kept."""
    pending, start = "", 0
    for number, raw in enumerate(io.BytesIO(data), 1):  # one line at a time: sudo ends lines at '\n' only
        if not pending:
            start = number
        text = raw.decode("utf-8", "replace").rstrip()
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
