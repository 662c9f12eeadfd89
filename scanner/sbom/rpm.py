"""RPM packages (RHEL, Rocky, Alma, Fedora, CentOS, openSUSE) from the three rpmdb formats.

Each format stores the same thing: one rpm header blob per installed package.
- sqlite `rpmdb.sqlite` (rpm >= 4.16): table Packages(hnum, blob). Opened with Python's
  sqlite3 from a private temp copy, so an unflushed -wal file seen in the walk is applied.
- BerkeleyDB hash `Packages` (rpm < 4.16, RHEL <= 8, CentOS 7): parsed here, just enough of
  the hash page format to follow each value's overflow page chain.
- ndb `Packages.db` (openSUSE): a slot table pointing at 'BlbS' blobs, parsed here.
The header blob format (index entries + data store) is parsed here too; no rpm binary needed.
"""

import os
import sqlite3
import struct
import tempfile
import time
from contextlib import closing

from scanner.sbom.common import Findings, clean, make_purl, package
from scanner.walker import WholeFileVisitor

DB_DIRS = ("/var/lib/rpm/", "/usr/lib/sysimage/rpm/")
DB_FILES = ("rpmdb.sqlite", "rpmdb.sqlite-wal", "Packages", "Packages.db")
MAX_DB = 512 << 20  # a RHEL 7 host with 3,000 packages has a ~150 MiB Packages file
MAX_BLOB = 64 << 20  # rpm's own limit for one header (HEADER_DATA_MAX is 256 MiB; real ones are < 1 MiB)
MAX_PACKAGES = 200_000
SQLITE_SECONDS = 60  # a hostile database (a view on a recursive query) must not hang the scan

TAGS = {1000: "name", 1001: "version", 1002: "release", 1003: "epoch", 1014: "license", 1022: "arch",
        1044: "sourcerpm"}
INT32, STRING, STRING_ARRAY, I18NSTRING = 4, 6, 8, 9


# Header blobs

def parse_header(blob):
    """The fields we use from one header blob; ValueError when it is malformed."""
    if len(blob) < 8:
        raise ValueError("short header")
    count, data_len = struct.unpack_from(">II", blob)
    store = 8 + 16 * count
    if not 0 < count <= 0xFFFF or data_len > MAX_BLOB or store + data_len > len(blob):
        raise ValueError("bad header size")
    fields = {}
    for i in range(count):
        tag, kind, offset, items = struct.unpack_from(">iIII", blob, 8 + 16 * i)
        key = TAGS.get(tag)
        if key is None or key in fields or offset >= data_len:
            continue
        if kind in (STRING, STRING_ARRAY, I18NSTRING):  # arrays: the first string (default locale)
            end = blob.find(b"\0", store + offset, store + data_len)
            if end < 0:
                raise ValueError("unterminated string")
            fields[key] = blob[store + offset:end].decode("utf-8", errors="replace")
        elif kind == INT32 and items and offset + 4 <= data_len:
            fields[key] = struct.unpack_from(">I", blob, store + offset)[0]
    return fields


def header_package(fields, distro):
    """An API Package from header fields; ValueError when name or version is missing."""
    name, version, release = (clean(fields.get(k), 256) for k in ("name", "version", "release"))
    if not name or not version:
        raise ValueError("no name or version")
    epoch = fields.get("epoch")
    epoch = str(epoch) if isinstance(epoch, int) else ""
    full = f"{version}-{release}" if release else version
    namespace = distro.id if distro else "redhat"
    qualifiers = {"arch": clean(fields.get("arch"), 32), "epoch": epoch,
                  "upstream": clean(fields.get("sourcerpm")), "distro": distro.qualifier() if distro else ""}
    purl = make_purl("rpm", namespace, name, full, qualifiers)
    # syft's convention for the version field: [epoch:]version-release
    return package(name, f"{epoch}:{full}" if epoch else full, "rpm", "", purl,
                   licenses=[clean(fields.get("license"))])


# sqlite

def sqlite_blobs(db_bytes, wal_bytes=b""):
    """Header blobs from an rpmdb.sqlite (and its -wal, when the walk found one)."""
    with tempfile.TemporaryDirectory(prefix="vmclarity-rpmdb-") as tmp:
        path = os.path.join(tmp, "rpmdb.sqlite")
        with open(path, "wb") as out:
            out.write(db_bytes)
        if wal_bytes:
            with open(path + "-wal", "wb") as out:
                out.write(wal_bytes)
        with closing(sqlite3.connect(path)) as conn:
            deadline = time.monotonic() + SQLITE_SECONDS
            conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
            conn.execute("PRAGMA trusted_schema = OFF")
            kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'Packages'").fetchone()
            if kind != ("table",):  # a view could run arbitrary queries
                raise ValueError("no Packages table")
            rows = conn.execute("SELECT blob FROM Packages LIMIT ?", (MAX_PACKAGES,)).fetchall()
    return [bytes(row[0]) for row in rows if isinstance(row[0], bytes)]


# BerkeleyDB hash

BDB_HASH_MAGIC = 0x061561
PAGE_HEADER = 26  # lsn 8, pgno 4, prev 4, next 4, entries 2, hf_offset 2, level 1, type 1
P_HASH_UNSORTED, P_HASH, P_OVERFLOW = 2, 13, 7
H_KEYDATA, H_OFFPAGE = 1, 3


def bdb_blobs(data):
    """Header blobs from a BerkeleyDB hash database: the value of every key/value pair on every hash page."""
    order = _bdb_byte_order(data)
    page_size, last_page = struct.unpack_from(order + "I", data, 20)[0], struct.unpack_from(order + "I", data, 32)[0]
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        raise ValueError("bad page size")
    blobs = []
    for number in range(1, min(last_page, len(data) // page_size - 1) + 1):
        page = data[number * page_size:(number + 1) * page_size]
        if page[25] not in (P_HASH, P_HASH_UNSORTED):
            continue
        entries = min(struct.unpack_from(order + "H", page, 20)[0], (page_size - PAGE_HEADER) // 2)
        offsets = struct.unpack_from(f"{order}{entries}H", page, PAGE_HEADER)
        # Items come in key/value pairs, stored from the end of the page down: a value ends where its key starts.
        for key_at, value_at in zip(offsets[0::2], offsets[1::2]):
            if not value_at < key_at <= page_size:
                continue
            if page[value_at] == H_OFFPAGE and value_at + 12 <= page_size:
                first, length = struct.unpack_from(order + "II", page, value_at + 4)
                blobs.append(_bdb_overflow(data, order, page_size, first, length))
            elif page[value_at] == H_KEYDATA and key_at - value_at > 24:  # small headers stay on the page;
                blobs.append(page[value_at + 1:key_at])  # shorter values (key 0's counter) are no header
            if len(blobs) >= MAX_PACKAGES:
                return blobs
    return blobs


def _bdb_byte_order(data):
    if len(data) < 512:
        raise ValueError("not a BerkeleyDB file")
    for order in "<>":
        if struct.unpack_from(order + "I", data, 12)[0] == BDB_HASH_MAGIC:
            return order
    raise ValueError("not a BerkeleyDB hash database")


def _bdb_overflow(data, order, page_size, page_number, length):
    """Concatenate a value's overflow pages; a chain that loops or leaves the file is an error."""
    if length > MAX_BLOB:
        raise ValueError("value too large")
    parts, total, seen = [], 0, set()
    while page_number and total < length:
        start = page_number * page_size
        if page_number in seen or start + page_size > len(data):
            raise ValueError("broken overflow chain")
        seen.add(page_number)
        next_page, used, kind = (struct.unpack_from(order + "I", data, start + 16)[0],
                                 struct.unpack_from(order + "H", data, start + 22)[0], data[start + 25])
        if kind != P_OVERFLOW:
            raise ValueError("not an overflow page")
        used = min(used, page_size - PAGE_HEADER, length - total)  # hf_offset: bytes used on this page
        parts.append(data[start + PAGE_HEADER:start + PAGE_HEADER + used])
        total += used
        page_number = next_page
    return b"".join(parts)


# ndb

NDB_MAGIC, NDB_SLOT_MAGIC, NDB_BLOB_MAGIC = b"RpmP", b"Slot", b"BlbS"
NDB_SLOTS_PER_PAGE = 4096 // 16


def ndb_blobs(data):
    """Header blobs from an ndb Packages.db: slot pages after a 32-byte header, blobs in 16-byte blocks."""
    if len(data) < 32 or data[:4] != NDB_MAGIC:
        raise ValueError("not an ndb database")
    version, _generation, slot_pages = struct.unpack_from("<III", data, 4)
    if version != 0 or not 0 < slot_pages <= 2048:
        raise ValueError("bad ndb header")
    blobs = []
    slots_end = min(slot_pages * 4096, len(data))
    for offset in range(32, slots_end - 15, 16):  # the header takes the first two slots
        magic, pkg_index, block, _blocks = struct.unpack_from("<4sIII", data, offset)
        if magic != NDB_SLOT_MAGIC:
            raise ValueError("bad slot")
        if pkg_index == 0:
            continue  # an empty slot
        start = block * 16
        if start + 16 > len(data):
            raise ValueError("slot points outside the file")
        blob_magic, blob_index, _checksum, length = struct.unpack_from("<4sIII", data, start)
        if blob_magic != NDB_BLOB_MAGIC or blob_index != pkg_index or start + 16 + length > len(data):
            raise ValueError("bad blob")
        blobs.append(data[start + 16:start + 16 + length])
        if len(blobs) >= MAX_PACKAGES:
            break
    return blobs


class RpmVisitor(WholeFileVisitor):
    """Parses rpmdb files as the walk feeds them; an rpmdb.sqlite waits for the end of the walk,
    in case its -wal (which sorts after it) turns up."""

    name = "rpm"
    max_file_size = MAX_DB

    def __init__(self, distro):
        self.distro = distro
        self.findings = Findings(self.name)
        self.sqlite = {}  # path -> bytes, of rpmdb.sqlite and rpmdb.sqlite-wal files

    def wants(self, entry):
        directory, _, base = entry.path.rpartition("/")
        return directory + "/" in DB_DIRS and base in DB_FILES and self.findings.fits(entry, MAX_DB)

    def handle(self, entry, data):
        if "rpmdb.sqlite" in entry.path:
            self.sqlite[entry.path] = data
        else:
            self._add(entry.path, ndb_blobs if entry.path.endswith(".db") else bdb_blobs, data)

    def finish(self):
        for path, data in self.sqlite.items():
            if path.endswith(".sqlite"):
                self._add(path, sqlite_blobs, data, self.sqlite.get(path + "-wal", b""))
        self.sqlite = {}

    def _add(self, path, read_blobs, *data):
        try:
            blobs = read_blobs(*data)
        except (ValueError, struct.error, sqlite3.Error, OSError) as exc:
            self.findings.skip(f"unreadable database ({type(exc).__name__})")
            return
        for blob in blobs:
            try:
                self.findings.add(header_package(parse_header(blob), self.distro), path)
            except (ValueError, struct.error):
                self.findings.skip("bad header")
