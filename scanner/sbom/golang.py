"""Go modules compiled into Go binaries, from the build info blob ('\\xff Go buildinf:').

Go 1.18+ writes the Go version and the module list inline after the 32-byte blob header, so
a streaming search of the file finds everything: nothing is held beyond the blob. Older
binaries store two pointers to Go strings instead, which need the ELF program headers to
map addresses to file offsets, and the strings usually sit *before* the blob (rodata comes
before data). For those we hold the whole file, but only for ELF files that carry a Go
build-id note in their first chunk and are no bigger than HOLD_LIMIT.
"""

import re
import struct

from scanner.sbom.common import Findings, clean, make_purl, package
from scanner.walker import Visitor

MAGIC = b"\xff Go buildinf:"
HEADER = 32
MIN_SIZE = 64 << 10  # far below any Go binary (over 1 MiB): small executables are not even sniffed
MAX_SIZE = 2 << 30  # we stream: big files only cost the read up to the blob
HOLD_LIMIT = 128 << 20  # whole-file holding, for pre-1.18 binaries only
MAX_MODINFO = 4 << 20
MAX_VERSION = 256
MAX_MODULES = 10_000
GO_NOTE = b"Go\x00\x00"  # ELF note name of .note.go.buildid, in the first page of every Go ELF
_LDFLAGS_VERSION = re.compile(r"-X[ =]\S*[vV]ersion=['\"]?(v?\d+\.\d+\.\d+[\w.+-]*)")
EXECUTABLE_MAGICS = (b"\x7fELF", b"MZ", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
                     b"\xcf\xfa\xed\xfe")


# Build info blob

def find_blob(data, start=0):
    """Offset of the first blob header at or after `start` (16-byte aligned, as Go writes it), or -1.

    The magic string also appears as a literal in binaries that read build info themselves
    (go, syft, ...): alignment and a sane header tell the real blob from those.
    """
    while True:
        at = data.find(MAGIC, start)
        if at < 0 or len(data) - at < HEADER:
            return -1
        if at % 16 == 0 and data[at + 14] in (4, 8) and data[at + 15] <= 3:
            return at
        start = at + 1


def read_inline(data, at):
    """(go version, modinfo bytes) of the Go 1.18+ blob at `at`; None when `data` ends before the blob
    does; ValueError when it is no blob (bad varint, absurd length, a version that is not Go's)."""
    version, end = _string(data, at + HEADER, MAX_VERSION)
    if version is None:
        return None
    if not version.startswith((b"go", b"devel")):
        raise ValueError("not a Go version")
    modinfo, _ = _string(data, end, MAX_MODINFO)
    if modinfo is None:
        return None
    return version.decode("utf-8", errors="replace"), modinfo


def _string(data, at, limit):
    """A uvarint-length-prefixed string at `at`: (bytes, end) or (None, at) when `data` is too short."""
    length, start = _uvarint(data, at)
    if length is None:
        return None, at
    if length > limit:
        raise ValueError("string too long")
    if start + length > len(data):
        return None, at
    return bytes(data[start:start + length]), start + length


def _uvarint(data, at):
    value = shift = 0
    while at < len(data):
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise ValueError("bad varint")
    return None, at


def read_pointers(data, at):
    """(go version, modinfo) from a pre-1.18 blob at `at` in a whole ELF file; ValueError if unreadable."""
    size, big = data[at + 14], data[at + 15] & 1
    two_words = (">" if big else "<") + ("II" if size == 4 else "QQ")
    segments = elf_segments(data)
    version_ptr, modinfo_ptr = struct.unpack_from(two_words, data, at + 16)

    def go_string(address):  # a Go string header: data pointer, length
        data_ptr, length = struct.unpack_from(two_words, data, _offset(segments, address, 2 * size))
        if length > MAX_MODINFO:
            raise ValueError("string too long")
        start = _offset(segments, data_ptr, length)
        return data[start:start + length]

    return go_string(version_ptr).decode("utf-8", errors="replace"), go_string(modinfo_ptr)


def elf_segments(data):
    """[(vaddr, offset, filesz)] of the PT_LOAD segments of an ELF file."""
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ValueError("not ELF")
    order = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # 64-bit
        phoff, = struct.unpack_from(order + "Q", data, 0x20)
        entsize, count = struct.unpack_from(order + "HH", data, 0x36)
        layout, fields = order + "IIQQQQ", (2, 3, 5)  # p_type p_flags p_offset p_vaddr p_paddr p_filesz
    else:
        phoff, = struct.unpack_from(order + "I", data, 0x1C)
        entsize, count = struct.unpack_from(order + "HH", data, 0x2A)
        layout, fields = order + "IIIII", (1, 2, 4)  # p_type p_offset p_vaddr p_paddr p_filesz
    segments = []
    for i in range(min(count, 256)):
        header = struct.unpack_from(layout, data, phoff + i * entsize)
        if header[0] == 1:  # PT_LOAD
            offset, vaddr, filesz = (header[f] for f in fields)
            segments.append((vaddr, offset, filesz))
    return segments


def _offset(segments, address, length):
    for vaddr, offset, filesz in segments:
        if vaddr <= address and address + length <= vaddr + filesz:
            return offset + address - vaddr
    raise ValueError("address outside the file")


# Module info

def parse_modinfo(data):
    """[(module path, version)] from modinfo bytes: the main module first (if any), then the dependencies.

    Lines: 'path <pkg>', 'mod <path> <version> <sum>', 'dep <path> <version> <sum>',
    '=> <path> <version> <sum>' replacing the module on the line before it, 'build <key>=<value>'.
    """
    if len(data) >= 33 and data[-17:-16] == b"\n":
        data = data[16:-16]  # the binary sentinels Go puts around the text (cut as bytes: they are not UTF-8)
    modules, ldflags, has_main = [], "", False
    for line in data.decode("utf-8", errors="replace").split("\n"):
        fields = line.split("\t")
        if fields[0] in ("mod", "dep") and len(fields) >= 3:
            has_main = has_main or (fields[0] == "mod" and not modules)
            modules.append((fields[1], fields[2]))
        elif fields[0] == "=>" and len(fields) >= 2 and modules:
            version = fields[2] if len(fields) >= 3 and fields[2] else "(devel)"  # a local directory
            modules[-1] = (fields[1], version)
        elif fields[0] == "build" and len(fields) >= 2 and fields[1].startswith("-ldflags="):
            ldflags = fields[1]
        if len(modules) >= MAX_MODULES:
            break
    # A release build of the main module says (devel); its version is often stamped with -X (syft does the same).
    stamped = _LDFLAGS_VERSION.search(ldflags[:4096])
    if has_main and modules[0][1] == "(devel)" and stamped:
        modules[0] = (modules[0][0], "v" + stamped.group(1).lstrip("v"))
    return modules


def go_purl(path, version):
    """syft's golang purl: host/owner as namespace, the repo as name, deeper path parts as subpath."""
    parts = path.split("/")
    namespace, name, subpath = "/".join(parts[:2]), parts[2] if len(parts) > 2 else "", "/".join(parts[3:])
    if len(parts) <= 2:
        namespace, name = "/".join(parts[:-1]), parts[-1]
    return make_purl("golang", namespace, name, version, subpath=subpath or None)


def packages(go_version, modinfo, findings):
    """API Packages for the modules of one binary plus the Go standard library it was built with."""
    found = []
    for path, version in parse_modinfo(modinfo):
        path, version = clean(path, 512), clean(version, 256)
        if not path or " " in path or not version:
            findings.skip("bad module line")
            continue
        try:
            found.append(package(path, version, "go-module", "go", go_purl(path, version)))
        except ValueError:
            findings.skip("bad purl")
    go_version = clean(go_version, 64)
    number = go_version[2:].split(" ")[0] if go_version.startswith("go") else ""  # "go1.21.0 X:boringcrypto"
    if number:
        purl = make_purl("golang", None, "stdlib", number)
        cpe = f"cpe:2.3:a:golang:go:{number}:-:*:*:*:*:*:*"  # as syft writes it: matchers know Go by this
        found.append(package("stdlib", go_version, "go-module", "go", purl, ["BSD-3-Clause"], [cpe]))
    return found


class GoBinaryVisitor(Visitor):
    """Streams executables, looking for the build info blob; stops reading as soon as it has it."""

    name = "golang"
    max_file_size = MAX_SIZE

    def __init__(self):
        self.findings = Findings(self.name)
        self._reset(None)

    def _reset(self, entry):
        self.entry, self.buf, self.base, self.blob_at = entry, b"", 0, -1  # base: file offset of buf[0]
        self.held, self.held_size, self.old_format = None, 0, False

    def wants(self, entry):
        # Executable bits only: a Go program is an executable, and this keeps the first-chunk
        # sniff off the millions of large data files a disk has.
        return bool(entry.mode & 0o111) and entry.size >= MIN_SIZE

    def feed(self, entry, chunk):
        if self.entry is not entry:
            self._reset(entry)
            if not chunk.startswith(EXECUTABLE_MAGICS):
                return False
            if chunk.startswith(b"\x7fELF") and GO_NOTE in chunk and entry.size <= HOLD_LIMIT:
                self.held, self.held_size = [], 0
        if self.held is not None:
            self.held.append(chunk)
            self.held_size += len(chunk)
            if self.held_size > HOLD_LIMIT:  # the file grew since lstat
                self.held = None
        if self.old_format:
            return None if self.held is not None else False  # hold on: parsed in end()
        self.buf += chunk
        return self._scan(entry)

    def _scan(self, entry):
        """Look for the blob in what we have; False when done with the file, None for more.

        Candidates that turn out not to be a blob cost O(1) each (no copying), so a file
        packed with fake magics cannot make this quadratic.
        """
        pos = 0
        while True:
            at = find_blob(self.buf, pos)
            if at < 0:
                # Keep a tail that may hold a split header; cut on 16 bytes so offsets stay aligned.
                keep = max(pos, len(self.buf) - HEADER) // 16 * 16
                self.buf, self.base = self.buf[keep:], self.base + keep
                return None
            if not self.buf[at + 15] & 2:  # pre-1.18: pointers, resolved in end() from the held file
                if self.held is None:
                    self.findings.skip("pre-1.18 build info in a file we did not hold")
                    return False
                self.blob_at, self.old_format, self.buf = self.base + at, True, b""
                return None
            try:
                strings = read_inline(self.buf, at)
            except ValueError:  # the magic as a literal in some string table: search on after it
                pos = at + 16
                continue
            if strings is None:  # the blob goes on in the next chunk: keep it from its start
                if len(self.buf) - at > MAX_MODINFO + MAX_VERSION + 2 * HEADER:
                    self.findings.skip("build info too large")
                    return False
                self.buf, self.base = self.buf[at:], self.base + at
                return None
            self._add(entry, *strings)
            return False  # done: stop reading this file

    def end(self, entry, complete):
        if self.entry is entry and self.old_format and complete and self.held is not None:
            data = b"".join(self.held)
            try:
                self._add(entry, *read_pointers(data, self.blob_at))
            except (ValueError, struct.error):
                self.findings.skip("bad pre-1.18 build info")
        self._reset(None)

    def _add(self, entry, go_version, modinfo):
        for pkg in packages(go_version, modinfo, self.findings):
            self.findings.add(pkg, entry.path)
