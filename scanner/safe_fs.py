"""Root-confined file access on a mounted filesystem that belongs to someone else.

Every path inside the scanned root is attacker-controlled: a component may be a symlink to
the scanner's own /etc, a FIFO that blocks open(), a device whose driver acts on open(), or
a directory swapped for a link between two system calls. So nothing here opens a path
string from the top: names are looked up one component at a time relative to a directory
fd, with O_NOFOLLOW, and a regular file is only opened for reading after fstat has proved
it is the regular file we expected.
"""

import errno
import os
import stat

MAX_LINK_HOPS = 40  # the kernel's own limit (MAXSYMLINKS)
MAX_LOOKUPS = 100_000  # bounds the work a hostile chain of links and '..' can cause

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
O_NOATIME = getattr(os, "O_NOATIME", 0)
O_PATH = getattr(os, "O_PATH", 0)

_KINDS = [
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "device"),
    (stat.S_ISBLK, "device"),
]


class UnsafeFile(OSError):
    """The path is not the regular file we expected; `reason` says what it is instead."""

    def __init__(self, reason, filename=None):
        code = errno.EISDIR if reason == "directory" else errno.EINVAL
        super().__init__(code, f"not a regular file ({reason})", filename)
        self.reason = reason


def kind_of(mode):
    """'regular', or the walker's skip reason for any other file type."""
    if stat.S_ISREG(mode):
        return "regular"
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not-regular"


def open_noatime(name, flags, dir_fd=None):
    """open() that leaves access times alone when we may (O_NOATIME needs ownership or CAP_FOWNER)."""
    if O_NOATIME:
        try:
            return os.open(name, flags | O_NOATIME, dir_fd=dir_fd)
        except PermissionError as exc:
            if exc.errno != errno.EPERM:
                raise
    return os.open(name, flags, dir_fd=dir_fd)


def open_dir_at(name, dir_fd):
    """Open a subdirectory without following a link. O_DIRECTORY fails before any FIFO or device is opened."""
    return open_noatime(name, DIR_FLAGS, dir_fd=dir_fd)


def open_regular_at(name, dir_fd, expected=None, pin=True):
    """Open `name` (in directory `dir_fd`) for reading, only if it is a regular file.

    `expected` is the lstat result the caller decided on; a file swapped since then
    (different st_dev/st_ino, or now a FIFO/device/link) raises UnsafeFile. With `pin`, and
    where the system allows, an O_PATH descriptor pins the inode first: it has none of
    open()'s side effects (a device driver would run), and the real open goes through
    /proc/self/fd only after fstat proved the inode is the regular file we expected.
    Without it, O_NONBLOCK still keeps a swapped-in FIFO from blocking us.
    """
    if pin and _can_reopen_o_path():
        pin = os.open(name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            _check_regular(os.fstat(pin), expected, name)
            fd = open_noatime(f"/proc/self/fd/{pin}", READ_FLAGS)
        finally:
            os.close(pin)
    else:
        fd = open_noatime(name, READ_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        _check_regular(os.fstat(fd), expected, name)
    except OSError:
        os.close(fd)
        raise
    return fd


def _check_regular(st, expected, name):
    kind = kind_of(st.st_mode)
    if kind != "regular":
        raise UnsafeFile(kind, name)
    if expected is not None and (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino):
        raise UnsafeFile("vanished", name)


def swaps_are_harmless(fd):
    """Whether the mount holding `fd` makes pinning pointless (it costs ~10 us a file).

    On a read-only mount (how the scanner mounts snapshots) nothing can be swapped between
    our lstat and open; on a nodev mount a swapped-in device cannot be opened, and a FIFO
    opened with O_NONBLOCK neither blocks nor is read.
    """
    return bool(os.fstatvfs(fd).f_flag & (os.ST_RDONLY | os.ST_NODEV))


_O_PATH_REOPEN = None


def _can_reopen_o_path():
    """Whether /proc/self/fd can turn an O_PATH descriptor into a readable one (checked once)."""
    global _O_PATH_REOPEN
    if _O_PATH_REOPEN is None:
        _O_PATH_REOPEN = False
        if O_PATH:
            try:
                pin = os.open("/", O_PATH | os.O_CLOEXEC)
                try:
                    fd = os.open(f"/proc/self/fd/{pin}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    os.close(fd)
                    _O_PATH_REOPEN = True
                finally:
                    os.close(pin)
            except OSError:
                pass
    return _O_PATH_REOPEN


def open_in_root(root, path):
    """Open `path` as seen from inside `root` for a targeted read; returns a read-only fd.

    Components are resolved the way a chroot would: an absolute link restarts at the root,
    '..' never climbs above it, at most MAX_LINK_HOPS links are followed (then ELOOP). The
    final target must be a regular file. Raises OSError (FileNotFoundError, UnsafeFile, ...).
    """
    if "\0" in path:  # paths often come from the scanned disk's own files (package databases)
        raise OSError(errno.EINVAL, "NUL in path", path)
    root_fd = open_dir_in_root(root)
    try:
        return _resolve(root_fd, path)
    finally:
        os.close(root_fd)


def open_dir_in_root(root, path="/"):
    """Open the directory at in-root `path`; returns a read-only fd.

    Unlike open_in_root, no component may be a link (ELOOP or ENOTDIR then), as in the
    walk: a directory is listed only where it really is. '..' and NUL are refused (EINVAL).
    """
    names = _components(path)
    if ".." in names or "\0" in path:
        raise OSError(errno.EINVAL, "'..' or NUL in path", path)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _open_chain(root_fd, reversed(names))
    finally:
        os.close(root_fd)


def read_in_root(root, path, limit=16 * 1024**2):
    """The content of `path` inside `root`; OSError(EFBIG) rather than more than `limit` bytes."""
    fd = open_in_root(root, path)
    try:
        parts, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1024**2, limit + 1 - size))
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
            size += len(chunk)
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", path)
    finally:
        os.close(fd)


def _components(path):
    """Components of a path, reversed so that list.pop() yields them in order."""
    return [name for name in reversed(path.split("/")) if name not in ("", ".")]


def _resolve(root_fd, path):
    todo = _components(path)
    names = []  # the directories below the root that `fd` is in, for '..'
    fd = os.dup(root_fd)
    hops = lookups = 0
    try:
        while todo:
            name = todo.pop()
            lookups += 1 + len(names)
            if lookups > MAX_LOOKUPS:
                raise OSError(errno.ELOOP, "too many lookups", path)
            if name == "..":
                # Climb by reopening from the root, never through the kernel's '..': a
                # directory renamed away mid-lookup must not take us outside.
                if names:
                    names.pop()
                    fd = _replace(fd, _open_chain(root_fd, names))
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                target = os.readlink(name, dir_fd=fd)
                if target.startswith("/"):
                    names.clear()
                    fd = _replace(fd, os.dup(root_fd))
                todo.extend(_components(target))
            elif stat.S_ISDIR(st.st_mode) and todo:
                fd = _replace(fd, open_dir_at(name, fd))
                names.append(name)
            elif not todo:
                if stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(errno.EISDIR, "not a regular file (directory)", path)
                return open_regular_at(name, fd, st)
            else:
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        raise IsADirectoryError(errno.EISDIR, "not a regular file (directory)", path)
    finally:
        os.close(fd)


def _open_chain(root_fd, names):
    fd = os.dup(root_fd)
    try:
        for name in names:
            fd = _replace(fd, open_dir_at(name, fd))
    except OSError:
        os.close(fd)
        raise
    return fd


def _replace(old_fd, new_fd):
    os.close(old_fd)
    return new_fd
