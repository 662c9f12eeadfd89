"""Kernel parameter checks: the values the sysctl configuration sets at boot.

Read like `sysctl --system` and systemd-sysctl: *.conf files of /etc/sysctl.d, /run/sysctl.d,
/usr/local/lib/sysctl.d, /usr/lib/sysctl.d and /lib/sysctl.d, a name in an earlier directory
hiding the same name in a later one, applied in name order, then /etc/sysctl.conf; the last
assignment of a key wins. As in systemd (conf-files.c), a name whose links end at /dev/null
(which may be missing in a snapshot) or at a character device, or that is one, masks that
name in the later directories and sets nothing; any other link is read through, resolved
inside the scanned root, and a name that is not a regular file then (a block device, a
FIFO, a link that leads out of the root or nowhere) is ignored, so it hides nothing. Only
keys the files set are judged: a kernel default is not a configuration (and differs
between kernels). The files are read on demand, one at a time, not kept from the walk.
"""

import os
import posixpath
import stat
from dataclasses import dataclass

from scanner.misconfigurations.common import HIGH, LOW, MEDIUM, Check, at, list_dir, read_config, text_lines
from scanner.safe_fs import MAX_LINK_HOPS, open_dir_in_root, open_in_root

CONF_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
MAIN_CONF = "/etc/sysctl.conf"
MAX_FILE_SIZE = 1024**2
DEV_NULL = "/dev/null"
CATEGORY = "kernel"


def _conf(name, family="ipv4"):
    return [f"net.{family}.conf.all.{name}", f"net.{family}.conf.default.{name}"]


def _is(*bad):
    return lambda value: value in bad


def _is_not(*good):
    return lambda value: value not in good


@dataclass(frozen=True)
class Rule:
    check: Check
    keys: tuple
    bad: object  # value -> bool


RULES = [
    Rule(Check("KERN-001", CATEGORY, MEDIUM, "The machine forwards packets between networks like a router, which "
               "can bypass network segmentation.", "Set net.ipv4.ip_forward = 0 (and "
               "net.ipv6.conf.all.forwarding = 0) unless this is a router or container host."),
         ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"), _is("1")),
    Rule(Check("KERN-002", CATEGORY, HIGH, "Address space layout randomisation is weakened or off, which makes "
               "memory corruption exploits reliable.", "Set kernel.randomize_va_space = 2."),
         ("kernel.randomize_va_space",), _is_not("2")),
    Rule(Check("KERN-003", CATEGORY, MEDIUM, "ICMP redirects are accepted, so another host on the network can "
               "reroute this machine's traffic.", "Set the accept_redirects keys to 0."),
         tuple(_conf("accept_redirects") + _conf("accept_redirects", "ipv6") + _conf("secure_redirects")), _is("1")),
    Rule(Check("KERN-004", CATEGORY, MEDIUM, "Set-user-ID programs may dump core, leaking privileged memory "
               "(passwords, keys) to files.", "Set fs.suid_dumpable = 0."), ("fs.suid_dumpable",), _is_not("0")),
    Rule(Check("KERN-005", CATEGORY, LOW, "Kernel addresses are shown to unprivileged users, which helps kernel "
               "exploits.", "Set kernel.kptr_restrict = 1 (or 2)."), ("kernel.kptr_restrict",), _is("0")),
    Rule(Check("KERN-006", CATEGORY, LOW, "Unprivileged users can read the kernel log.",
               "Set kernel.dmesg_restrict = 1."), ("kernel.dmesg_restrict",), _is("0")),
    Rule(Check("KERN-007", CATEGORY, LOW, "The machine sends ICMP redirects, which only a router should do.",
               "Set the send_redirects keys to 0."), tuple(_conf("send_redirects")), _is("1")),
    Rule(Check("KERN-008", CATEGORY, MEDIUM, "Source-routed packets are accepted, letting a sender choose the "
               "path back around firewalls.", "Set the accept_source_route keys to 0."),
         tuple(_conf("accept_source_route") + _conf("accept_source_route", "ipv6")), _is("1")),
    Rule(Check("KERN-009", CATEGORY, MEDIUM, "TCP SYN cookies are off, so a SYN flood can exhaust connections.",
               "Set net.ipv4.tcp_syncookies = 1."), ("net.ipv4.tcp_syncookies",), _is("0")),
    Rule(Check("KERN-010", CATEGORY, LOW, "Any process may trace (and read the memory of) other processes of the "
               "same user.", "Set kernel.yama.ptrace_scope = 1 or more."), ("kernel.yama.ptrace_scope",), _is("0")),
    Rule(Check("KERN-011", CATEGORY, MEDIUM, "Link protections are off, re-enabling /tmp symlink and hardlink "
               "attacks.", "Set fs.protected_symlinks = 1 and fs.protected_hardlinks = 1."),
         ("fs.protected_symlinks", "fs.protected_hardlinks"), _is("0")),
    Rule(Check("KERN-012", CATEGORY, MEDIUM, "Unprivileged users may load BPF programs, a frequent kernel exploit "
               "vector.", "Set kernel.unprivileged_bpf_disabled = 1."), ("kernel.unprivileged_bpf_disabled",),
         _is("0")),
    Rule(Check("KERN-013", CATEGORY, LOW, "Reverse path filtering is off, so spoofed source addresses are "
               "accepted.", "Set the rp_filter keys to 1."), tuple(_conf("rp_filter")), _is("0")),
]
RULE_OF_KEY = {key: rule for rule in RULES for key in rule.keys}


class SysctlChecks:
    """The sysctl configuration of the target; not a walk visitor: it reads just the files sysctl applies."""

    name = "misconfigurations:sysctl"

    def __init__(self, root):
        self.root = root
        self.notes = []

    def results(self):
        effective = {}  # judged key -> (value, location)
        for path in self._order():
            display, data = read_config(self.root, path, MAX_FILE_SIZE) or (path, b"")
            for number, line in text_lines(data):
                key, sep, value = line.partition("=")
                key = normal_key(key)
                if sep and not line.startswith(";") and key in RULE_OF_KEY:  # a hostile file may set millions
                    effective[key] = (" ".join(value.split()), at(display, number))
        findings = []
        for key, (value, where) in effective.items():
            if RULE_OF_KEY[key].bad(value):
                findings.append(RULE_OF_KEY[key].check.finding(where, f"{key} = {value}"))
        return findings

    def _order(self):
        """The files in the order sysctl applies them: by name across directories, /etc/sysctl.conf last."""
        chosen = {}  # name -> in-root path, or None when masked
        for directory in CONF_DIRS:
            for name in list_dir(self.root, directory, self.notes):
                if name.endswith(".conf") and name not in chosen:  # an earlier directory wins the name
                    kind = self._kind(f"{directory}/{name}")
                    if kind is not None:
                        chosen[name] = f"{directory}/{name}" if kind == "file" else None
        ordered = [chosen[name] for name in sorted(chosen) if chosen[name] is not None]
        return ordered + [MAIN_CONF]

    def _kind(self, path):
        """'mask', 'file', or None for a name systemd ignores.

        As systemd's stat_may_be_dev_null(), any character device masks (it does not check
        for 1:3 either); a block device does not, and safe_fs.kind_of() cannot tell them apart.
        """
        resolved, info = self._chase(path)
        if resolved == DEV_NULL or (info is not None and stat.S_ISCHR(info.st_mode)):
            return "mask"
        if resolved is None:  # through a directory that is a link (a merged /usr): the read's resolution decides
            try:
                os.close(open_in_root(self.root, path))
            except OSError:
                return None
            return "file"
        return "file" if info is not None and stat.S_ISREG(info.st_mode) else None

    def _chase(self, path):
        """(in-root path, lstat) where the links from `path` end; lstat None when nothing is there.

        (None, None) when they pass through a directory that is a link, or do not end.
        Nothing is opened but directories, so a device or FIFO never is.
        """
        for _ in range(MAX_LINK_HOPS + 1):
            directory, name = posixpath.split(path)
            try:
                fd = open_dir_in_root(self.root, directory)
            except FileNotFoundError:
                return path, None
            except OSError:
                return None, None
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISLNK(info.st_mode):
                    return path, info
                path = "/" + posixpath.normpath(posixpath.join(directory, os.readlink(name, dir_fd=fd))).lstrip("/")
            except FileNotFoundError:
                return path, None
            except OSError:
                return None, None
            finally:
                os.close(fd)
        return None, None


def normal_key(key):
    """'-net/ipv4/ip_forward ' -> 'net.ipv4.ip_forward' (a leading '-' only means 'ignore errors')."""
    key = key.strip().lstrip("-").strip()
    return key.replace("/", ".") if "/" in key else key
