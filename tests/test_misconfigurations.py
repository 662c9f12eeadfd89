"""The misconfiguration family: our `native` checks over the shared walk, and `lynis` filtered to the target."""

import hashlib
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from app.validation import schema_validator
from scanner.misconfigurations import LynisScanner, NativeScanner
from scanner.misconfigurations.lynis import parse_report
from scanner.misconfigurations import common, sudoers
from scanner.misconfigurations.sudoers import MAX_INCLUDE_DEPTH, SudoersChecks
from scanner.safe_fs import open_dir_in_root
from scanner.walker import Entry
from conftest import need, run_scanners, write_file

# Where LynisScanner looks for it: PATH, then the sbin directories a user's PATH may lack.
LYNIS = shutil.which("lynis", path=f"{os.environ.get('PATH', '')}:/usr/local/sbin:/usr/sbin:/sbin")
HIGH, MEDIUM, LOW = ("MisconfigurationHighSeverity", "MisconfigurationMediumSeverity", "MisconfigurationLowSeverity")


def tree_digest(root):
    """Every name, mode and content under `root`: equal digests mean an unchanged tree."""
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        info = path.lstat()
        digest.update(f"{path.relative_to(root)}\0{info.st_mode}\0".encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture()
def validator():
    return schema_validator("Misconfiguration")


def summary(results):
    """(id, location, message, severity) of each result, sorted."""
    return sorted((item["id"], item["location"], item["message"], item["severity"]) for item in results)


# A misconfigured machine


def plant_sshd(root):
    write_file(root, "/etc/ssh/sshd_config", "\n".join([
        "# test config",
        "Include /etc/ssh/sshd_config.d/*.conf",
        "PermitRootLogin no",
        "PasswordAuthentication yes",
        "Protocol 2,1",
        "Ciphers aes256-ctr,aes128-cbc,3des-cbc",
        "MACs=hmac-sha2-256,hmac-md5",
        "kexalgorithms +diffie-hellman-group1-sha1",
        "X11Forwarding yes",
        "PermitEmptyPasswords no",
        "Match User backup",
        "  PasswordAuthentication yes",
        "  PermitEmptyPasswords yes",
        "Match all",
        "PermitUserEnvironment yes",
        "",
    ]))
    write_file(root, "/etc/ssh/sshd_config.d/10-root.conf", "PERMITROOTLOGIN yes\nMatch Address 10.0.0.0/8\n"
                                                       "X11Forwarding no\n")
    write_file(root, "/etc/ssh/sshd_config.d/20-other.conf", "PermitRootLogin no\nIgnoreRhosts no\n")
    write_file(root, "/etc/ssh/sshd_config.d/README", "PermitEmptyPasswords yes\n")  # not *.conf: never included


SSHD_EXPECTED = [
    ("SSH-001", "/etc/ssh/sshd_config.d/10-root.conf:1", "PERMITROOTLOGIN is yes", HIGH),
    ("SSH-002", "/etc/ssh/sshd_config:12", "PasswordAuthentication is yes (in Match User backup)", MEDIUM),
    ("SSH-002", "/etc/ssh/sshd_config:4", "PasswordAuthentication is yes", MEDIUM),
    ("SSH-003", "/etc/ssh/sshd_config:13", "PermitEmptyPasswords is yes (in Match User backup)", HIGH),
    ("SSH-004", "/etc/ssh/sshd_config:5", "Protocol is 2,1", HIGH),
    ("SSH-005", "/etc/ssh/sshd_config:6", "Ciphers allows aes128-cbc, 3des-cbc", MEDIUM),
    ("SSH-006", "/etc/ssh/sshd_config:7", "MACs allows hmac-md5", MEDIUM),
    ("SSH-007", "/etc/ssh/sshd_config:8", "kexalgorithms allows diffie-hellman-group1-sha1", MEDIUM),
    ("SSH-008", "/etc/ssh/sshd_config:9", "X11Forwarding is yes", LOW),
    ("SSH-009", "/etc/ssh/sshd_config:15", "PermitUserEnvironment is yes", MEDIUM),
    ("SSH-011", "/etc/ssh/sshd_config.d/20-other.conf:2", "IgnoreRhosts is no", MEDIUM),
]


def plant_accounts(root):
    write_file(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"
                               "toor:x:0:0::/root:/bin/sh\n"
                               "guest::1001:1001::/home/guest:/bin/sh\n"
                               "alice:x:1000:1000::/home/alice:/bin/bash\n", mode=0o666)
    write_file(root, "/etc/shadow", "root:$y$j9T$abc$def:19000:0:99999:7:::\n"
                               "alice::19000:0:99999:7:::\n"
                               "bob:$1$salt$0123456789abcdefghijkl:19000:0:99999:7:::\n"
                               "carol:abcdefghijklm:19000:0:99999:7:::\n"
                               "dave:!$1$x$y:19000:0:99999:7:::\n"
                               "daemon:*:19000:0:99999:7:::\n", mode=0o644)
    write_file(root, "/etc/group", "root:x:0:\n", mode=0o664)
    write_file(root, "/etc/gshadow", "root:*::\n", mode=0o604)


ACCOUNTS_EXPECTED = [
    ("ACC-001", "/etc/passwd:2", "account toor has UID 0", HIGH),
    ("ACC-002", "/etc/passwd:3", "account guest has an empty password in /etc/passwd", HIGH),
    ("ACC-002", "/etc/shadow:2", "account alice has an empty password", HIGH),
    ("ACC-003", "/etc/group", "/etc/group is writable by group or others (mode 0664)", HIGH),
    ("ACC-003", "/etc/passwd", "/etc/passwd is writable by group or others (mode 0666)", HIGH),
    ("ACC-004", "/etc/gshadow", "/etc/gshadow is readable by everyone (mode 0604)", HIGH),
    ("ACC-004", "/etc/shadow", "/etc/shadow is readable by everyone (mode 0644)", HIGH),
    ("ACC-005", "/etc/shadow:3", "account bob has an MD5 password hash", MEDIUM),
    ("ACC-005", "/etc/shadow:4", "account carol has a DES password hash", MEDIUM),
]


def plant_sudoers(root):
    write_file(root, "/etc/sudoers", "\n".join([
        "Defaults env_reset",
        "Defaults:guest !authenticate",
        "root ALL=(ALL:ALL) ALL",
        "%admin ALL=(ALL) NOPASSWD: ALL",
        "ALL ALL=(ALL) NOPASSWD: ALL  # everyone!",
        "alice ALL=(root) NOPASSWD: /usr/bin/apt, PASSWD: ALL",
        "#1000 ALL=(ALL) NOPASSWD: /usr/bin/id",
        "@includedir /etc/sudoers.d",
        "",
    ]), mode=0o440)
    write_file(root, "/etc/sudoers.d/deploy", "# deploy user\ndeploy, ci ALL = (ALL) \\\n    NOPASSWD: ALL\n", mode=0o440)
    write_file(root, "/etc/sudoers.d/old.bak", "ALL ALL=(ALL) NOPASSWD: ALL\n", mode=0o440)  # sudo skips names with '.'
    write_file(root, "/etc/sudoers.d/README~", "ALL ALL=(ALL) NOPASSWD: ALL\n", mode=0o440)


SUDOERS_EXPECTED = [
    ("SUDO-001", "/etc/sudoers:5", "ALL users may run any command as ALL without a password", HIGH),
    ("SUDO-002", "/etc/sudoers.d/deploy:2", "deploy,ci may run any command as ALL without a password", MEDIUM),
    ("SUDO-002", "/etc/sudoers:4", "%admin may run any command as ALL without a password", MEDIUM),
    ("SUDO-003", "/etc/sudoers:2", "Defaults !authenticate for guest", HIGH),
]


def plant_cron(root):
    write_file(root, "/etc/crontab", "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/bin:/tmp\n"
                                "*/5 * * * * root /tmp/.x/run.sh >/dev/null 2>&1\n"
                                "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n")
    write_file(root, "/etc/cron.d/backup", "0 1 * * * root /usr/local/bin/backup --dir /var/tmpfoo\n")
    write_file(root, "/var/spool/cron/crontabs/alice", '@reboot sh -c "/dev/shm/miner"\n', mode=0o666)


CRON_EXPECTED = [
    ("CRON-001", "/etc/crontab:3", "cron job in /etc/crontab runs /tmp/.x/run.sh", MEDIUM),
    ("CRON-001", "/var/spool/cron/crontabs/alice:1", "cron job in /var/spool/cron/crontabs/alice runs "
                                                      "/dev/shm/miner", MEDIUM),
]


def plant_sysctl(root):
    write_file(root, "/usr/lib/sysctl.d/50-default.conf", "kernel.kptr_restrict = 0\nnet.ipv4.conf.all.rp_filter = 0\n")
    write_file(root, "/etc/sysctl.d/50-default.conf", "kernel.kptr_restrict = 1\n")  # hides the /usr/lib file
    write_file(root, "/etc/sysctl.d/60-bad.conf", "# comment\nnet.ipv4.ip_forward=1\nkernel.randomize_va_space = 0\n"
                                             "-net/ipv4/conf/all/accept_redirects = 1\n; fs.suid_dumpable = 2\n")
    write_file(root, "/etc/sysctl.d/99-fix.conf", "kernel.randomize_va_space = 2\n")
    write_file(root, "/etc/sysctl.d/README", "kernel.randomize_va_space = 0\n")  # not *.conf
    write_file(root, "/etc/sysctl.conf", "fs.suid_dumpable = 2\nkernel.dmesg_restrict=0\n")


SYSCTL_EXPECTED = [
    ("KERN-001", "/etc/sysctl.d/60-bad.conf:2", "net.ipv4.ip_forward = 1", MEDIUM),
    ("KERN-003", "/etc/sysctl.d/60-bad.conf:4", "net.ipv4.conf.all.accept_redirects = 1", MEDIUM),
    ("KERN-004", "/etc/sysctl.conf:1", "fs.suid_dumpable = 2", MEDIUM),
    ("KERN-006", "/etc/sysctl.conf:2", "kernel.dmesg_restrict = 0", LOW),
]


def plant_modes(root):
    write_file(root, "/usr/bin/passwd", "binary", mode=0o4755)  # a usual set-user-ID program
    write_file(root, "/usr/bin/wall", "binary", mode=0o2755)
    write_file(root, "/usr/local/bin/rootshell", "binary", mode=0o4755)
    write_file(root, "/tmp/passwd", "binary", mode=0o4755)  # a usual name in an unusual place
    write_file(root, "/opt/tool/bin/helper", "binary", mode=0o2755)
    write_file(root, "/etc/profile.d/evil.sh", "echo hi\n", mode=0o666)
    write_file(root, "/home/alice/notes", "mine\n", mode=0o666)  # not a system path
    write_file(root, "/tmp/scratch", "x\n", mode=0o777)


MODES_EXPECTED = [
    ("FILE-001", "/etc/passwd", "/etc/passwd is world-writable (mode 0666)", HIGH),
    ("FILE-001", "/etc/profile.d/evil.sh", "/etc/profile.d/evil.sh is world-writable (mode 0666)", HIGH),
    ("FILE-001", "/var/spool/cron/crontabs/alice", "/var/spool/cron/crontabs/alice is world-writable (mode 0666)",
     HIGH),
    ("FILE-002", "/opt/tool/bin/helper", "/opt/tool/bin/helper is set-group-ID (mode 2755)", LOW),
    ("FILE-002", "/tmp/passwd", "/tmp/passwd is set-user-ID (mode 4755)", MEDIUM),
    ("FILE-002", "/usr/local/bin/rootshell", "/usr/local/bin/rootshell is set-user-ID (mode 4755)", MEDIUM),
]


def test_misconfigured_tree(tmp_path, validator):
    root = tmp_path / "root"
    for plant in (plant_sshd, plant_accounts, plant_sudoers, plant_cron, plant_sysctl, plant_modes):
        plant(root)

    result = run_scanners(NativeScanner(str(root), {}))

    assert result.errors == []
    assert summary(result.results) == sorted(SSHD_EXPECTED + ACCOUNTS_EXPECTED + SUDOERS_EXPECTED + CRON_EXPECTED
                                             + SYSCTL_EXPECTED + MODES_EXPECTED)
    for item in result.results:
        validator.validate(item)
        assert item["scannerName"] == "native" and item["description"] and item["remediation"]
    root_login = next(item for item in result.results if item["id"] == "SSH-001")
    assert root_login["category"] == "sshd"
    assert [item["severity"] for item in result.results][:3] == [HIGH] * 3  # most severe first


def test_well_configured_tree(tmp_path):
    root = tmp_path / "root"
    write_file(root, "/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin prohibit-password\n"
                                        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                                        "X11Forwarding no\nCiphers -aes128-cbc\n"
                                        "Match User deploy\n  PasswordAuthentication no\n")
    write_file(root, "/etc/ssh/sshd_config.d/hardening.conf", "MACs hmac-sha2-512-etm@openssh.com\n")
    write_file(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n")
    write_file(root, "/etc/shadow", "root:$y$j9T$abc$def:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n", mode=0o640)
    write_file(root, "/etc/group", "root:x:0:\n")
    write_file(root, "/etc/gshadow", "root:*::\n", mode=0o640)
    write_file(root, "/etc/sudoers", "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n"
                                "backup ALL=(root) NOPASSWD: /usr/bin/rsync\n@includedir /etc/sudoers.d\n",
          mode=0o440)
    write_file(root, "/etc/crontab", "SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n")
    write_file(root, "/etc/sysctl.d/90-hardening.conf", "kernel.randomize_va_space = 2\nnet.ipv4.ip_forward = 0\n"
                                                   "fs.suid_dumpable = 0\nkernel.kptr_restrict = 2\n")
    write_file(root, "/usr/bin/su", "binary", mode=0o4755)
    write_file(root, "/usr/lib/dbus-1.0/dbus-daemon-launch-helper", "binary", mode=0o4754)

    result = run_scanners(NativeScanner(str(root), {}))

    assert result.results == [] and result.errors == []


def test_no_sshd_no_sshd_findings(tmp_path):
    root = tmp_path / "root"
    write_file(root, "/etc/ssh/ssh_config", "PasswordAuthentication yes\n")  # the client's config, not the daemon's
    assert run_scanners(NativeScanner(str(root), {})).results == []


def test_debian_minbase_is_clean(bookworm_root):
    result = run_scanners(NativeScanner(str(bookworm_root), {}))
    assert result.results == [] and result.errors == []


# World-writable directories


def test_world_writable_directories(tmp_path):
    root = tmp_path / "root"
    write_file(root, "/etc/cron.d/backup", "0 1 * * * root /usr/local/bin/backup\n")
    write_file(root, "/usr/local/bin/backup", "#!/bin/sh\n", mode=0o755)
    write_file(root, "/var/spool/cron/crontabs/alice", "", mode=0o600)
    for directory, mode in [
        ("/etc", 0o777),  # no sticky bit: anyone may rename /etc/shadow away
        ("/etc/cron.d", 0o777),
        ("/usr/local/bin", 0o757),
        ("/usr/lib/empty/deep/er", 0o777),  # empty: still a directory anyone can fill
        ("/opt/shared", 0o1777),  # sticky: others' files are safe, new ones can still be added
        ("/var/spool", 0o777),  # on the way to /var/spool/cron
        ("/var/spool/cron/crontabs", 0o1730),  # Debian's own: not writable by others
        ("/tmp", 0o1777), ("/var/tmp", 0o1777), ("/run/lock", 0o1777),  # sticky temporary directories
        ("/home/alice/public", 0o777), ("/srv/upload", 0o777),  # not system paths
    ]:
        (root / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
        (root / directory.lstrip("/")).chmod(mode)
    (root / "usr/lib/tmp-link").symlink_to("/tmp")  # a link is not a directory: never followed

    result = run_scanners(NativeScanner(str(root), {}))

    assert result.errors == []
    assert summary(result.results) == [
        ("FILE-003", "/etc", "directory /etc is world-writable (mode 0777)", HIGH),
        ("FILE-003", "/etc/cron.d", "directory /etc/cron.d is world-writable (mode 0777)", HIGH),
        ("FILE-003", "/opt/shared", "directory /opt/shared is world-writable (sticky) (mode 1777)", MEDIUM),
        ("FILE-003", "/usr/lib/empty/deep/er", "directory /usr/lib/empty/deep/er is world-writable (mode 0777)",
         HIGH),
        ("FILE-003", "/usr/local/bin", "directory /usr/local/bin is world-writable (mode 0757)", HIGH),
        ("FILE-003", "/var/spool", "directory /var/spool is world-writable (mode 0777)", HIGH),
    ]
    item = result.results[0]
    assert item["category"] == "file-permissions" and item["description"] and item["remediation"]
    schema_validator("Misconfiguration").validate(item)


def test_world_writable_root_directory(tmp_path):
    root = tmp_path / "root"
    write_file(root, "/etc/hostname", "box\n")
    root.chmod(0o777)
    assert summary(run_scanners(NativeScanner(str(root), {})).results) == [
        ("FILE-003", "/", "directory / is world-writable (mode 0777)", HIGH)]


# sysctl.d: masks and links


def test_sysctl_masks_and_links(tmp_path):
    outside = write_file(tmp_path, "/outside.conf", "fs.suid_dumpable = 2\nkernel.dmesg_restrict = 0\n")
    root = tmp_path / "root"
    write_file(root, "/usr/lib/sysctl.d/50-aslr.conf", "kernel.randomize_va_space = 0\n")
    write_file(root, "/usr/lib/sysctl.d/60-router.conf", "net.ipv4.ip_forward = 1\n")
    write_file(root, "/usr/lib/sysctl.d/90-bpf.conf", "kernel.unprivileged_bpf_disabled = 0\n")
    write_file(root, "/usr/lib/sysctl.d/91-up.conf", "net.ipv4.tcp_syncookies = 0\n")
    write_file(root, "/srv/tuning/kptr.conf", "kernel.kptr_restrict = 0\n")
    etc, run = root / "etc/sysctl.d", root / "run/sysctl.d"
    etc.mkdir(parents=True)
    run.mkdir(parents=True)
    (etc / "50-aslr.conf").symlink_to("/dev/null")  # masked: the /usr/lib file's bad value is never applied
    (run / "60-router.conf").symlink_to("../../dev/null")  # a relative link to /dev/null masks too
    (etc / "80-link.conf").symlink_to("/srv/tuning/kptr.conf")  # read through, inside the root
    (etc / "90-bpf.conf").symlink_to(outside)  # resolves to nothing inside the root: ignored, hides nothing
    (etc / "91-up.conf").symlink_to("../../../outside.conf")  # from the host's view it would reach outside.conf
    (etc / "92-dir.conf").mkdir()

    result = run_scanners(NativeScanner(str(root), {}))

    assert result.errors == []
    assert summary(result.results) == [
        ("KERN-005", "/etc/sysctl.d/80-link.conf:1", "kernel.kptr_restrict = 0", LOW),
        ("KERN-009", "/usr/lib/sysctl.d/91-up.conf:1", "net.ipv4.tcp_syncookies = 0", MEDIUM),
        ("KERN-012", "/usr/lib/sysctl.d/90-bpf.conf:1", "kernel.unprivileged_bpf_disabled = 0", MEDIUM),
    ]


# sudoers: aliases and includes


def test_sudoers_aliases_and_includes(tmp_path):
    outside = write_file(tmp_path, "/outside", "mallory ALL=(ALL) NOPASSWD: ALL\n")
    root = tmp_path / "root"
    write_file(root, "/etc/hostname", "web1.example.com\n")
    write_file(root, "/etc/sudoers", "\n".join([
        "Cmnd_Alias ALLCMDS = ALL",
        "Cmnd_Alias SHELLS = /bin/sh, /bin/bash : EVERYTHING = SHELLS, ALLCMDS",
        "User_Alias EVERYONE = ALL",
        "User_Alias ADMINS = alice, bob",
        "Runas_Alias ROOTS = root",
        "bob ALL=(ALL) NOPASSWD: ALLCMDS",
        "ADMINS ALL=(ROOTS) NOPASSWD: EVERYTHING",
        "EVERYONE ALL=(ALL) NOPASSWD: ALL",
        "carol ALL=(ALL) NOPASSWD: SHELLS",
        "dave ALL=(ALL) NOPASSWD: !ALLCMDS, /usr/bin/id",
        "erin ALL=(ALL) ALLCMDS",
        "@include sudoers.local",  # relative to /etc
        '#include "/srv/policy/with space"',
        "@includedir /opt/sudo.d",
        "@include /srv/%h.conf",
        "@include /../../../outside",  # '..' stops at the root
        "@include /etc/outside-link",
        "@include /etc/sudoers",  # itself: not again
        "",
    ]), mode=0o440)
    (root / "etc/outside-link").symlink_to(outside)  # resolved inside the root: nothing there
    write_file(root, "/etc/sudoers.local", "frank ALL=(ALL) NOPASSWD: ALL\n")
    write_file(root, "/srv/policy/with space", "Defaults:guest !authenticate\n")
    write_file(root, "/opt/sudo.d/ops", "%ops ALL=(ALL) NOPASSWD: ALLCMDS\n@include ../nested\n")
    write_file(root, "/opt/sudo.d/ops.disabled", "ALL ALL=(ALL) NOPASSWD: ALL\n")  # a '.': not read
    write_file(root, "/opt/nested", "gina ALL = NOPASSWD: ALL\n")
    write_file(root, "/srv/web1.conf", "henry ALL=(ALL) NOPASSWD: ALL\n")
    write_file(root, "/etc/sudoers.d/never", "ALL ALL=(ALL) NOPASSWD: ALL\n")  # nothing includes it

    result = run_scanners(NativeScanner(str(root), {}))

    assert result.errors == []
    assert summary(result.results) == [
        ("SUDO-001", "/etc/sudoers:8", "ALL users (EVERYONE) may run any command as ALL without a password", HIGH),
        ("SUDO-002", "/etc/sudoers.local:1", "frank may run any command as ALL without a password", MEDIUM),
        ("SUDO-002", "/etc/sudoers:6", "bob may run any command (Cmnd_Alias ALLCMDS) as ALL without a password",
         MEDIUM),
        ("SUDO-002", "/etc/sudoers:7", "ADMINS may run any command (Cmnd_Alias EVERYTHING) as ROOTS without a "
                                       "password", MEDIUM),
        ("SUDO-002", "/opt/nested:1", "gina may run any command as root without a password", MEDIUM),
        ("SUDO-002", "/opt/sudo.d/ops:1", "%ops may run any command (Cmnd_Alias ALLCMDS) as ALL without a password",
         MEDIUM),
        ("SUDO-002", "/srv/web1.conf:1", "henry may run any command as ALL without a password", MEDIUM),
        ("SUDO-003", "/srv/policy/with space:1", "Defaults !authenticate for guest", HIGH),
    ]


def test_sudoers_include_depth_is_bounded(tmp_path):
    root = tmp_path / "root"
    write_file(root, "/etc/sudoers", "@include /srv/chain/1\n@include /srv/loop/a\n")
    for number in range(1, MAX_INCLUDE_DEPTH + 10):
        write_file(root, f"/srv/chain/{number}", f"user{number} ALL=(ALL) NOPASSWD: ALL\n@include {number + 1}\n")
    write_file(root, "/srv/loop/a", "@include b\nloop ALL=(ALL) NOPASSWD: ALL\n")
    write_file(root, "/srv/loop/b", "@include a\n")

    found = run_scanners(NativeScanner(str(root), {})).results

    assert sorted(item["message"].split()[0] for item in found) == sorted(
        [f"user{number}" for number in range(1, MAX_INCLUDE_DEPTH + 1)] + ["loop"])


def test_sudoers_alias_chain_with_repeated_members_is_linear(tmp_path):
    # Each alias lists the next one three times: walking down every path is 3**60 steps.
    root = tmp_path / "root"
    levels = 60
    lines = []
    for prefix, kind, last in [("C", "Cmnd_Alias", "/bin/true"), ("A", "Cmnd_Alias", "/bin/true, ALL"),
                               ("U", "User_Alias", "alice")]:
        lines += [f"{kind} {prefix}{n} = {prefix}{n + 1}, {prefix}{n + 1}, {prefix}{n + 1}" for n in range(levels)]
        lines.append(f"{kind} {prefix}{levels} = {last}")
    lines += ["U0 ALL=(ALL) NOPASSWD: C0", "U0 ALL=(ALL) NOPASSWD: A0"]
    write_file(root, "/etc/sudoers", "\n".join(lines) + "\n", mode=0o440)
    found = []
    judge = threading.Thread(target=lambda: found.extend(SudoersChecks(str(root)).results()), daemon=True)

    judge.start()
    judge.join(60)  # a sanity bound only: it takes milliseconds

    assert not judge.is_alive()
    assert summary(found) == [("SUDO-002", f"/etc/sudoers:{3 * levels + 5}",
                               "U0 may run any command (Cmnd_Alias A0) as ALL without a password", MEDIUM)]


def count_reads(monkeypatch):
    """The in-root paths the sudoers checks read, each as often as it was read."""
    reads = []

    def counting(root, path, limit):
        reads.append(path)
        return common.read_config(root, path, limit)

    monkeypatch.setattr(sudoers, "read_config", counting)
    return reads


def test_sudoers_include_fan_out_reads_each_file_once(tmp_path, monkeypatch):
    root = tmp_path / "root"
    big = "# padding\n" * (400 * 1024) + "mallory ALL=(ALL) NOPASSWD: ALL\n"  # 4 MiB, the most a file may be
    write_file(root, "/srv/big", big)
    write_file(root, "/srv/d/one", "@include /srv/big\n")
    write_file(root, "/etc/sudoers", "@include /srv/big\n@include ../srv/./big\n@includedir /srv/d\n" * 1000)
    reads = count_reads(monkeypatch)

    result = run_scanners(NativeScanner(str(root), {}))

    assert summary(result.results) == [
        ("SUDO-002", "/srv/big:409601", "mallory may run any command as ALL without a password", MEDIUM)]
    assert sorted(reads) == ["/etc/sudoers", "/srv/big", "/srv/d/one"]
    assert result.notes == []


def test_sudoers_policy_size_and_file_count_are_bounded(tmp_path, monkeypatch):
    root = tmp_path / "root"
    write_file(root, "/etc/sudoers", "".join(f"@include /srv/p/{n}\n" for n in range(40)))
    for n in range(40):
        write_file(root, f"/srv/p/{n}", f"user{n} ALL=(ALL) NOPASSWD: ALL\n" + "#" * 1000 + "\n")
    monkeypatch.setattr(sudoers, "MAX_POLICY_BYTES", 10_000)
    reads = count_reads(monkeypatch)

    result = run_scanners(NativeScanner(str(root), {}))

    sizes = [(root / path.lstrip("/")).stat().st_size for path in reads]
    read = len(reads) - 1  # /etc/sudoers, then files until they come to 10,000 bytes, and no more
    assert sum(sizes[:-1]) < 10_000 <= sum(sizes) and read == 9
    assert reads == ["/etc/sudoers"] + [f"/srv/p/{n}" for n in range(read)]
    assert sorted(item["message"].split()[0] for item in result.results) == sorted(f"user{n}" for n in range(read))
    assert result.notes == ["native: sudoers: the policy is larger than 10000 bytes; the rest was not read"]

    monkeypatch.setattr(sudoers, "MAX_POLICY_BYTES", 16 * 1024**2)
    monkeypatch.setattr(sudoers, "MAX_FILES", 4)
    reads.clear()
    result = run_scanners(NativeScanner(str(root), {}))
    assert reads == ["/etc/sudoers", "/srv/p/0", "/srv/p/1", "/srv/p/2"] and len(result.results) == 3
    assert result.notes == ["native: sudoers: more than 4 files and directories included; the rest were not read"]


def test_sudoers_kept_lines_and_members_are_bounded(tmp_path, monkeypatch):
    root = tmp_path / "root"
    members = ", ".join(f"/bin/x{n}" for n in range(1000))
    write_file(root, "/etc/sudoers", f"Cmnd_Alias MANY = {members}, ALL\nbob ALL=(ALL) NOPASSWD: MANY\n"
                                     "carol ALL=(ALL) NOPASSWD: ALL\n")
    monkeypatch.setattr(sudoers, "MAX_KEPT", 500)

    checks = SudoersChecks(str(root))
    assert checks.results() == []  # MANY was cut before ALL, and the policy before bob and carol
    assert checks.notes == ["native: sudoers: more than 500 rule lines and alias members; the rest was not judged"]


def test_sudoers_files_are_read_on_demand_not_kept_from_the_walk(tmp_path, monkeypatch):
    root = tmp_path / "root"
    write_file(root, "/etc/sudoers", "root ALL=(ALL) ALL\n", mode=0o440)
    for n in range(50):
        write_file(root, f"/etc/sudoers.d/file{n}", "x" * 100_000 + "\n")  # nothing includes them
    reads = count_reads(monkeypatch)
    scanner = NativeScanner(str(root), {})
    entry = Entry("/etc/sudoers.d/file0", 100_001, stat.S_IFREG | 0o440, 0.0)

    assert not any(visitor.wants(entry) for visitor in scanner.visitors())
    assert run_scanners(scanner).results == []
    assert reads == ["/etc/sudoers"]


def test_listing_caps_are_noted(tmp_path, monkeypatch):
    root = tmp_path / "root"
    write_file(root, "/etc/sudoers", "@includedir /etc/sudoers.d\n", mode=0o440)
    for n in range(8):
        write_file(root, f"/etc/sudoers.d/user{n}", f"user{n} ALL=(ALL) NOPASSWD: ALL\n")
    monkeypatch.setattr(common, "MAX_LISTED", 5)

    result = run_scanners(NativeScanner(str(root), {}))

    assert len(result.results) == 5  # five of the eight, in the directory's order
    assert result.notes == ["native: /etc/sudoers.d has more than 5 entries; only 5 were read"]


def test_open_dir_in_root_follows_no_link(tmp_path):
    root = tmp_path / "root"
    (root / "etc/real").mkdir(parents=True)
    (root / "etc/link").symlink_to("real")
    os.close(open_dir_in_root(str(root), "/etc/./real/"))
    for path in ("/etc/link", "/etc/real/../real", "/etc/real\0"):
        with pytest.raises(OSError):
            os.close(open_dir_in_root(str(root), path))


def test_sysctl_only_character_devices_and_dev_null_mask(tmp_path):
    root = tmp_path / "root"
    for name, line in [("10-blk", "kernel.randomize_va_space = 0"), ("20-blklink", "net.ipv4.ip_forward = 1"),
                       ("30-chr", "kernel.kptr_restrict = 0"), ("40-chrlink", "kernel.dmesg_restrict = 0"),
                       ("50-hops", "fs.suid_dumpable = 2")]:
        write_file(root, f"/usr/lib/sysctl.d/{name}.conf", line + "\n")
    etc, dev = root / "etc/sysctl.d", root / "dev"
    etc.mkdir(parents=True)
    dev.mkdir()
    try:
        os.mknod(etc / "10-blk.conf", stat.S_IFBLK | 0o600, os.makedev(7, 0))
        os.mknod(dev / "loop0", stat.S_IFBLK | 0o600, os.makedev(7, 0))
        os.mknod(etc / "30-chr.conf", stat.S_IFCHR | 0o600, os.makedev(1, 5))
        os.mknod(dev / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating device nodes needs CAP_MKNOD")
    (etc / "20-blklink.conf").symlink_to("/dev/loop0")  # a block device: ignored, hides nothing
    (etc / "40-chrlink.conf").symlink_to("/dev/zero")  # systemd masks with any character device
    (etc / "null").symlink_to("../../dev/null")
    (etc / "50-hops.conf").symlink_to("null")  # ends at /dev/null, which the snapshot lacks: a mask

    result = run_scanners(NativeScanner(str(root), {}))

    assert summary(result.results) == [
        ("KERN-001", "/usr/lib/sysctl.d/20-blklink.conf:1", "net.ipv4.ip_forward = 1", MEDIUM),
        ("KERN-002", "/usr/lib/sysctl.d/10-blk.conf:1", "kernel.randomize_va_space = 0", HIGH),
    ]


# lynis


def test_lynis_report_keeps_only_target_tests():
    report = "\n".join([
        "report_version_major=1",
        "suggestion[]=LYNIS|This release is more than 4 months old.|-|-|",
        "warning[]=LOGG-2138|klogd is not running, which could lead to missing kernel messages in log files|-|-|",
        "suggestion[]=KRNL-6000|One or more sysctl values differ from the scan profile|-|-|",
        "warning[]=AUTH-9204|Multiple users with UID 0 found in passwd file|-|-|",
        "suggestion[]=BANN-7126|Add a legal banner to /mnt/snap/etc/issue, to warn unauthorized users|-|-|",
        "suggestion[]=AUTH-9286|Configure minimum password age in /etc/login.defs|-|text:Set PASS_MIN_DAYS|",
        "suggestion[]=AUTH-9286|Configure minimum password age in /etc/login.defs|-|text:Set PASS_MIN_DAYS|",
    ])

    found = parse_report(report, "/mnt/snap")

    assert summary(found) == [
        ("AUTH-9204", "/etc/passwd", "Multiple users with UID 0 found in passwd file", HIGH),
        ("AUTH-9286", "/etc/login.defs", "Configure minimum password age in /etc/login.defs", LOW),
        ("BANN-7126", "/etc/issue", "Add a legal banner to /etc/issue, to warn unauthorized users", LOW),
    ]
    remediation = {item["id"]: item["remediation"] for item in found}
    assert remediation["AUTH-9286"] == "Set PASS_MIN_DAYS"
    assert remediation["AUTH-9204"] == "See https://cisofy.com/lynis/controls/AUTH-9204/"
    assert all(item["scannerName"] == "lynis" for item in found)


# Where lynis writes when it is not told otherwise (as root, and as any other user): our run must not.
LYNIS_HOST_FILES = [Path("/var/log/lynis-report.dat"), Path("/var/log/lynis.log"), Path.home() / "lynis-report.dat",
                    Path.home() / "lynis.log"]


def host_state(paths):
    return {path: (info.st_size, info.st_mtime_ns) if (info := _lstat(path)) else None for path in paths}


def _lstat(path):
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def test_lynis_on_a_planted_tree(tmp_path, validator):
    need(LYNIS or "lynis")
    root = tmp_path / "root"
    write_file(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n"
                                    "bob:x:1000:1000::/home/bob:/bin/sh\n")
    write_file(root, "/etc/shadow", "root:$y$j9T$abc$def:19000:0:99999:7:::\n"
                                    "bob:$1$salt$0123456789abcdefghijkl:19000:0:99999:7:::\n", mode=0o640)
    write_file(root, "/etc/login.defs", "PASS_MAX_DAYS 99999\nPASS_MIN_DAYS 0\n"
                                        "SHA_CRYPT_MIN_ROUNDS 5000\nSHA_CRYPT_MAX_ROUNDS 10000\n")
    write_file(root, "/etc/issue", "Authorized access only. All activity is monitored and recorded; unauthorized "
                                   "use is prohibited and subject to criminal law.\n")
    write_file(root, "/etc/issue.net", "Debian GNU/Linux 12\n")
    write_file(root, "/etc/modprobe.d/hardening.conf", "install dccp /bin/true\ninstall sctp /bin/true\n"
                                                       "blacklist firewire-core\n")
    before, host_before = tree_digest(root), host_state(LYNIS_HOST_FILES)

    result = run_scanners(LynisScanner(str(root), {}))

    assert result.errors == []
    expected = [
        ("AUTH-9204", "/etc/passwd", "Multiple users with UID 0 found in passwd file", HIGH),
        ("AUTH-9208", "/etc/passwd", "Multiple accounts found with same UID", HIGH),
        ("AUTH-9286", "/etc/login.defs", "Configure maximum password age in /etc/login.defs", LOW),
        ("AUTH-9286", "/etc/login.defs", "Configure minimum password age in /etc/login.defs", LOW),
        ("BANN-7130", "/etc/issue.net", "Add legal banner to /etc/issue.net, to warn unauthorized users", LOW),
        ("NETW-3200", "/etc/modprobe.d", "Determine if protocol 'rds' is really needed on this system", LOW),
        ("NETW-3200", "/etc/modprobe.d", "Determine if protocol 'tipc' is really needed on this system", LOW),
    ]
    if os.geteuid() == 0:  # lynis runs its hashing-method test (bob's MD5 hash) only as root
        expected.append(("AUTH-9229", "/etc/shadow", "Check PAM configuration, add rounds if applicable and expire "
                                                     "passwords to encrypt with new values", LOW))
    # The target's own banner, hashing rounds, dccp/sctp and firewire settings were read: none of those findings,
    # and nothing from the tests about the machine lynis runs on.
    assert summary(result.results) == sorted(expected)
    for item in result.results:
        validator.validate(item)
        assert str(root) not in item["message"]
    assert tree_digest(root) == before
    # --report-file in a private directory and --no-log: the host's lynis report and log are not touched.
    assert host_state(LYNIS_HOST_FILES) == host_before


def test_lynis_missing_binary_is_an_error(tmp_path):
    (tmp_path / "root").mkdir()
    result = run_scanners(LynisScanner(str(tmp_path / "root"), {"binary_path": str(tmp_path / "no-lynis")}))
    assert result.results == [] and result.errors and "not found" in result.errors[0]


def test_links_out_of_the_root_are_not_followed(tmp_path):
    outside = write_file(tmp_path, "/outside.conf", "PermitRootLogin yes\nPermitEmptyPasswords yes\n"
                                                    "ALL ALL=(ALL) NOPASSWD: ALL\nkernel.randomize_va_space = 0\n")
    root = tmp_path / "root"
    write_file(root, "/etc/ssh/sshd_config", "Include /etc/ssh/abs.conf rel.conf\nPasswordAuthentication no\n")
    (root / "etc/ssh/abs.conf").symlink_to(outside)  # resolved inside the root, as a chroot would
    (root / "etc/ssh/rel.conf").symlink_to("../../../../outside.conf")
    (root / "etc/sysctl.d").mkdir(parents=True)
    (root / "etc/sysctl.d/99-out.conf").symlink_to(outside)  # resolves to nothing inside the root
    (root / "etc/sysctl.d/98-up.conf").symlink_to("../../../outside.conf")
    write_file(root, "/etc/sudoers", "@include ../../outside.conf\n@include /etc/pipe\n@includedir /etc/sudoers.d\n"
                                     "@includedir /etc/sudoers.d/../../..\n", mode=0o440)
    (root / "etc/sudoers.d").mkdir()
    (root / "etc/sudoers.d/out").symlink_to(outside)
    (root / "etc/sudoers.d/up").symlink_to("../../../outside.conf")
    for fifo in ("etc/shadow", "etc/pipe", "etc/sudoers.d/pipe", "etc/sysctl.d/97-pipe.conf"):
        os.mkfifo(root / fifo)  # a FIFO is never opened

    result = run_scanners(NativeScanner(str(root), {}))

    assert result.results == [] and result.errors == []
