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

Everything comes from the walk's lstat/fstat: files through `wants()`, directories through
`directory()`.
"""

import stat

from scanner.misconfigurations.common import HIGH, LOW, MEDIUM, Check, mode_text
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
# '/', the system paths themselves and the directories on the way to them (/var, /var/spool).
SYSTEM_DIRECTORIES = frozenset({"/"} | {path[:end] for path in SYSTEM_PATHS
                                        for end in range(1, len(path)) if path[end] == "/"})
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

    def directory(self, path, st):
        mode = st.st_mode
        if mode & 0o002 and (path in SYSTEM_DIRECTORIES or path.startswith(SYSTEM_PATHS)):
            sticky = bool(mode & stat.S_ISVTX)
            kind = "world-writable (sticky)" if sticky else "world-writable"
            shown = display(path)
            self.findings.append(WRITABLE_DIRECTORY.finding(
                shown, f"directory {shown} is {kind} (mode {mode_text(mode)})", MEDIUM if sticky else None))

    def results(self):
        return self.findings


def is_known_setid(path):
    name = path.rsplit("/", 1)[-1]
    return name in KNOWN_SETID and path.startswith(PROGRAM_DIRS)
