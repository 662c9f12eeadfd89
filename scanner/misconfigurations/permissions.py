"""File and directory mode checks, from lstat alone (no file is read).

- world-writable regular files in system paths (/etc, /usr, /bin, /sbin, /lib*, /boot,
  /opt) and cron paths (/var/spool/cron): anyone can change what the system runs or trusts;
- world-writable directories there, at '/' and on the way to them (/var, /var/spool):
  anyone can add, rename or delete what is in them (a cron job in /etc/cron.d, a program
  on root's PATH in /usr/local/bin). Without the sticky bit High; with it Medium, since
  others' files are then safe but anyone can still add new ones. (/tmp and /var/tmp are
  not system paths: their sticky 1777 is how they are meant to be.)
- set-user-ID / set-group-ID files anywhere that are not a known system program (by name)
  in a system program directory.

Files come from the walk's lstat. The walk hands visitors regular files only, so the
directories are listed by `system_directories()` (in `NativeScanner.run()`, beside the
walk): directory fds opened without following links, no file opened, bounded.
"""

import os
import stat
from itertools import islice

from scanner.misconfigurations.common import HIGH, LOW, MEDIUM, Check, mode_text
from scanner.safe_fs import open_dir_at, open_dir_in_root
from scanner.walker import Visitor, display

CATEGORY = "file-permissions"
WORLD_WRITABLE = Check("FILE-001", CATEGORY, HIGH, "A system or cron file can be changed by every user, who can "
                       "then run code as whoever uses it (often root).", "`chmod o-w FILE` and check the file "
                       "was not tampered with.")
WRITABLE_DIRECTORY = Check("FILE-003", CATEGORY, HIGH, "A system or cron directory can be written to by every "
                           "user, who can then add, replace or delete the programs, jobs and settings in it "
                           "(the sticky bit only keeps them from others' files).", "`chmod o-w DIR` and check "
                           "that nothing in it was added or replaced.")
SETID = Check("FILE-002", CATEGORY, MEDIUM, "A set-user-ID or set-group-ID program that is not one of the usual "
              "system ones runs with its owner's privileges for every user: a classic backdoor or privilege "
              "escalation.", "Remove the bit (`chmod u-s,g-s FILE`) unless the program is known to need it.")

SYSTEM_PATHS = ("/etc/", "/usr/", "/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/", "/boot/", "/opt/",
                "/var/spool/cron/")
TOP_DIRECTORIES = tuple(path.rstrip("/") for path in SYSTEM_PATHS)
MAX_DEPTH = 64  # below '/'
MAX_DIRECTORIES = 200_000
PROGRAM_DIRS = ("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/libexec/", "/lib/", "/usr/lib64/",
                "/lib64/")
# Set-ID programs that Debian, Ubuntu, RHEL-likes and Alpine ship.
KNOWN_SETID = {
    "at", "bsd-write", "chage", "chfn", "chrome-sandbox", "chsh", "crontab", "dbus-daemon-launch-helper",
    "dmcrypt-get-device", "dotlockfile", "expiry", "exim4", "fusermount", "fusermount3", "gpasswd", "ksu",
    "locate", "lockfile", "mail-lock", "mail-touchlock", "mail-unlock", "mlocate", "mount", "mount.cifs",
    "mount.ecryptfs_private", "mount.nfs", "netreport", "newgidmap", "newgrp", "newuidmap", "ntfs-3g",
    "pam_extrausers_chkpwd", "pam_timestamp_check", "passwd", "ping", "ping6", "pkexec", "plocate",
    "polkit-agent-helper-1", "postdrop", "postqueue", "pppd", "procmail", "pt_chown", "screen", "sendmail",
    "snap-confine", "ssh-agent", "ssh-keysign", "staprun", "su", "sudo", "sudoedit", "suexec", "traceroute6.iputils",
    "umount", "unix_chkpwd", "userhelper", "usernetctl", "utempter", "vmware-user-suid-wrapper", "wall", "write",
    "Xorg", "Xorg.wrap", "bbsuid", "lxc-user-nic", "cgclassify", "cgexec", "chkpwd", "sm-notify",
}


class PermissionChecks(Visitor):
    name = "misconfigurations:permissions"

    def __init__(self):
        self.findings = []

    def wants(self, entry):
        mode = entry.mode
        if mode & 0o002 and entry.path.startswith(SYSTEM_PATHS):
            self.findings.append(WORLD_WRITABLE.finding(
                entry.display_path, f"{entry.display_path} is world-writable (mode {mode_text(mode)})"))
        if mode & 0o6000 and not is_known_setid(entry.path):
            kind = "set-user-ID" if mode & 0o4000 else "set-group-ID"
            self.findings.append(SETID.finding(entry.display_path, f"{entry.display_path} is {kind} "
                                               f"(mode {mode_text(mode)})", None if mode & 0o4000 else LOW))
        return False

    def results(self):
        return self.findings


def is_known_setid(path):
    name = path.rsplit("/", 1)[-1]
    return name in KNOWN_SETID and path.startswith(PROGRAM_DIRS)


def writable_directories(root, notes):
    """FILE-003 findings: world-writable directories among the first MAX_DIRECTORIES of `system_directories(root)`."""
    findings = []
    listed = system_directories(root)
    try:
        for path, mode in islice(listed, MAX_DIRECTORIES):
            if mode & 0o002:
                sticky = bool(mode & stat.S_ISVTX)
                kind = "world-writable (sticky)" if sticky else "world-writable"
                findings.append(WRITABLE_DIRECTORY.finding(path, f"directory {path} is {kind} (mode "
                                                                 f"{mode_text(mode)})", MEDIUM if sticky else None))
        if next(listed, None) is not None:
            notes.append(f"native: more than {MAX_DIRECTORIES} system directories; the rest were not checked "
                         "for world-writable modes")
    except OSError:  # the root itself: the walk reports that
        pass
    finally:
        listed.close()  # closes the directories it holds open
    return findings


def system_directories(root):
    """(display path, mode) of '/', the directories on the way to each system path and all below them.

    As in the walk: directories are opened without following links (a link is not a
    directory here) and checked against the lstat that chose them, other filesystems are
    not entered, a directory is listed once; at most MAX_DEPTH deep. Listings are read
    lazily and names told apart by the listing's file type, so files are never looked up
    and a huge directory costs only as much of it as the caller takes.
    """
    root_fd = open_dir_in_root(root)
    try:
        st = os.fstat(root_fd)
        seen = {(st.st_dev, st.st_ino)}
        yield "/", st.st_mode
        for top in TOP_DIRECTORIES:
            yield from _directories(root_fd, "", top.strip("/").split("/"), st.st_dev, seen)
    finally:
        os.close(root_fd)


def _directories(fd, path, way, device, seen):
    """The directories in `fd` (at in-root `path`): the next name of `way`, or, past its end, all."""
    if way:
        yield from _directory(fd, path, way[0], way[1:], device, seen)
        return
    try:
        with os.scandir(fd) as listing:
            for item in listing:
                if item.is_dir(follow_symlinks=False):
                    yield from _directory(fd, path, item.name, way, device, seen)
    except OSError:  # the listing failed part way: what was found stands
        return


def _directory(fd, path, name, way, device, seen):
    """The directory `name` in `fd`, if it is one on this filesystem not seen before, and those in it."""
    try:
        chosen = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISDIR(chosen.st_mode) or chosen.st_dev != device:
            return
        child = open_dir_at(name, fd)
    except OSError:
        return
    try:
        opened = os.fstat(child)
        ident = (opened.st_dev, opened.st_ino)
        if ident != (chosen.st_dev, chosen.st_ino) or ident in seen:  # swapped since lstat, or a loop
            return
        seen.add(ident)
        child_path = f"{path}/{name}"
        yield display(child_path), opened.st_mode
        if child_path.count("/") < MAX_DEPTH:
            yield from _directories(child, child_path, way, device, seen)
    finally:
        os.close(child)
