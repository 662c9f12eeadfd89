"""sshd checks: the daemon's configuration read the way sshd reads it.

sshd takes the FIRST value it meets for a keyword, reads `Include`d files (globs sorted,
relative paths under /etc/ssh) at the point of the Include, matches keywords without
regard to case, and applies a `Match` block's settings over the global ones for the
connections it matches. So: the global value of a keyword is its first occurrence outside
any Match block; each Match block's own first value is judged too, and named in the message.
A Match block ends at the next Match line or at the end of the file it is in (OpenSSH 8.2+).

Only a tree that has /etc/ssh/sshd_config is judged (no sshd, no findings).
"""

import fnmatch
import posixpath
import re
import shlex
from dataclasses import dataclass

from scanner.misconfigurations.common import HIGH, LOW, MEDIUM, Check, RootFiles, at, text_lines
from scanner.walker import WholeFileVisitor

CONFIG = "/etc/ssh/sshd_config"
MAX_INCLUDE_DEPTH = 16  # sshd's own limit
KEYWORD = re.compile(r"([^\s=]+)\s*=?\s*(.*)")

CATEGORY = "sshd"
ROOT_LOGIN = Check("SSH-001", CATEGORY, HIGH, "sshd lets root log in with a password or any other method.",
                   "Set `PermitRootLogin no` (or `prohibit-password`) in /etc/ssh/sshd_config.")
PASSWORDS = Check("SSH-002", CATEGORY, MEDIUM, "sshd accepts password logins, which can be guessed or brute-forced.",
                  "Set `PasswordAuthentication no` and use keys.")
EMPTY_PASSWORDS = Check("SSH-003", CATEGORY, HIGH, "sshd lets accounts with an empty password log in.",
                        "Set `PermitEmptyPasswords no`.")
PROTOCOL_1 = Check("SSH-004", CATEGORY, HIGH, "SSH protocol 1 is broken and must not be offered.",
                   "Remove the Protocol line or set `Protocol 2`.")
CIPHERS = Check("SSH-005", CATEGORY, MEDIUM, "sshd offers ciphers with known weaknesses (CBC modes, RC4, 3DES...).",
                "List only strong ciphers, e.g. `Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,"
                "aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr`.")
MACS = Check("SSH-006", CATEGORY, MEDIUM, "sshd offers weak message authentication codes (MD5, RIPEMD-160, 96- or "
             "64-bit tags).", "List only strong MACs, e.g. `MACs hmac-sha2-512-etm@openssh.com,"
             "hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com`.")
KEX = Check("SSH-007", CATEGORY, MEDIUM, "sshd offers weak key exchange (SHA-1 based or 1024-bit Diffie-Hellman).",
            "List only strong key exchange, e.g. `KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,"
            "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512`.")
X11 = Check("SSH-008", CATEGORY, LOW, "X11 forwarding exposes the client's display to the server side.",
            "Set `X11Forwarding no` unless users need it.")
USER_ENVIRONMENT = Check("SSH-009", CATEGORY, MEDIUM, "Users can set environment variables (e.g. LD_PRELOAD) for "
                         "sshd-started processes, bypassing restrictions.", "Set `PermitUserEnvironment no`.")
HOSTBASED = Check("SSH-010", CATEGORY, MEDIUM, "Host-based authentication trusts other machines' word for who a "
                  "user is.", "Set `HostbasedAuthentication no`.")
RHOSTS = Check("SSH-011", CATEGORY, MEDIUM, "sshd honours .rhosts and .shosts files.", "Set `IgnoreRhosts yes`.")

WEAK_CIPHERS = {"3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc", "blowfish-cbc", "cast128-cbc", "arcfour",
                "arcfour128", "arcfour256", "rijndael-cbc@lysator.liu.se", "des-cbc", "none"}
WEAK_MACS = {"hmac-md5", "hmac-md5-96", "hmac-md5-etm@openssh.com", "hmac-md5-96-etm@openssh.com",
             "hmac-ripemd160", "hmac-ripemd160@openssh.com", "hmac-ripemd160-etm@openssh.com", "hmac-sha1-96",
             "hmac-sha1-96-etm@openssh.com", "umac-64@openssh.com", "umac-64-etm@openssh.com", "none"}
WEAK_KEX = {"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"}
GSS_SHA1_PREFIXES = ("gss-group1-sha1-", "gss-group14-sha1-", "gss-gex-sha1-")  # GSSAPIKexAlgorithms-style names

# keyword (lower case) -> (check, the values that are bad, lower case)
YES_NO_CHECKS = {
    "permitrootlogin": (ROOT_LOGIN, {"yes"}),
    "passwordauthentication": (PASSWORDS, {"yes"}),
    "permitemptypasswords": (EMPTY_PASSWORDS, {"yes"}),
    "x11forwarding": (X11, {"yes"}),
    "permituserenvironment": (USER_ENVIRONMENT, {"yes"}),
    "hostbasedauthentication": (HOSTBASED, {"yes"}),
    "ignorerhosts": (RHOSTS, {"no"}),
}
ALGORITHM_CHECKS = {"ciphers": (CIPHERS, WEAK_CIPHERS), "macs": (MACS, WEAK_MACS),
                    "kexalgorithms": (KEX, WEAK_KEX)}


@dataclass(frozen=True)
class Setting:
    keyword: str  # lower case
    name: str  # as written
    args: tuple
    path: str  # display path
    line: int
    match: str | None  # the Match criteria it sits under, None for global


class SshdChecks(WholeFileVisitor):
    name = "misconfigurations:sshd"
    max_file_size = 1024**2

    def __init__(self, root):
        self.files = RootFiles(root, self.max_file_size)  # everything under /etc/ssh, and what Include names

    def wants(self, entry):
        return entry.path.startswith("/etc/ssh/")

    def handle(self, entry, data):
        self.files.add(entry, data)

    def results(self):
        if self.files.read(CONFIG) is None:
            return []
        settings = []
        self._parse(CONFIG, None, 0, settings)
        return judge(settings)

    def _parse(self, path, match, depth, settings):
        display, data = self.files.read(path)
        for number, line in text_lines(data):
            words = split_line(line)
            if not words:
                continue
            keyword = words[0].lower()
            if keyword == "match":
                criteria = " ".join(words[1:])
                match = None if criteria.lower() == "all" else criteria
            elif keyword == "include" and depth < MAX_INCLUDE_DEPTH:
                for included in self._expand(words[1:]):
                    self._parse(included, match, depth + 1, settings)  # its own Match blocks end with it
            else:
                settings.append(Setting(keyword, words[0], tuple(words[1:]), display, number, match))

    def _expand(self, patterns):
        """Files an Include names: relative to /etc/ssh, globs matched against the files the walk saw."""
        for pattern in patterns:
            pattern = posixpath.normpath(posixpath.join("/etc/ssh", pattern))
            if any(char in pattern for char in "*?["):
                depth = pattern.count("/")
                yield from sorted(path for path in self.files.known()
                                  if path.count("/") == depth and fnmatch.fnmatchcase(path, pattern))
            elif self.files.read(pattern) is not None:
                yield pattern


def split_line(line):
    """A config line's words, as sshd splits them: 'Keyword value' or 'Keyword=value', quotes honoured."""
    keyword, rest = KEYWORD.match(line).groups()
    try:
        return [keyword] + shlex.split(rest, comments=True)
    except ValueError:  # an unbalanced quote: sshd refuses the line too
        return []


def judge(settings):
    """The findings of the effective settings: first value per keyword, globally and per Match block."""
    first = {}
    for setting in settings:
        first.setdefault((setting.match, setting.keyword), setting)
    findings = []
    for setting in first.values():
        findings.extend(_judge_setting(setting))
    if (None, "passwordauthentication") not in first:
        findings.append(PASSWORDS.finding(CONFIG, "PasswordAuthentication is not set (sshd defaults to yes)", LOW))
    return findings


def _judge_setting(setting):
    value = " ".join(setting.args)
    where = at(setting.path, setting.line)
    suffix = f" (in Match {setting.match})" if setting.match else ""
    if setting.keyword in YES_NO_CHECKS:
        check, bad = YES_NO_CHECKS[setting.keyword]
        if value.lower() in bad:
            return [check.finding(where, f"{setting.name} is {value}{suffix}")]
    elif setting.keyword == "protocol" and "1" in value.replace(" ", "").split(","):
        return [PROTOCOL_1.finding(where, f"Protocol is {value}{suffix}")]
    elif setting.keyword in ALGORITHM_CHECKS and not value.startswith("-"):  # '-list' only removes algorithms
        check, weak = ALGORITHM_CHECKS[setting.keyword]
        offered = [name for name in value.lstrip("+^").split(",") if name]
        found = [name for name in offered if name in weak or name.startswith(GSS_SHA1_PREFIXES)]
        if found:
            return [check.finding(where, f"{setting.name} allows {', '.join(found)}{suffix}")]
    return []
