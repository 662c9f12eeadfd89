"""The scanner's one safe walk: a hostile tree must not redirect, block, crash or exhaust it."""

import ast
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from scanner import safe_fs, walker
from scanner.safe_fs import UnsafeFile
from scanner.walker import Entry, Visitor, WholeFileVisitor, open_in_root, read_in_root, walk

OUTSIDE_MARKER = b"OUTSIDE-THE-ROOT-SECRET"
DEEP = 200
SPARSE_SIZE = 5 * 1024**3


# Helpers


class Recorder(Visitor):
    """Wants every file (or those `want` accepts); records exactly what it was fed."""

    def __init__(self, name="recorder", want=None, max_file_size=None):
        self.name = name
        self.want = want or (lambda entry: True)
        self.max_file_size = max_file_size
        self.data = {}  # path -> bytes received
        self.feeds = {}  # path -> number of feed() calls
        self.ends = []  # (path, complete)
        self.finished = 0

    def wants(self, entry):
        return self.want(entry)

    def feed(self, entry, chunk):
        self.data[entry.path] = self.data.get(entry.path, b"") + chunk
        self.feeds[entry.path] = self.feeds.get(entry.path, 0) + 1

    def end(self, entry, complete):
        self.data.setdefault(entry.path, b"")
        self.ends.append((entry.path, complete))

    def finish(self):
        self.finished += 1


def walk_within(seconds, root, visitors, **kwargs):
    """walk() in a thread: a walk that blocks (say, on a FIFO) fails the test instead of hanging it."""
    result = {}

    def run():
        try:
            result["stats"] = walk(str(root), visitors, **kwargs)
        except BaseException as exc:  # handed to the test thread below
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"walk still running after {seconds}s"
    if "error" in result:
        raise result["error"]
    return result["stats"]


def write(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make_deep(directory, depth, files_per_level=False):
    """`depth` nested directories with 30-character names (over PATH_MAX in total), made through fds.

    Returns {in-root path (relative to `directory`): content} for the files made."""
    made = {}
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    path = ""
    try:
        for level in range(depth):
            name = f"{level:03d}" + "d" * 27
            os.mkdir(name, dir_fd=fd)
            if files_per_level:  # sorts after the subdirectory: read after coming back up
                made[f"{path}/zz-{level}.txt"] = make_file_at(fd, f"zz-{level}.txt", f"level {level}\n".encode())
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
            path += "/" + name
        made[f"{path}/bottom.txt"] = make_file_at(fd, "bottom.txt", b"the bottom\n")
    finally:
        os.close(fd)
    assert len(path) > 4096
    return made


def make_file_at(dir_fd, name, data):
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return data


def try_mount(*args):
    """Run mount(8); the reason it is impossible here, or None when it worked."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return "needs root and mount(8)"
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    return None if done.returncode == 0 else f"mount failed: {done.stderr.strip()}"


def umount(path):
    subprocess.run(["umount", "-l", str(path)], check=True)


class OpenSpy:
    """Records every name (and flags) os.open() is called with."""

    def __init__(self, monkeypatch):
        self.calls = []
        real_open = os.open

        def spy(path, flags, *args, **kwargs):
            self.calls.append((os.fsdecode(path), flags))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", spy)

    @property
    def names(self):
        return [name for name, _ in self.calls]


# The hostile tree


@pytest.fixture
def hostile(tmp_path):
    """A root full of traps, plus {in-root path: content} of the regular files a walk must read."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    write(outside / "secret.txt", OUTSIDE_MARKER)
    files = {
        "/etc/passwd": b"in-root passwd\n",
        "/usr/lib/os-release": b'ID=hostile\nNAME="Hostile Linux"\n',
        "/data/multi.bin": bytes(range(256)) * 40,
        "/data/empty": b"",
    }
    for path, data in files.items():
        write(root / path.lstrip("/"), data)
    links = {
        "etc/os-release": "../usr/lib/os-release",
        "abs-passwd": "/etc/passwd",
        "links/up": "../../..",
        "links/out-abs": str(outside),
        "links/out-rel": "../../outside/secret.txt",
        "links/loop-a": "loop-b",
        "links/loop-b": "loop-a",
        "links/self": "self",
        "links/rootdir": "/",
        "links/dangling": "nowhere",
    }
    (root / "links").mkdir()
    for name, target in links.items():
        os.symlink(target, root / name)
    special = root / "special"
    special.mkdir()
    os.mkfifo(special / "fifo")
    os.mknod(special / "socket", stat.S_IFSOCK | 0o644)
    try:
        os.mknod(special / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        devices = 1
    except PermissionError:
        devices = 0
    (root / "big").mkdir()
    with open(root / "big" / "sparse", "wb") as handle:
        handle.truncate(SPARSE_SIZE)
    names = root / "names"
    names.mkdir()
    odd = {"new\nline.txt": b"newline\n", "tab\tname": b"tab\n", "back\\slash": b"backslash\n"}
    for name, data in odd.items():
        write(names / name, data)
        files[f"/names/{name}"] = data
    write(os.fsdecode(os.fsencode(names) + b"/\xff\xfe-bytes.bin"), b"undecodable name\n")
    files["/names/\udcff\udcfe-bytes.bin"] = b"undecodable name\n"
    (root / "nest").mkdir()
    for path, data in make_deep(root / "nest", DEEP).items():
        files["/nest" + path] = data
    return {"root": root, "outside": outside, "files": files, "links": len(links), "devices": devices}


def test_hostile_tree_is_walked_safely_and_completely(hostile, monkeypatch):
    root, expected = hostile["root"], hostile["files"]
    host_passwd = Path("/etc/passwd").read_bytes().splitlines()[0]
    spy = OpenSpy(monkeypatch)
    first, second = Recorder("first"), Recorder("second")

    stats = walk_within(30, root, [first, second], chunk_size=1000)

    # Every regular file inside the root, fed exactly once to each visitor, whole and in order.
    for visitor in (first, second):
        assert visitor.data == expected
        assert sorted(visitor.ends) == sorted((path, True) for path in expected)
        assert visitor.feeds["/data/multi.bin"] == 11  # 10,240 bytes in 1,000-byte chunks
        assert visitor.finished == 1
    assert stats.bytes_read == sum(len(data) for data in expected.values())  # one read shared
    assert stats.files == len(expected) + 1  # + the sparse file
    # Nothing from outside the root: not the host's /etc/passwd, not the neighbour's secret.
    for blob in first.data.values():
        assert OUTSIDE_MARKER not in blob and host_passwd not in blob
    # Links, FIFOs, sockets and devices were never opened, not even to look.
    never = {"fifo", "socket", "null", "loop-a", "loop-b", "self", "rootdir", "up", "out-abs",
             "out-rel", "dangling", "abs-passwd", "sparse"}
    assert never.isdisjoint(spy.names)
    expected_skips = {"symlink": hostile["links"], "fifo": 1, "socket": 1, "too-large": 1}
    if hostile["devices"]:
        expected_skips["device"] = 1
    assert stats.skipped == expected_skips
    assert stats.examples["fifo"] == ["/special/fifo"]
    assert stats.examples["too-large"] == ["/big/sparse"]
    assert "/links/rootdir" in stats.examples["symlink"]
    assert stats.directories == 10 + DEEP  # /, etc, usr, usr/lib, data, links, special, big, names, nest/...


def test_display_path_escapes_what_a_hostile_name_can_hide():
    def shown(path):
        return Entry(path, 0, 0, 0.0).display_path

    assert shown("/usr/bin/ls") == "/usr/bin/ls"
    assert shown("/caf\u00e9/\u65e5\u672c") == "/caf\u00e9/\u65e5\u672c"
    assert shown("/a\nb\rc\td") == "/a\\nb\\rc\\td"
    assert shown("/\x00\x1b[31m\x7f") == "/\\x00\\x1b[31m\\x7f"
    assert shown(os.fsdecode(b"/\xff\xfe.bin")) == "/\\xff\\xfe.bin"
    assert shown("/a\\nb") == "/a\\\\nb"  # a literal backslash-n cannot pose as a newline
    assert shown("/evil\u202etxt.exe") == "/evil\\u202etxt.exe"  # right-to-left override
    assert shown("/lone\ud800") == "/lone\\ud800"
    json.dumps(shown(os.fsdecode(b"/\x80\n\xff")))  # always JSON-safe


def test_walk_order_is_deterministic(hostile):
    orders = []
    for _ in range(2):
        recorder = Recorder()
        walk_within(30, hostile["root"], [recorder])
        orders.append([path for path, _ in recorder.ends])
    assert orders[0] == orders[1]
    top_level = [path for path in orders[0] if path.count("/") == 2]
    assert top_level == sorted(top_level)


def test_files_nobody_wants_are_not_opened(hostile, monkeypatch):
    spy = OpenSpy(monkeypatch)
    picky = Recorder(want=lambda entry: entry.path == "/etc/passwd")
    stats = walk_within(30, hostile["root"], [picky, Visitor()])
    assert picky.data == {"/etc/passwd": b"in-root passwd\n"}
    assert stats.bytes_read == len(b"in-root passwd\n")
    assert "too-large" not in stats.skipped  # nobody asked for the sparse file
    assert "passwd" in spy.names
    assert {"multi.bin", "empty", "os-release", "bottom.txt", "sparse"}.isdisjoint(spy.names)


def test_sparse_file_is_read_only_as_far_as_a_visitor_wants(hostile):
    class Sniffer(Visitor):
        name = "sniffer"
        max_file_size = 10 * 1024**3

        def __init__(self):
            self.ends = []

        def wants(self, entry):
            return entry.path == "/big/sparse"

        def feed(self, entry, chunk):
            return False  # seen the magic bytes: enough

        def end(self, entry, complete):
            self.ends.append((entry.path, complete))

    sniffer = Sniffer()
    started = time.monotonic()
    stats = walk_within(30, hostile["root"], [sniffer])
    assert time.monotonic() - started < 10
    assert sniffer.ends == [("/big/sparse", False)]
    assert stats.bytes_read == walker.DEFAULT_CHUNK_SIZE
    assert "too-large" not in stats.skipped


def test_file_growing_during_the_read_is_cut_at_the_limit(tmp_path):
    write(tmp_path / "grows", b"x" * 50)

    class Grower(Recorder):
        def feed(self, entry, chunk):
            super().feed(entry, chunk)
            with open(tmp_path / "grows", "ab") as handle:  # a live attacker appending
                handle.write(b"y" * 10_000)

    grower = Grower(max_file_size=100)
    stats = walk_within(30, tmp_path, [grower], chunk_size=16)
    assert grower.ends == [("/grows", False)]
    assert len(grower.data["/grows"]) <= 100
    assert stats.bytes_read <= 100 + 16


def test_whole_file_visitor_is_bounded_by_its_max_file_size(tmp_path):
    write(tmp_path / "small", b"a" * 100)
    write(tmp_path / "exact", b"b" * 300)
    write(tmp_path / "large", b"c" * 301)

    class Collector(WholeFileVisitor):
        name = "collector"
        max_file_size = 300

        def __init__(self):
            self.handled = {}

        def wants(self, entry):
            return True

        def handle(self, entry, data):
            self.handled[entry.path] = data

    collector = Collector()
    stats = walk_within(30, tmp_path, [collector], chunk_size=64)
    assert collector.handled == {"/small": b"a" * 100, "/exact": b"b" * 300}
    assert stats.skipped == {"too-large": 1}


def test_a_visitor_that_raises_is_isolated(hostile):
    class Broken(Visitor):
        def __init__(self, name, fail_in):
            self.name, self.fail_in = name, fail_in

        def wants(self, entry):
            if self.fail_in == "wants" and entry.path == "/etc/passwd":
                raise ValueError("bad\nname")
            return True

        def feed(self, entry, chunk):
            if self.fail_in == "feed" and entry.path == "/data/multi.bin":
                raise RuntimeError("parser crashed")

        def end(self, entry, complete):
            if self.fail_in == "end" and entry.path == "/data/empty":
                raise KeyError(entry.path)

        def directory(self, path, st):
            if self.fail_in == "directory" and path == "/etc":
                raise PermissionError("no")

        def finish(self):
            if self.fail_in == "finish":
                raise OSError("disk full")

    good = Recorder("good")
    visitors = [Broken(f"broken-{where}", where) for where in ("wants", "feed", "end", "directory", "finish")]
    stats = walk_within(30, hostile["root"], [visitors[0], visitors[1], good, *visitors[2:]])
    assert good.data == hostile["files"]
    assert stats.skipped["visitor-error"] == 5
    assert stats.examples["visitor-error"] == [  # in walk order, hostile text escaped
        "broken-end: end: /data/empty: KeyError('/data/empty')",
        "broken-feed: feed: /data/multi.bin: RuntimeError('parser crashed')",
        "broken-directory: directory: /etc: PermissionError('no')",
        "broken-wants: wants: /etc/passwd: ValueError('bad\\\\nname')",
        "broken-finish: finish: (finish): OSError('disk full')",
    ]


def test_every_directory_entered_is_shown_to_the_visitors_once(tmp_path):
    root = tmp_path / "root"
    (root / "etc/cron.d").mkdir(parents=True)
    (root / "srv").mkdir(mode=0o777)
    os.chmod(root / "srv", 0o777)  # not masked by the umask
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "link").symlink_to("etc")  # a link to a directory is not entered
    os.link(root / "etc/passwd", root / "srv/passwd")

    class Directories(Visitor):
        seen = []

        def directory(self, path, st):
            self.seen.append((path, stat.S_IMODE(st.st_mode), stat.S_ISDIR(st.st_mode)))

    stats = walk_within(30, str(root), [Directories()])
    assert Directories.seen == [("/", 0o755, True), ("/etc", 0o755, True), ("/etc/cron.d", 0o755, True),
                                ("/srv", 0o777, True)]
    assert stats.directories == 4


@pytest.mark.parametrize("o_path", [True, False], ids=["o-path-reopen", "plain-open"])
def test_file_swapped_for_a_fifo_after_lstat_is_not_read(tmp_path, monkeypatch, o_path):
    if not o_path:
        monkeypatch.setattr(safe_fs, "_O_PATH_REOPEN", False)
    write(tmp_path / "swapped", b"regular at lstat time")

    class Swapper(Recorder):
        def wants(self, entry):  # runs between the walker's lstat and its open
            os.unlink(tmp_path / "swapped")
            os.mkfifo(tmp_path / "swapped")
            return True

    swapper = Swapper()
    stats = walk_within(10, tmp_path, [swapper])
    assert swapper.data == {} and swapper.ends == []
    assert stats.skipped == {"fifo": 1}
    assert stats.bytes_read == 0


def test_file_replaced_by_another_file_after_lstat_is_not_read(tmp_path):
    write(tmp_path / "a-target", b"the file lstat saw")
    write(tmp_path / "z-other", b"the attacker's file")

    class Replacer(Recorder):
        def wants(self, entry):
            if entry.path == "/a-target":
                os.rename(tmp_path / "z-other", tmp_path / "a-target")
            return True

    replacer = Replacer()
    stats = walk_within(10, tmp_path, [replacer])
    assert replacer.data == {}
    assert stats.skipped == {"vanished": 2}  # a-target was swapped, z-other is gone
    assert stats.examples["vanished"] == ["/a-target", "/z-other"]


@pytest.mark.parametrize("swap_to, read, vanished", [
    ("symlink", {"/c-decoy/decoy.txt": b"decoy\n"}, ["/b-dir"]),
    ("other-directory", {}, ["/b-dir", "/c-decoy"]),  # c-decoy now sits at b-dir: not entered there
])
def test_directory_swapped_after_lstat_does_not_redirect_the_walk(tmp_path, monkeypatch, swap_to, read, vanished):
    root, outside = tmp_path / "root", tmp_path / "outside"
    write(outside / "secret.txt", OUTSIDE_MARKER)
    write(root / "b-dir" / "inside.txt", b"inside\n")
    write(root / "c-decoy" / "decoy.txt", b"decoy\n")
    real_open_dir_at = walker.open_dir_at

    def swapping_open_dir_at(name, dir_fd):  # the walker has lstat'ed `name` already
        if name == "b-dir":
            os.rename(root / "b-dir", root / "b-moved")
            if swap_to == "symlink":
                os.symlink(outside, root / "b-dir")
            else:
                os.rename(root / "c-decoy", root / "b-dir")
        return real_open_dir_at(name, dir_fd)

    monkeypatch.setattr(walker, "open_dir_at", swapping_open_dir_at)
    recorder = Recorder()
    stats = walk_within(10, root, [recorder])
    assert recorder.data == read
    assert stats.skipped == {"vanished": len(vanished)}
    assert stats.examples["vanished"] == vanished


def test_names_only_a_crafted_filesystem_could_list_are_not_looked_up(tmp_path, monkeypatch):
    root, outside = tmp_path / "root", tmp_path / "outside"
    write(outside / "secret.txt", OUTSIDE_MARKER)
    write(root / "sub" / "ok.txt", b"ok\n")
    real_listdir = os.listdir

    def crafted_listdir(fd):  # what readdir could return from a corrupt ext4 directory block
        return real_listdir(fd) + ["..", ".", "../outside", "../../outside/secret.txt", "nul\0"]

    monkeypatch.setattr(os, "listdir", crafted_listdir)
    recorder = Recorder()
    stats = walk_within(10, root, [recorder])
    assert recorder.data == {"/sub/ok.txt": b"ok\n"}
    assert stats.skipped == {"bad-name": 10}
    assert "/../outside" in stats.examples["bad-name"] and "/sub/nul\\x00" in stats.examples["bad-name"]


def test_deep_tree_keeps_few_fds_open_and_comes_back_up(tmp_path, monkeypatch):
    expected = make_deep(tmp_path, DEEP, files_per_level=True)
    monkeypatch.setattr(walker, "MAX_HELD_DIR_FDS", 8)

    class FdCounter(Recorder):
        most = 0

        def feed(self, entry, chunk):
            super().feed(entry, chunk)
            self.most = max(self.most, len(os.listdir("/proc/self/fd")))

    baseline = len(os.listdir("/proc/self/fd"))
    counter = FdCounter()
    stats = walk_within(30, tmp_path, [counter])
    assert counter.data == expected  # every level's file, read after coming back up through '..'
    assert stats.skipped == {}
    assert stats.directories == DEEP + 1
    assert counter.most - baseline <= 8 + 3  # held directories + the file + listdir's dup


def test_ancestor_renamed_away_mid_walk_is_not_followed(tmp_path, monkeypatch):
    root, outside = tmp_path / "root", tmp_path / "outside"
    write(outside / "secret.txt", OUTSIDE_MARKER)
    write(root / "a" / "b" / "c" / "f1", b"one\n")
    write(root / "a" / "z.txt", b"after\n")
    monkeypatch.setattr(walker, "MAX_HELD_DIR_FDS", 1)  # only the current directory is held

    class Mover(Recorder):
        def wants(self, entry):
            if entry.path == "/a/b/c/f1":
                os.rename(root / "a" / "b", outside / "b")
            return True

    mover = Mover()
    stats = walk_within(10, root, [mover])
    assert mover.data == {"/a/b/c/f1": b"one\n"}  # /a is lost, not re-entered from outside
    assert stats.skipped == {"vanished": 1}
    assert stats.examples["vanished"] == ["/a"]


def test_other_filesystem_is_skipped_unless_asked(tmp_path):
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    write(tmp_path / "here.txt", b"here\n")
    reason = try_mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint))
    if reason:
        pytest.skip(f"cannot mount a tmpfs for the test: {reason}")
    try:
        write(mountpoint / "there.txt", b"there\n")
        same_fs = Recorder()
        stats = walk_within(10, tmp_path, [same_fs])
        assert same_fs.data == {"/here.txt": b"here\n"}
        assert stats.skipped == {"other-filesystem": 1}
        assert stats.examples["other-filesystem"] == ["/mnt"]
        every_fs = Recorder()
        walk_within(10, tmp_path, [every_fs], one_file_system=False)
        assert every_fs.data == {"/here.txt": b"here\n", "/mnt/there.txt": b"there\n"}
    finally:
        umount(mountpoint)


@pytest.mark.parametrize("options", ["ro", "nodev"])
def test_files_are_opened_directly_where_nothing_can_be_swapped_in(tmp_path, monkeypatch, options):
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    reason = try_mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint))
    if reason:
        pytest.skip(f"cannot mount a tmpfs for the test: {reason}")
    try:
        write(mountpoint / "file", b"content\n")
        subprocess.run(["mount", "-o", f"remount,{options}", str(mountpoint)], check=True)
        spy = OpenSpy(monkeypatch)
        recorder = Recorder()
        walk_within(10, mountpoint, [recorder])
        assert recorder.data == {"/file": b"content\n"}
        assert not any(flags & os.O_PATH for _, flags in spy.calls)  # a read-only snapshot needs no pin
        walk_within(10, tmp_path, [Recorder()], one_file_system=False)  # may cross into rw mounts: pins
        assert any(flags & os.O_PATH for _, flags in spy.calls)
    finally:
        umount(mountpoint)


def test_bind_mount_cycle_is_entered_once(tmp_path):
    root = tmp_path / "root"
    write(root / "file.txt", b"once\n")
    loop = root / "sub" / "loop"
    loop.mkdir(parents=True)
    reason = try_mount("--bind", str(root), str(loop))
    if reason:
        pytest.skip(f"cannot bind-mount for the test: {reason}")
    try:
        recorder = Recorder()
        stats = walk_within(10, root, [recorder], one_file_system=False)
        assert recorder.data == {"/file.txt": b"once\n"}
        assert stats.skipped == {"cycle": 1}
        assert stats.examples["cycle"] == ["/sub/loop"]
    finally:
        umount(loop)


def test_device_node_is_never_opened(tmp_path, monkeypatch):
    try:
        os.mknod(tmp_path / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
        os.mknod(tmp_path / "loop0", stat.S_IFBLK | 0o666, os.makedev(7, 0))
    except PermissionError:
        pytest.skip("creating device nodes needs CAP_MKNOD")
    spy = OpenSpy(monkeypatch)
    stats = walk_within(10, tmp_path, [Recorder()])
    assert stats.skipped == {"device": 2}
    assert "zero" not in spy.names and "loop0" not in spy.names


def unprivileged_walk(root):
    """Walk `root` as an unprivileged user (root bypasses permissions): returns (fed paths, stats)."""
    if os.geteuid() != 0:
        recorder = Recorder()
        stats = walk_within(30, root, [recorder])
        return sorted(recorder.data), stats.skipped
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, walk, report through the pipe, never return to pytest
        status = 1
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            recorder = Recorder()
            stats = walk(str(root), [recorder])
            os.write(writer, json.dumps([sorted(recorder.data), stats.skipped]).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        report = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    fed, skipped = json.loads(report)
    return fed, skipped


@pytest.fixture
def world_readable_dir():
    """A temporary directory that uid 65534 can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="walker-"))
    path.chmod(0o755)
    yield path
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
    shutil.rmtree(path)


def test_unreadable_files_and_directories_are_skipped(world_readable_dir):
    root = world_readable_dir
    write(root / "ok.txt", b"readable\n")
    write(root / "secret", b"unreadable\n")
    write(root / "closed" / "inside", b"x")
    write(root / "listable" / "unstatable", b"y")
    (root / "secret").chmod(0o000)
    (root / "closed").chmod(0o000)
    (root / "listable").chmod(0o644)  # names can be listed but not looked up
    fed, skipped = unprivileged_walk(root)
    assert fed == ["/ok.txt"]
    assert skipped == {"permission": 3}


# Targeted reads: open_in_root / read_in_root


def test_open_in_root_resolves_links_like_a_chroot(hostile):
    root = str(hostile["root"])
    assert read_in_root(root, "/etc/os-release") == hostile["files"]["/usr/lib/os-release"]
    for escaping in ("/abs-passwd", "/links/up/etc/passwd", "/../../../etc/passwd",
                     "/links/rootdir/etc/passwd", "etc/../../etc/./passwd"):
        assert read_in_root(root, escaping) == b"in-root passwd\n", escaping
    with pytest.raises(FileNotFoundError):  # the outside directory's path, looked up inside the root
        read_in_root(root, "/links/out-abs/secret.txt")
    with pytest.raises(FileNotFoundError):
        read_in_root(root, "/links/out-rel")
    nest = max(path for path in hostile["files"] if path.startswith("/nest/"))
    assert read_in_root(root, nest) == b"the bottom\n"  # longer than PATH_MAX


def test_open_in_root_refuses_loops_and_non_regular_files(hostile, monkeypatch):
    root = hostile["root"]
    for looping in ("/links/loop-a", "/links/self", "/links/self/x"):
        with pytest.raises(OSError) as raised:
            open_in_root(str(root), looping)
        assert raised.value.errno == errno.ELOOP
    for name, reason in (("fifo", "fifo"), ("socket", "socket")):
        with pytest.raises(UnsafeFile) as raised:
            open_in_root(str(root), f"/special/{name}")
        assert raised.value.reason == reason
    with pytest.raises(IsADirectoryError):
        open_in_root(str(root), "/etc")
    with pytest.raises(NotADirectoryError):
        open_in_root(str(root), "/etc/passwd/x")
    with pytest.raises(FileNotFoundError):
        open_in_root(str(root), "/links/dangling")
    with pytest.raises(OSError):  # not ValueError: the path may come from a file on the disk
        open_in_root(str(root), "/etc/passwd\0.txt")
    spy = OpenSpy(monkeypatch)
    with pytest.raises(UnsafeFile):
        open_in_root(str(root), "/special/fifo")
    fifo_opens = [flags for name, flags in spy.calls if name == "fifo"]
    assert all(flags & os.O_PATH for flags in fifo_opens)  # pinned without opening, at most


def test_open_in_root_follows_at_most_40_links(tmp_path):
    write(tmp_path / "target", b"end of the chain")
    previous = "target"
    for hop in range(41):
        os.symlink(previous, tmp_path / f"link{hop}")
        previous = f"link{hop}"
    assert read_in_root(str(tmp_path), "/link39") == b"end of the chain"  # 40 hops
    with pytest.raises(OSError) as raised:
        open_in_root(str(tmp_path), "/link40")
    assert raised.value.errno == errno.ELOOP


def test_open_in_root_returns_a_plain_read_only_fd(hostile):
    fd = open_in_root(str(hostile["root"]), "/etc/passwd")
    try:
        flags = os.get_blocking(fd), os.get_inheritable(fd)
        assert stat.S_ISREG(os.fstat(fd).st_mode)
        assert flags == (False, False)  # O_NONBLOCK, O_CLOEXEC
        with pytest.raises(OSError):
            os.write(fd, b"x")
    finally:
        os.close(fd)


def test_read_in_root_refuses_more_than_its_limit(hostile):
    with pytest.raises(OSError) as raised:
        read_in_root(str(hostile["root"]), "/big/sparse", limit=1024)
    assert raised.value.errno == errno.EFBIG
    assert read_in_root(str(hostile["root"]), "/etc/passwd", limit=15) == b"in-root passwd\n"


def test_walker_uses_only_the_standard_library_and_never_the_control_plane():
    for module in (walker, safe_fs):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        tops = {name.split(".")[0] for name in imported}
        assert tops <= set(sys.stdlib_module_names) | {"scanner"}, module.__name__
