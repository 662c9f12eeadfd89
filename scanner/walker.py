"""One safe traversal of a mounted filesystem that feeds every content-based scan family.

The scanner reads the disk once: `walk()` visits each directory of the root, decides from
lstat alone what every name is, and reads each regular file at most once, sequentially,
handing every chunk to all the visitors (families, cataloguers) that asked for the file.

The tree is hostile. The walk never follows a symlink, never opens a FIFO, socket or
device, moves between directories only through directory fds opened with O_NOFOLLOW (so
a directory swapped for a link cannot redirect it and deep trees never hit PATH_MAX),
remembers every directory it entered (cycles, bind mounts), bounds what it reads, and
keeps going when a name vanishes, a read fails or a visitor raises.
"""

import errno
import os
import resource
import time
from dataclasses import dataclass, field

from scanner.safe_fs import (UnsafeFile, kind_of, open_dir_at, open_in_root, open_regular_at, read_in_root,
                             swaps_are_harmless)

__all__ = ["Entry", "Visitor", "WholeFileVisitor", "WalkStats", "walk", "open_in_root", "read_in_root", "display"]

DEFAULT_MAX_FILE_SIZE = 256 * 1024**2
DEFAULT_CHUNK_SIZE = 1024**2
MAX_EXAMPLES = 10
MAX_HELD_DIR_FDS = 32  # only the deepest directories keep their fd; others are reopened via '..'

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def display(text):
    """`text` made safe to show: undecodable bytes, control and other unprintable characters escaped.

    Backslashes are doubled too, so a name that spells an escape ('a\\\\n') cannot pass
    for a different one (a newline). Never raises.
    """
    if not isinstance(text, str):
        text = repr(text)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape(ch) for ch in text)


def _escape(ch):
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    if ch.isprintable():
        return ch
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a raw byte that os.fsdecode kept as a lone surrogate
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


@dataclass(frozen=True, slots=True)
class Entry:
    """A regular file found by the walk. `path` is inside the scanned root and '/'-rooted."""

    path: str
    size: int
    mode: int
    mtime: float

    @property
    def display_path(self) -> str:
        return display(self.path)


class Visitor:
    """A consumer of file contents. Subclass it; the walker isolates whatever it raises.

    For every regular file the walker asks `wants()` (from path, size and mode, before any
    read). A visitor that wants the file gets its content through `feed()`, chunk by chunk,
    then exactly one `end()`. `complete` is True only when the visitor received the whole
    file: False when the read failed, the file outgrew `max_file_size`, `feed()` raised, or
    the visitor itself stopped by returning False. Every directory the walk enters (the root
    first) goes to `directory()` with its fstat result. `finish()` runs once after the walk.
    """

    name: str = "visitor"
    max_file_size: int | None = None  # None: the walker's max_file_size

    def wants(self, entry: Entry) -> bool:
        return False

    def feed(self, entry: Entry, chunk: bytes) -> bool | None:
        return None

    def end(self, entry: Entry, complete: bool) -> None:
        pass

    def directory(self, path: str, st: os.stat_result) -> None:
        pass

    def finish(self) -> None:
        pass


class WholeFileVisitor(Visitor):
    """A visitor that wants whole files: collects one file's chunks, then calls `handle()`.

    Memory stays bounded: the walker never feeds a visitor more than its max_file_size
    (or the walker's limit), and files that were not read completely are not handled.
    """

    def handle(self, entry: Entry, data: bytes) -> None:
        pass

    def feed(self, entry, chunk):
        if getattr(self, "_whole_entry", None) is not entry:
            self._whole_entry, self._whole_chunks, self._whole_size = entry, [], 0
        self._whole_size += len(chunk)
        if self.max_file_size is not None and self._whole_size > self.max_file_size:
            self._whole_chunks = []  # over the limit: drop it now, end() will say incomplete
            return False
        self._whole_chunks.append(chunk)
        return None

    def end(self, entry, complete):
        chunks = self._whole_chunks if getattr(self, "_whole_entry", None) is entry else []
        self._whole_entry, self._whole_chunks = None, []
        if complete:
            self.handle(entry, b"".join(chunks))


@dataclass
class WalkStats:
    root: str
    files: int = 0
    directories: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count (reasons that occurred)
    examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> up to 10 display paths

    def skip(self, reason, example):
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(example)


def walk(root, visitors, *, one_file_system=True, max_file_size=DEFAULT_MAX_FILE_SIZE,
         chunk_size=DEFAULT_CHUNK_SIZE):
    """Walk `root` once, feeding regular files to the visitors that want them; returns WalkStats.

    Raises OSError only when `root` itself cannot be opened as a directory.
    """
    return _Walk(root, visitors, one_file_system, max_file_size, chunk_size).run()


@dataclass
class _Dir:
    path: str  # in-root path, '/'-rooted
    ident: tuple  # (st_dev, st_ino)
    names: list  # entries not visited yet, reverse-sorted so pop() yields sorted order
    fd: int | None  # None while released to bound open fds


class _Walk:
    def __init__(self, root, visitors, one_file_system, max_file_size, chunk_size):
        self.visitors = list(visitors)
        # Only the few that look at directories are called for each one.
        self.directory_visitors = [v for v in self.visitors if type(v).directory is not Visitor.directory]
        self.one_file_system = one_file_system
        self.max_file_size = max_file_size
        self.chunk_size = chunk_size
        self.stats = WalkStats(root=root)
        self.seen_dirs = set()
        self.held_fds = _fd_budget()
        self.stack = []

    def run(self):
        started = time.monotonic()
        root_fd = os.open(self.stats.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        root_st = os.fstat(root_fd)
        self.root_dev = root_st.st_dev
        # Other mounts below the root may be writable and allow devices: pin files there.
        self.pin = not (self.one_file_system and swaps_are_harmless(root_fd))
        try:
            self._enter("/", root_fd, root_st)
            while self.stack:
                top = self.stack[-1]
                if top.names and top.fd is not None:
                    self._visit(top, top.names.pop())
                else:
                    self._leave()
        finally:
            for frame in self.stack:
                _close(frame.fd)
        for visitor in self.visitors:
            self._call(visitor, "finish", "(finish)")
        self.stats.seconds = time.monotonic() - started
        return self.stats

    # Directories

    def _enter(self, path, fd, st):
        """List an opened directory and push it; takes ownership of `fd`."""
        try:
            names = sorted(os.listdir(fd), reverse=True)
        except OSError as exc:
            os.close(fd)
            self.stats.skip(_reason(exc), display(path))
            return
        self.stats.directories += 1
        self.seen_dirs.add((st.st_dev, st.st_ino))
        for visitor in self.directory_visitors:
            self._call(visitor, "directory", path, path, st)
        self.stack.append(_Dir(path, (st.st_dev, st.st_ino), names, fd))
        # Keep only the deepest few fds open: a 10,000-deep tree must not exhaust RLIMIT_NOFILE.
        if len(self.stack) > self.held_fds:
            frame = self.stack[-1 - self.held_fds]
            frame.fd = _close(frame.fd)

    def _leave(self):
        child = self.stack.pop()
        parent = self.stack[-1] if self.stack else None
        if parent is not None and parent.fd is None:
            parent.fd = self._reopen_parent(child, parent)
        _close(child.fd)

    def _reopen_parent(self, child, parent):
        """Get a released ancestor's fd back through the child's '..', if it is still the same directory."""
        try:
            if child.fd is None:
                raise FileNotFoundError(errno.ENOENT, "lost the way back")
            fd = open_dir_at("..", child.fd)
        except OSError as exc:
            self._lose(parent, _reason(exc))
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != parent.ident:  # renamed away while we were below it
            os.close(fd)
            self._lose(parent, "vanished")
            return None
        return fd

    def _lose(self, frame, reason):
        if frame.names:  # only worth reporting when entries are left unvisited
            self.stats.skip(reason, display(frame.path))
            frame.names.clear()

    def _descend(self, parent, name, path, st):
        if (st.st_dev, st.st_ino) in self.seen_dirs:
            self.stats.skip("cycle", display(path))
            return
        try:
            fd = open_dir_at(name, parent.fd)
        except OSError as exc:
            self.stats.skip(_reason(exc), display(path))
            return
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):  # swapped since lstat
            os.close(fd)
            self.stats.skip("vanished", display(path))
            return
        self._enter(path, fd, opened)

    # Names

    def _visit(self, parent, name):
        path = ("" if parent.path == "/" else parent.path) + "/" + name
        if "/" in name or "\0" in name or name in (".", ".."):
            # Only a crafted filesystem image lists such a name; looking it up would leave the directory.
            self.stats.skip("bad-name", display(path))
            return
        try:
            st = os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
        except OSError as exc:
            self.stats.skip(_reason(exc), display(path))
            return
        kind = kind_of(st.st_mode)
        if kind == "symlink":
            self.stats.skip("symlink", display(path))
        elif self.one_file_system and st.st_dev != self.root_dev:
            self.stats.skip("other-filesystem", display(path))
        elif kind == "directory":
            self._descend(parent, name, path, st)
        elif kind == "regular":
            self._file(parent, name, Entry(path, st.st_size, st.st_mode, st.st_mtime), st)
        else:
            self.stats.skip(kind, display(path))

    # Files

    def _file(self, parent, name, entry, st):
        self.stats.files += 1
        wanting = [v for v in self.visitors if _truthy(self._call(v, "wants", entry, entry))]
        if not wanting:
            return
        readers = [(v, limit) for v in wanting if entry.size <= (limit := self._limit(v))]
        if not readers:
            self.stats.skip("too-large", entry.display_path)
            return
        try:
            fd = open_regular_at(name, parent.fd, st, pin=self.pin)
        except OSError as exc:
            self.stats.skip(_reason(exc), entry.display_path)
            return
        try:
            self._read(fd, entry, readers)
        finally:
            os.close(fd)

    def _limit(self, visitor):
        limit = getattr(visitor, "max_file_size", None)
        return self.max_file_size if limit is None else limit

    def _read(self, fd, entry, readers):
        """Read the file once, in order, feeding each reader until it stops, its limit passes, or EOF."""
        if entry.size > self.chunk_size:  # readahead only matters past the first chunk
            _advise(fd, "POSIX_FADV_SEQUENTIAL")
        offset = 0
        try:
            while readers:
                chunk = os.read(fd, self.chunk_size)
                if not chunk:
                    break
                offset += len(chunk)
                self.stats.bytes_read += len(chunk)
                readers = [(v, limit) for v, limit in readers if self._feed(v, entry, chunk, offset, limit)]
        except OSError as exc:
            self.stats.skip(_reason(exc), entry.display_path)
            for visitor, _ in readers:
                self._call(visitor, "end", entry, entry, False)
            return
        finally:
            if offset > self.chunk_size:  # a large file: don't let it push others out of the page cache
                _advise(fd, "POSIX_FADV_DONTNEED")
        for visitor, _ in readers:
            self._call(visitor, "end", entry, entry, True)

    def _feed(self, visitor, entry, chunk, offset, limit):
        """Feed one chunk; False (after ending the visitor's file) when this visitor is done."""
        if offset > limit:  # the file grew past the limit since lstat
            self._call(visitor, "end", entry, entry, False)
            return False
        result = self._call(visitor, "feed", entry, entry, chunk)
        if result is _FAILED or result is False:
            self._call(visitor, "end", entry, entry, False)
            return False
        return True

    def _call(self, visitor, method, at, *args):
        """Call a visitor method; a visitor that raises is recorded, not allowed to stop the walk.

        `at` says where, for the record: the Entry or the in-root path (displayed only on
        error: this is the hot path).
        """
        try:
            return getattr(visitor, method)(*args)
        except Exception as exc:  # noqa: BLE001 - hostile content must not kill the scan
            name = display(getattr(visitor, "name", type(visitor).__name__))
            where = at.display_path if isinstance(at, Entry) else display(at)
            self.stats.skip("visitor-error", f"{name}: {method}: {where}: {display(repr(exc))[:300]}")
            return _FAILED


_FAILED = object()


def _truthy(result):
    return result is not _FAILED and bool(result)


def _reason(exc):
    """The skip reason for an OSError met while looking at or opening a name."""
    if isinstance(exc, UnsafeFile):
        return exc.reason
    if exc.errno in (errno.ENOENT, errno.ESTALE, errno.ELOOP, errno.ENOTDIR):
        return "vanished"  # gone, or no longer the kind of file lstat said
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission"
    return "read-error"


def _fd_budget():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_HELD_DIR_FDS
    return max(1, min(MAX_HELD_DIR_FDS, soft // 8))


def _advise(fd, advice):
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, 0, 0, getattr(os, advice))
        except OSError:
            pass  # only a hint


def _close(fd):
    if fd is not None:
        os.close(fd)
    return None
