"""The misconfiguration family: our `native` checks over the shared walk, and `lynis` filtered to the target."""

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from app.validation import schema_validator
from scanner.misconfigurations import LynisScanner, NativeScanner
from scanner.misconfigurations.lynis import TARGET_TESTS, parse_report
from conftest import run_scanners, write_file

CACHE = Path(os.environ.get("VMCLARITY_TEST_CACHE", Path.home() / ".cache/vmclarity-tests"))
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


def test_debian_minbase_is_clean():
    root = CACHE / "bookworm-minbase"
    if not (root / "var/lib/dpkg/status").exists():
        pytest.skip("no debootstrapped Debian root in the test cache (tests/test_sbom_native.py builds it)")
    assert run_scanners(NativeScanner(str(root), {})).results == []


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


@pytest.mark.skipif(shutil.which("lynis") is None, reason="needs lynis")
def test_lynis_on_a_planted_tree(tmp_path, validator):
    root = tmp_path / "root"
    write_file(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n")
    write_file(root, "/etc/shadow", "root:$y$j9T$abc$def:19000:0:99999:7:::\n", mode=0o640)
    write_file(root, "/etc/login.defs", "PASS_MAX_DAYS 99999\nPASS_MIN_DAYS 0\n")
    write_file(root, "/etc/issue", "Debian GNU/Linux 12 \\n \\l\n")
    before = tree_digest(root)

    result = run_scanners(LynisScanner(str(root), {}))

    assert result.errors == []
    ids = {item["id"] for item in result.results}
    assert {"AUTH-9204", "AUTH-9286", "BANN-7126"} <= ids <= set(TARGET_TESTS)
    uid_zero = next(item for item in result.results if item["id"] == "AUTH-9204")
    assert uid_zero["severity"] == HIGH and uid_zero["location"] == "/etc/passwd"
    for item in result.results:
        validator.validate(item)
        assert str(root) not in item["message"]
    assert tree_digest(root) == before


def test_lynis_missing_binary_is_an_error(tmp_path):
    (tmp_path / "root").mkdir()
    result = run_scanners(LynisScanner(str(tmp_path / "root"), {"binary_path": str(tmp_path / "no-lynis")}))
    assert result.results == [] and result.errors and "not found" in result.errors[0]


def test_links_out_of_the_root_are_not_followed(tmp_path):
    outside = write_file(tmp_path, "/outside.conf", "PermitRootLogin yes\nPermitEmptyPasswords yes\n")
    root = tmp_path / "root"
    write_file(root, "/etc/ssh/sshd_config", "Include /etc/ssh/abs.conf rel.conf\nPasswordAuthentication no\n")
    (root / "etc/ssh/abs.conf").symlink_to(outside)  # resolved inside the root, as a chroot would
    (root / "etc/ssh/rel.conf").symlink_to("../../../../outside.conf")
    (root / "etc/sysctl.d").mkdir(parents=True)
    (root / "etc/sysctl.d/99-out.conf").symlink_to(outside)  # the walk never follows links
    os.mkfifo(root / "etc/shadow")  # a FIFO is never opened

    result = run_scanners(NativeScanner(str(root), {}))

    assert result.results == [] and result.errors == []
