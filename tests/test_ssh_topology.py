"""The infoFinder `sshTopology` scanner: fingerprints that match ssh-keygen -l exactly."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from app.validation import schema_validator
from scanner.infofinder import SshTopologyScanner
from scanner.infofinder import ssh_keys
from conftest import run_scanners, write_file

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen (openssh-client)")


def keygen(path, kind, passphrase="", comment=None, key_format=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    command = ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-f", str(path)]
    if kind == "rsa":
        command += ["-b", "2048"]
    if comment is not None:
        command += ["-C", comment]
    if key_format:
        command += ["-m", key_format]
    subprocess.run(command, check=True, capture_output=True)
    return path


def keygen_line(path):
    """What ssh-keygen -l -f prints for one key file."""
    return subprocess.run(["ssh-keygen", "-l", "-f", str(path)], check=True, capture_output=True,
                          text=True).stdout.strip()


def with_comment(line, comment):
    """ssh-keygen's line for a key with `comment` in place of the one it printed."""
    bits, fingerprint, rest = line.split(" ", 2)
    key_type = re.search(r"\(([A-Z0-9-]+)\)$", rest).group(1)
    return f"{bits} {fingerprint} {comment} ({key_type})"


def public_text(path):
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Keys generated once for the module, in a directory outside any scanned tree."""
    store = tmp_path_factory.mktemp("keys")
    return {
        "ed": keygen(store / "ed", "ed25519", comment="alice@laptop"),
        "rsa": keygen(store / "rsa", "rsa", comment="ci deploy key"),
        "ecdsa": keygen(store / "ecdsa", "ecdsa", comment="bob@desk"),
        "other": keygen(store / "other", "ed25519", comment="other"),
    }


@pytest.fixture()
def validator():
    return schema_validator("InfoFinderInfo")


def by_path(results):
    found = {}
    for item in results:
        found.setdefault(item["path"], []).append((item["type"], item["data"]))
    return found


def test_host_keys(tmp_path):
    root = tmp_path / "root"
    etc_ssh = root / "etc/ssh"
    ed = keygen(etc_ssh / "ssh_host_ed25519_key", "ed25519", comment="root@web1")
    ecdsa = keygen(etc_ssh / "ssh_host_ecdsa_key", "ecdsa", comment="root@web1")
    (etc_ssh / "ssh_host_ecdsa_key.pub").unlink()  # the private key alone: its comment is inside it
    rsa = keygen(tmp_path / "rsa_host", "rsa", comment="root@web1")
    shutil.copy(f"{rsa}.pub", etc_ssh / "ssh_host_rsa_key.pub")  # the public half alone
    write_file(root, "/etc/ssh/sshd_config", "PermitRootLogin no\n")

    found = by_path(run_scanners(SshTopologyScanner(str(root), {})).results)

    assert found == {
        "/etc/ssh/ssh_host_ed25519_key": [("SSHDaemonKeyFingerprint", keygen_line(ed))],
        "/etc/ssh/ssh_host_ecdsa_key": [("SSHDaemonKeyFingerprint", keygen_line(ecdsa))],
        "/etc/ssh/ssh_host_rsa_key.pub": [("SSHDaemonKeyFingerprint", keygen_line(f"{rsa}.pub"))],
    }
    assert "root@web1 (ECDSA)" in keygen_line(ecdsa)


def test_authorized_keys_and_known_hosts(tmp_path, keys, validator):
    root = tmp_path / "root"
    write_file(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n")
    ed, rsa, ecdsa = (public_text(keys[name]) for name in ("ed", "rsa", "ecdsa"))
    write_file(root, "/home/alice/.ssh/authorized_keys", "\n".join([
        "# keys allowed to log in as alice",
        "",
        f'command="echo \\"a b\\" c",no-pty,from="10.0.0.0/8" {ed} alice key with spaces',
        f"  {rsa}",
        f"restrict {ecdsa} bob@desk",
        "ssh-ed25519 AAAA!!not-base64 broken",
        "ssh-rsa " + ed.split()[1] + " type lies about the blob",
        'command="never closed ' + ed,
        "",
    ]), mode=0o600)
    hashed = "|1|F1E1KeoE/eEWhi10WpGv4OdiO6Y=|3988QV0VE8wmZL7suNrYQLITLCg="
    write_file(root, "/home/alice/.ssh/known_hosts", "\n".join([
        f"github.com,140.82.121.4 {ed}",
        f"{hashed} {rsa}",
        f"[git.example.com]:2222 {ecdsa} trailing comment",
        f"@cert-authority *.example.org {rsa}",
        f"@revoked old.example.org {ed}",
        "@bogus host " + ed,
        "onlyahost",
    ]))
    write_file(root, "/root/.ssh/authorized_keys", f"{ed}\n")
    write_file(root, "/etc/ssh/ssh_known_hosts", f"db1.internal {ecdsa}\n")

    result = run_scanners(SshTopologyScanner(str(root), {}))
    found = by_path(result.results)

    line = {name: keygen_line(f"{keys[name]}.pub") for name in ("ed", "rsa", "ecdsa")}
    assert sorted(found["/home/alice/.ssh/authorized_keys"]) == sorted([
        ("SSHAuthorizedKeyFingerprint", line["rsa"].replace("ci deploy key", "no comment")),
        ("SSHAuthorizedKeyFingerprint", with_comment(line["ecdsa"], "bob@desk")),
        ("SSHAuthorizedKeyFingerprint", with_comment(line["ed"], "alice key with spaces")),
    ])
    assert sorted(found["/home/alice/.ssh/known_hosts"]) == sorted([
        ("SSHKnownHostFingerprint", with_comment(line["ed"], "github.com,140.82.121.4")),
        ("SSHKnownHostFingerprint", with_comment(line["rsa"], hashed)),
        ("SSHKnownHostFingerprint", with_comment(line["ecdsa"], "[git.example.com]:2222")),
        ("SSHKnownHostFingerprint", with_comment(line["rsa"], "@cert-authority *.example.org")),
        ("SSHKnownHostFingerprint", with_comment(line["ed"], "@revoked old.example.org")),
    ])
    assert found["/root/.ssh/authorized_keys"] == [
        ("SSHAuthorizedKeyFingerprint", with_comment(line["ed"], "no comment"))]
    assert found["/etc/ssh/ssh_known_hosts"] == [
        ("SSHKnownHostFingerprint", with_comment(line["ecdsa"], "db1.internal"))]
    # The plain known_hosts lines are exactly what ssh-keygen -l prints for that file.
    plain = subprocess.run(["ssh-keygen", "-l", "-f", str(root / "etc/ssh/ssh_known_hosts")],
                           capture_output=True, text=True).stdout.strip()
    assert found["/etc/ssh/ssh_known_hosts"][0][1] == plain
    assert "/home/alice/.ssh/authorized_keys: skipped 3 malformed or unreadable key(s)" in result.notes
    assert "/home/alice/.ssh/known_hosts: skipped 2 malformed or unreadable key(s)" in result.notes
    for item in result.results:
        validator.validate(item)


def test_private_keys(tmp_path):
    root = tmp_path / "root"
    write_file(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"
                               "alice:x:1000:1000::/home/alice:/bin/bash\n"
                               "git:x:998:998::/srv/git:/usr/bin/git-shell\n")
    alice = root / "home/alice"
    plain = keygen(alice / ".ssh/id_ed25519", "ed25519", comment="alice@laptop")
    locked = keygen(alice / ".ssh/id_rsa", "rsa", passphrase="correct horse", comment="secret comment")
    Path(f"{locked}.pub").unlink()  # encrypted, no .pub: the fingerprint still shows, the comment cannot
    pem = keygen(alice / "projects/deploy/deploy.pem", "rsa", key_format="PEM", comment="x")
    Path(f"{pem}.pub").unlink()
    pkcs8 = keygen(alice / ".ssh/work_ecdsa", "ecdsa", key_format="PKCS8")
    Path(f"{pkcs8}.pub").unlink()
    pem_locked = keygen(root / "root/.ssh/legacy", "rsa", passphrase="hunter22", key_format="PEM", comment="leg")
    pem_gone = keygen(root / "root/.ssh/lost", "rsa", passphrase="hunter22", key_format="PEM")
    Path(f"{pem_gone}.pub").unlink()  # encrypted PEM and no .pub: nothing to fingerprint
    git = keygen(root / "srv/git/.ssh/id_ecdsa", "ecdsa", comment="git@server")
    keygen(root / "srv/other/.ssh/id_ed25519", "ed25519")  # not anyone's home: not looked at
    keygen(root / "opt/app/key", "ed25519")  # not under a home: the secrets family's business
    write_file(root, "/home/alice/notes.txt", "-----BEGIN OPENSSH PRIVATE KEY-----\nnot base64 at all!\n")

    result = run_scanners(SshTopologyScanner(str(root), {}))
    found = by_path(result.results)

    def expect(path):
        return [("SSHPrivateKeyFingerprint", keygen_line(path))]

    assert found == {
        "/home/alice/.ssh/id_ed25519": expect(plain),
        "/home/alice/.ssh/id_rsa": expect(locked),
        "/home/alice/projects/deploy/deploy.pem": expect(pem),
        "/home/alice/.ssh/work_ecdsa": expect(pkcs8),
        "/root/.ssh/legacy": expect(pem_locked),
        "/srv/git/.ssh/id_ecdsa": expect(git),
    }
    assert "no comment (RSA)" in found["/home/alice/.ssh/id_rsa"][0][1]
    assert "leg (RSA)" in found["/root/.ssh/legacy"][0][1]
    assert "/root/.ssh/lost: skipped 1 malformed or unreadable key(s)" in result.notes
    assert "/home/alice/notes.txt: skipped 1 malformed or unreadable key(s)" in result.notes


def test_homes_come_from_the_targets_passwd(tmp_path, keys):
    root = tmp_path / "root"
    write_file(root, "/etc/passwd", "svc:x:500:500::/var/lib/svc:/bin/sh\n")
    write_file(root, "/var/lib/svc/.ssh/authorized_keys", public_text(keys["other"]) + " svc\n")
    write_file(root, "/var/lib/nobody/.ssh/authorized_keys", public_text(keys["other"]) + " nobody\n")

    found = by_path(run_scanners(SshTopologyScanner(str(root), {})).results)

    assert list(found) == ["/var/lib/svc/.ssh/authorized_keys"]


def test_certificates_fingerprint_the_certified_key(tmp_path, keys):
    ca = keygen(tmp_path / "ca", "ed25519")
    user = tmp_path / "user"
    shutil.copy(keys["ed"], user)
    shutil.copy(f"{keys['ed']}.pub", f"{user}.pub")
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "alice", "-n", "alice", f"{user}.pub"], check=True)
    certificate = Path(f"{user}-cert.pub").read_text().strip()

    key, comment = ssh_keys.parse_public(certificate)

    assert key.describe(comment) == keygen_line(f"{user}-cert.pub")
    assert key.type_name == "ED25519-CERT"


def test_empty_tree(tmp_path):
    (tmp_path / "root").mkdir()
    result = run_scanners(SshTopologyScanner(str(tmp_path / "root"), {}))
    assert result.results == [] and result.errors == []
