"""File mode checks, from the walk's lstat alone (no file is read).

- world-writable regular files in system paths (/etc, /usr, /bin, /sbin, /lib*, /boot,
  /opt) and cron paths (/var/spool/cron): anyone can change what the system runs or trusts;
- set-user-ID / set-group-ID files anywhere that are not a known system program (by name)
  in a system program directory.

Directories are not judged: the walk hands visitors regular files only.
"""

from scanner.misconfigurations.common import HIGH, LOW, MEDIUM, Check, mode_text
from scanner.walker import Visitor

CATEGORY = "file-permissions"
WORLD_WRITABLE = Check("FILE-001", CATEGORY, HIGH, "A system or cron file can be changed by every user, who can "
                       "then run code as whoever uses it (often root).", "`chmod o-w FILE` and check the file "
                       "was not tampered with.")
SETID = Check("FILE-002", CATEGORY, MEDIUM, "A set-user-ID or set-group-ID program that is not one of the usual "
              "system ones runs with its owner's privileges for every user: a classic backdoor or privilege "
              "escalation.", "Remove the bit (`chmod u-s,g-s FILE`) unless the program is known to need it.")

SYSTEM_PATHS = ("/etc/", "/usr/", "/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/", "/boot/", "/opt/",
                "/var/spool/cron/")
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
