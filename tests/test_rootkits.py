"""The rootkit family: chkrootkit on a private read-only view, target findings only, the target untouched."""

import hashlib
import os
import shutil
import uuid
from pathlib import Path

import pytest

from app.validation import schema_validator
from scanner.rootkits import ChkrootkitScanner
from scanner.rootkits.chkrootkit import ChkrootkitError, offered_tests, parse_output, safe_script
from conftest import CHKROOTKIT, need, run_scanners, write_file


@pytest.fixture()
def chkrootkit_runs():
    """chkrootkit and unshare, or skip (fail on CI); and root, for the private read-only view (or skip)."""
    need(CHKROOTKIT or "chkrootkit", "unshare")  # CHKROOTKIT: found in the sbin directories a user's PATH may lack
    if os.geteuid() != 0:
        pytest.skip("chkrootkit runs on a private read-only mount of the target: needs root")


needs_chkrootkit = pytest.mark.usefixtures("chkrootkit_runs")


def tree_digest(root):
    """Every name, mode, mtime and content under `root`: equal digests mean an unchanged tree."""
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        info = path.lstat()
        digest.update(f"{path.relative_to(root)}\0{info.st_mode}\0{info.st_mtime_ns}\0".encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture()
def validator():
    return schema_validator("Rootkit")


def found(results):
    return sorted((item["rootkitName"], item["rootkitType"], item["message"]) for item in results)


@needs_chkrootkit
def test_planted_rootkits(tmp_path, validator):
    root = tmp_path / "root"
    for directory in ("proc", "dev", "var/tmp", "root"):  # an empty /proc, as on a snapshot
        (root / directory).mkdir(parents=True)
    write_file(root, "/etc/ttyhash", "x")  # t0rn
    write_file(root, "/lib/defs/x", "x")  # MonKit
    write_file(root, "/tmp/kdevtmpfsi", "x")  # Kinsing
    write_file(root, "/tmp/.bugtraq", "x")  # Slapper
    write_file(root, "/etc/cron.hourly/gcc.sh", "x")  # Linux/Xor.DDoS
    write_file(root, "/usr/lib/.fx/sniff.log", "x")  # a known suspicious directory
    write_file(root, "/usr/include/file.h", "x")  # Showtee and Romanian
    write_file(root, "/var/tmp/cache", "#!/usr/bin/php\n<?php system($_GET['c']); ?>\n")  # the (fixed) PHP check
    write_file(root, "/etc/passwd", "root:x:0:0::/root:/bin/sh\nmother:x:0:0::/:/bin/sh\n")  # Linux.Proxy
    write_file(root, "/bin/ls", "junk /dev/ttyof junk\n", mode=0o755)  # a trojaned ls
    # Hostile content: a target program chkrootkit would run (ssh -V), a file name it would run through sh -c.
    executed = tmp_path / f"executed-{uuid.uuid4().hex}"
    write_file(root, "/usr/bin/ssh", f"#!/bin/sh\ntouch {executed}\n", mode=0o755)
    marker = f"vmclarity-pwned-{uuid.uuid4().hex}"
    write_file(root, f"/tmp/x$(touch {marker})", "<?php\n")
    before = tree_digest(root)

    result = run_scanners(ChkrootkitScanner(str(root), {}))

    assert result.errors == []
    assert found(result.results) == sorted([
        ("trojaned ls", "APPLICATION", "`ls' looks trojaned (chkrootkit: INFECTED)"),
        ("known suspicious directories", "UNKNOWN",
         "Suspect directory usr/lib/.fx found. Looking for sniffer logs: /usr/lib/.fx/, /usr/lib/.fx/sniff.log"),
        ("t0rn", "APPLICATION", "Possible t0rn rootkit installed: /etc/ttyhash"),
        ("MonKit", "APPLICATION", "Possible MonKit installed: /lib/defs, /lib/defs/x"),
        ("Showtee", "APPLICATION", "Possible Showtee rootkit installed: /usr/include/file.h"),
        ("Romanian", "APPLICATION", "Possible Romanian rootkit installed: /usr/include/file.h"),
        ("Linux.Xor.DDoS", "APPLICATION", "Possible Linux.Xor.DDoS installed: /etc/cron.hourly/gcc.sh"),
        ("Linux.Proxy.1.0", "APPLICATION", "INFECTED: Possible Malicious Linux.Proxy.10 installed in /etc/passwd"),
        ("Kinsing.a backdoor", "APPLICATION", "Possible Kinsing.a backdoor rootkit installed: /tmp/kdevtmpfsi"),
        ("slapper", "APPLICATION", "Possible Slapper Worm installed: /tmp/.bugtraq"),
        ("suspect PHP files", "UNKNOWN", "The following suspicious PHP files were found: /var/tmp/cache"),
    ])
    for item in result.results:
        validator.validate(item)
    # Nothing written into the target (chkrootkit's Syslogk test writes ROOT/proc/syslogk), nothing of it run.
    assert tree_digest(root) == before
    assert not executed.exists()
    assert not Path("/usr/lib/chkrootkit", marker).exists()
    assert not (Path.cwd() / marker).exists()


@needs_chkrootkit
def test_clean_tree(tmp_path):
    root = tmp_path / "root"
    for name in ("ls", "ps", "login", "su", "passwd", "find", "grep", "date", "du", "env", "basename"):
        source = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
        if source:
            target = root / "usr/bin" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    write_file(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
    write_file(root, "/var/log/wtmp", "")
    (root / "tmp").mkdir()

    result = run_scanners(ChkrootkitScanner(str(root), {}))

    assert result.errors == [] and result.results == []


@needs_chkrootkit
def test_debian_minbase_is_clean(bookworm_root):
    before = tree_digest(bookworm_root)
    result = run_scanners(ChkrootkitScanner(str(bookworm_root), {}))
    assert result.errors == [] and result.results == []
    assert tree_digest(bookworm_root) == before


@needs_chkrootkit
def test_hidden_files_only_when_asked(tmp_path):
    root = tmp_path / "root"
    write_file(root, "/usr/lib/python3/dist-packages/pkg/.gitignore", "*.pyc\n")
    write_file(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")

    assert run_scanners(ChkrootkitScanner(str(root), {})).results == []
    asked = run_scanners(ChkrootkitScanner(str(root), {"include_hidden_files": True})).results
    assert found(asked) == [("suspicious files and dirs", "UNKNOWN", "The following suspicious files and "
                             "directories were found: /usr/lib/python3/dist-packages/pkg/.gitignore")]


def test_missing_binary_is_an_error(tmp_path):
    (tmp_path / "root").mkdir()
    result = run_scanners(ChkrootkitScanner(str(tmp_path / "root"), {"binary_path": str(tmp_path / "nope")}))
    assert result.results == [] and "not found" in result.errors[0]


def test_the_php_check_no_longer_runs_file_names():
    need(CHKROOTKIT or "chkrootkit")
    original = Path(CHKROOTKIT).read_text(errors="surrogateescape")
    fixed = safe_script(original)
    assert '\\"{}\\"' not in fixed and '-exec sh -c "$script" sh {} \\;' in fixed
    assert "lkm" in offered_tests(fixed) and "aliens" in offered_tests(fixed)
    with pytest.raises(ChkrootkitError):
        safe_script('files=$(find /tmp -exec sh -c "head \\"{}\\"" \\;)\n')


def test_parse_drops_host_tests_and_untested():
    view = "/tmp/vmclarity-chkrootkit-abc/view"
    output = "\n".join([
        f"ROOTDIR is `{view}/'",
        "Checking `sshd'...                                          INFECTED but disabled",
        "Checking `aliens'...                                        started",
        "Searching for Syslogk LKM rootkit...                        WARNING",
        "",
        "WARNING: Possible Malicious Syslogk LKM rootkit installed: /proc/syslogk",
        "",
        "Searching for 64-bit Linux Rootkit modules...               WARNING",
        "",
        "WARNING: Possible 64-bit rootkit modules installed:",
        f"{view}/lib/modules/6.1/module_init.ko",
        "",
        "Checking `aliens'...                                        finished",
        "Checking `lkm'...                                           started",
        "Searching for Adore LKM...                                  WARNING",
        "",
        "WARNING: Adore LKM installed",
        "chkproc: Possible LKM Trojan installed:",
        "Checking `sniffer'...                                       WARNING",
        "",
        "WARNING: Output from ifpromisc:",
        "eth0: PACKET SNIFFER(/usr/sbin/NetworkManager[812])",
        "Checking `chkutmp'...                                       WARNING",
        "",
        "WARNING: chkutmp not tested: can't exec ./chkutmp",
        "Checking `wted'...                                          WARNING",
        "",
        "WARNING: output from chkwtmp:",
        f"unable to open wtmp-file {view}/wtmp",
        "Checking `rexedcs'...                                       INFECTED: /tmp/x/view/usr/sbin/in.rexedcs",
    ])

    assert found(parse_output(output, view)) == sorted([
        ("trojaned sshd", "APPLICATION", "`sshd' looks trojaned (chkrootkit: INFECTED)"),
        ("Syslogk LKM", "KERNEL", "Possible Malicious Syslogk LKM rootkit installed: /proc/syslogk"),
        ("64-bit Linux Rootkit modules", "KERNEL",
         "Possible 64-bit rootkit modules installed: /lib/modules/6.1/module_init.ko"),
        ("trojaned rexedcs", "APPLICATION",
         "`rexedcs' looks trojaned (chkrootkit: INFECTED): /tmp/x/view/usr/sbin/in.rexedcs"),
    ])
