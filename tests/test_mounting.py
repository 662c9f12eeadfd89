"""scanner.mounting: lsblk parsing on canned output, then real read-only mounts as root.

The real tests build small disk images (no mount needed to fill them) and mount them
through loop devices. They skip only when this machine refuses loop devices or
mounting (not root, or a container without CAP_SYS_ADMIN) - found out by trying.
"""

import errno
import json
import os
import shutil
import subprocess
from contextlib import contextmanager

import pytest

from scanner import mounting
from scanner.mounting import Mount, Volume, find_unmounted_filesystems, mounted_image, mounted_volumes

MiB = 1024 * 1024


# ---- canned lsblk output ------------------------------------------------------------


def dev(name, type_="part", fstype=None, mountpoints=(None,), size=10 * MiB, children=None):
    node = {
        "name": name,
        "path": f"/dev/{name}",
        "type": type_,
        "fstype": fstype,
        "mountpoints": list(mountpoints),
        "size": size,
        "ro": False,
        "pkname": None,
    }
    if children:
        for child in children:
            child["pkname"] = name
        node["children"] = children
    return node


def devices(*nodes):
    return [v.device for v in find_unmounted_filesystems({"blockdevices": list(nodes)})]


def test_partitioned_disk_yields_its_partitions():
    parts = [dev("nvme1n1p1", fstype="vfat"), dev("nvme1n1p2", fstype="ext4")]
    disk = dev("nvme1n1", "disk", children=parts)
    volumes = find_unmounted_filesystems({"blockdevices": [disk]})
    assert volumes == [
        Volume("/dev/nvme1n1p1", "nvme1n1p1", "vfat", "/dev/nvme1n1"),
        Volume("/dev/nvme1n1p2", "nvme1n1p2", "ext4", "/dev/nvme1n1"),
    ]


def test_disk_of_the_running_system_is_left_alone():
    # One mounted partition marks the whole disk, its unmounted siblings included.
    parts = [dev("vda1", fstype="ext4", mountpoints=["/"]), dev("vda2", fstype="ext4")]
    root = dev("vda", "disk", children=parts)
    bare_root = dev("vdb", "disk", fstype="ext4", mountpoints=["/", "/var/lib/docker"])
    snapshot = dev("vdc", "disk", fstype="xfs")
    assert devices(root, bare_root, snapshot) == ["/dev/vdc"]


def test_swap():
    parts = [dev("vda1", fstype="swap", mountpoints=["[SWAP]"]), dev("vda2")]
    active = dev("vda", "disk", children=parts)
    inactive = dev("vdb", "disk", children=[dev("vdb1", fstype="swap")])
    assert devices(active, inactive) == ["/dev/vdb1"]
    assert mounting.skip_reason("swap") == "swap space"


def test_loop_devices_count_empty_devices_and_cdroms_do_not():
    loop = dev("loop3", "loop", fstype="ext4", size=32 * MiB)
    snap = dev("loop4", "loop", fstype="squashfs", mountpoints=["/snap/core/1"])
    zram = dev("zram0", "disk", size=0)
    cdrom = dev("sr0", "rom", fstype="iso9660", size=400 * MiB)
    assert devices(loop, snap, zram, cdrom) == ["/dev/loop3"]


def test_nested_children_yield_only_leaves():
    # disk -> partition -> LUKS -> LVM logical volumes, opened and activated elsewhere.
    lvs = [dev("vg-root", "lvm", fstype="xfs"), dev("vg-home", "lvm", fstype="ext4")]
    crypt = dev("luks-1", "crypt", fstype="LVM2_member", children=lvs)
    parts = [dev("sdb1", fstype="vfat"), dev("sdb2", fstype="crypto_LUKS", children=[crypt])]
    disk = dev("sdb", "disk", children=parts)
    assert devices(disk) == ["/dev/sdb1", "/dev/vg-root", "/dev/vg-home"]


def test_volume_spanning_disks_is_listed_once_and_busy_everywhere():
    def spanned(mountpoints):
        return dev("vg-data", "lvm", fstype="ext4", mountpoints=mountpoints)

    free = [dev("sdb", "disk", fstype="LVM2_member", children=[spanned([None])]),
            dev("sdc", "disk", fstype="LVM2_member", children=[spanned([None])])]
    assert devices(*free) == ["/dev/vg-data"]
    # Mounted through sdb: sdc's view of the same volume must not be mounted again.
    busy = [dev("sdb", "disk", fstype="LVM2_member", children=[spanned(["/data"])]),
            dev("sdc", "disk", fstype="LVM2_member", children=[spanned([None])])]
    assert devices(*busy) == []


def test_unactivated_lvm_and_unopened_luks_are_listed_then_skipped():
    parts = [dev("sdb1", fstype="LVM2_member"), dev("sdb2", fstype="crypto_LUKS")]
    disk = dev("sdb", "disk", children=parts)
    volumes = find_unmounted_filesystems({"blockdevices": [disk]})
    reasons = [mounting.skip_reason(v.fstype) for v in volumes]
    assert "LVM physical volume" in reasons[0]
    assert "LUKS" in reasons[1]


def test_unknown_and_missing_filesystems_are_skipped_with_a_reason():
    assert devices(dev("vdb", "disk", fstype="zfs_member")) == ["/dev/vdb"]
    assert mounting.skip_reason("zfs_member") == "unsupported filesystem zfs_member"
    assert mounting.skip_reason(None) == "no filesystem found"
    for fstype in ["ext2", "ext3", "ext4", "xfs", "btrfs", "ntfs", "vfat"]:
        assert mounting.skip_reason(fstype) is None


def test_older_lsblk_output():
    # lsblk < 2.37: a single MOUNTPOINT column, numbers as strings, no PATH.
    old = {"blockdevices": [
        {"name": "vda", "type": "disk", "size": "1000", "mountpoint": None,
         "children": [
             {"name": "vda1", "type": "part", "fstype": "ext4", "size": "900", "mountpoint": "/"},
         ]},
        {"name": "vdb", "type": "disk", "fstype": "ext4", "size": "1000", "mountpoint": None},
    ]}
    assert [v.device for v in find_unmounted_filesystems(old)] == ["/dev/vdb"]


def test_this_machines_own_lsblk_output_parses():
    out = subprocess.run(["lsblk", "--json", "--bytes", "--output", mounting.LSBLK_COLUMNS],
                         capture_output=True, text=True, check=True).stdout
    root_disks = {d["path"] for d in json.loads(out)["blockdevices"] if mounting._in_use(d)}
    found = {v.disk for v in find_unmounted_filesystems(json.loads(out))}
    assert not found & root_disks


def test_mount_options():
    assert mounting.mount_attempts("ext4") == [("ext4", "ro,noexec,nosuid,nodev,noload")]
    assert mounting.mount_attempts("xfs") == [("xfs", "ro,noexec,nosuid,nodev,nouuid,norecovery")]
    assert mounting.mount_attempts("btrfs")[0] == ("btrfs", "ro,noexec,nosuid,nodev,rescue=nologreplay")
    assert [kind for kind, _ in mounting.mount_attempts("ntfs")] == ["ntfs3", "ntfs-3g"]
    assert mounting.mount_attempts("vfat") == [("vfat", "ro,noexec,nosuid,nodev")]


def test_lazy_unmount_after_a_failed_unmount(monkeypatch):
    calls = []

    def fake_run(argv, timeout=None, ok=(0,)):
        calls.append(argv)
        if argv == ["umount", "/m"]:
            raise mounting.MountError("`umount /m` failed (exit 32): target is busy")

    monkeypatch.setattr(mounting, "_run", fake_run)
    assert mounting._unmount("/m") is None
    assert calls == [["umount", "/m"], ["umount", "-l", "/m"]]


def test_command_errors_carry_stderr():
    with pytest.raises(mounting.MountError, match=r"exit 1\): .*nope"):
        mounting._run(["sh", "-c", "echo nope >&2; exit 1"])
    with pytest.raises(mounting.MountError, match="timed out after 0.2s"):
        mounting._run(["sleep", "5"], timeout=0.2)
    with pytest.raises(mounting.MountError, match="not found"):
        mounting._run(["no-such-command-vmclarity"])


# ---- helpers for the real tests -----------------------------------------------------


def run(*argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kwargs).stdout


def mount_options(mountpoint):
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[1] == mountpoint:
                return set(fields[3].split(","))
    return None


def loops_of(image):
    return [line.split(":")[0] for line in run("losetup", "--associated", str(image)).splitlines()]


def release_loops(directory):
    """Unmount whatever uses loop devices backed by files in directory, then detach them."""
    listing = json.loads(run("losetup", "--list", "--json") or '{"loopdevices": []}')
    ours = [d for d in listing["loopdevices"] if (d.get("back-file") or "").startswith(str(directory))]
    loops = [d["name"] for d in ours]
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[:2] for line in mounts]
    for loop in loops:
        for source, point in points:
            if source == loop or source.startswith(loop + "p"):
                subprocess.run(["umount", "-l", point], capture_output=True)
        # Partitions added with partx outlive a loop device without --partscan.
        subprocess.run(["partx", "--delete", loop], capture_output=True)
        subprocess.run(["losetup", "--detach", loop], capture_output=True)


@contextmanager
def writable_partitions(image):
    """The two partitions of image as block devices, to create filesystems on."""
    loop = run("losetup", "--find", "--show", str(image)).strip()
    try:
        # partx, not --partscan: some kernels (this VM's) have no partition table parsers.
        run("partx", "--add", loop)
        yield f"{loop}p1", f"{loop}p2"
    finally:
        subprocess.run(["partx", "--delete", loop], capture_output=True)
        subprocess.run(["losetup", "--detach", loop], capture_output=True)


def file_tree(directory, files):
    tree = directory / "tree"
    tree.mkdir()
    for name, text in files.items():
        (tree / name).write_text(text)
    return tree


def ext4_image(path, files, size=32 * MiB):
    tree = file_tree(path.parent, files)
    with open(path, "wb") as image:
        image.truncate(size)
    run("mkfs.ext4", "-q", "-F", "-d", str(tree), str(path))
    return path


def xfs_filesystem(target, files, workdir):
    # A protofile fills xfs at mkfs time, as `mkfs.ext4 -d` does for ext4.
    lines = ["/dev/null", "0 0", "d--755 0 0"]
    for name, text in files.items():
        (workdir / name).write_text(text)
        lines.append(f"{name} ---644 0 0 {workdir / name}")
    (workdir / "proto").write_text("\n".join(lines + ["$", ""]))
    run("mkfs.xfs", "-q", "-f", "-p", str(workdir / "proto"), str(target))


def read(path):
    with open(path) as file:
        return file.read()


def blank(path, size):
    with open(path, "wb") as image:
        image.truncate(size)
    return path


def assert_mounted_safely(mount, extra=()):
    options = mount_options(mount.mountpoint)
    assert options is not None, f"{mount.mountpoint} is not mounted"
    assert {"ro", "noexec", "nosuid", "nodev", *extra} <= options


def assert_gone(mount):
    assert mount_options(mount.mountpoint) is None
    assert not os.path.exists(mount.mountpoint)


def needs(*programs):
    missing = [p for p in programs if not shutil.which(p)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")


@pytest.fixture(scope="session")
def can_mount(tmp_path_factory):
    """Skip unless this machine lets us attach loop devices and mount them (tried)."""
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    workdir = tmp_path_factory.mktemp("probe")
    image = ext4_image(workdir / "probe.img", {"x": "x"})
    target = workdir / "mnt"
    target.mkdir()
    try:
        loop = run("losetup", "--find", "--show", "--read-only", str(image)).strip()
    except subprocess.CalledProcessError as error:
        pytest.skip(f"the kernel refuses loop devices here: {error.stderr.strip()}")
    try:
        run("mount", "-t", "ext4", "-o", "ro", loop, str(target))
        run("umount", str(target))
    except subprocess.CalledProcessError as error:
        pytest.skip(f"mounting is not allowed here (no CAP_SYS_ADMIN?): {error.stderr.strip()}")
    finally:
        subprocess.run(["losetup", "--detach", loop], capture_output=True)


@pytest.fixture
def images(can_mount, tmp_path):
    """A directory for images; every loop device on them is released afterwards."""
    yield tmp_path
    release_loops(tmp_path)


@pytest.fixture
def attach(images):
    """Attach an image like a cloud volume: a writable loop device, nothing mounted."""

    def attach_(image):
        return run("losetup", "--find", "--show", str(image)).strip()

    return attach_


# ---- mounted_image ------------------------------------------------------------------


def test_ext4_image_is_mounted_read_only(images):
    image = ext4_image(images / "disk.img", {"hello.txt": "hello\n", "etc-os-release": "ID=debian\n"})
    with mounted_image(str(image)) as report:
        assert report.skipped == []
        [mount] = report.mounts
        assert mount.fstype == "ext4"
        assert mount.device.startswith("/dev/loop")
        assert mount.mountpoint.startswith(mounting.MOUNT_ROOT + "/")
        assert read(os.path.join(mount.mountpoint, "hello.txt")) == "hello\n"
        assert_mounted_safely(mount, ["norecovery"])  # /proc/mounts shows noload as norecovery
        with pytest.raises(OSError) as raised:
            open(os.path.join(mount.mountpoint, "new.txt"), "w")
        assert raised.value.errno == errno.EROFS
        assert loops_of(image) == [mount.device]
    assert_gone(mount)
    assert loops_of(image) == []


def test_everything_is_undone_when_the_body_raises(images):
    image = ext4_image(images / "disk.img", {"a": "a"})
    with pytest.raises(ZeroDivisionError):
        with mounted_image(str(image)) as report:
            [mount] = report.mounts
            1 / 0
    assert_gone(mount)
    assert not os.path.exists(os.path.dirname(mount.mountpoint))
    assert loops_of(image) == []


def test_partitioned_image_ext4_and_xfs(images):
    needs("sfdisk", "mkfs.xfs")
    image = blank(images / "parts.img", 400 * MiB)  # xfs needs at least 300 MiB
    run("sfdisk", "--quiet", str(image), input="label: gpt\n,64M\n,\n")
    with writable_partitions(image) as (first, second):
        run("mkfs.ext4", "-q", "-F", "-d", str(file_tree(images, {"one.txt": "1"})), first)
        xfs_filesystem(second, {"two.txt": "2"}, images)

    with mounted_image(str(image)) as report:
        assert report.skipped == []
        by_type = {m.fstype: m for m in report.mounts}
        assert set(by_type) == {"ext4", "xfs"}
        assert by_type["ext4"].device.endswith("p1") and by_type["xfs"].device.endswith("p2")
        assert_mounted_safely(by_type["ext4"], ["norecovery"])
        assert_mounted_safely(by_type["xfs"], ["nouuid", "norecovery"])
        assert read(os.path.join(by_type["ext4"].mountpoint, "one.txt")) == "1"
        assert read(os.path.join(by_type["xfs"].mountpoint, "two.txt")) == "2"
    for mount in report.mounts:
        assert_gone(mount)
    assert loops_of(image) == []


def test_btrfs_image(images):
    needs("mkfs.btrfs")
    image = blank(images / "btrfs.img", 128 * MiB)
    run("mkfs.btrfs", "-q", "-f", "--rootdir", str(file_tree(images, {"b.txt": "b"})), str(image))
    with mounted_image(str(image)) as report:
        [mount] = report.mounts
        assert mount.fstype == "btrfs"
        assert_mounted_safely(mount, ["rescue=nologreplay"])
        assert read(os.path.join(mount.mountpoint, "b.txt")) == "b"
    assert_gone(mount)


def test_ntfs_image(images):
    needs("mkntfs", "ntfscp")
    image = blank(images / "ntfs.img", 32 * MiB)
    run("mkntfs", "-q", "-F", "-f", str(image))
    (images / "n.txt").write_text("n")
    run("ntfscp", "-f", str(image), str(images / "n.txt"), "n.txt")
    with mounted_image(str(image)) as report:
        if not report.mounts:
            pytest.skip(f"neither ntfs3 nor ntfs-3g can mount here: {report.skipped}")
        [mount] = report.mounts
        assert mount.fstype == "ntfs"
        assert_mounted_safely(mount)
        assert read(os.path.join(mount.mountpoint, "n.txt")) == "n"
    assert_gone(mount)


def test_vfat_image(images):
    needs("mkfs.vfat", "mcopy")
    image = blank(images / "vfat.img", 32 * MiB)
    run("mkfs.vfat", str(image))
    (images / "v.txt").write_text("v")
    run("mcopy", "-i", str(image), str(images / "v.txt"), "::v.txt")
    with mounted_image(str(image)) as report:
        if report.skipped and "unknown filesystem type 'vfat'" in report.skipped[0][1]:
            pytest.skip("this kernel has no vfat driver")
        [mount] = report.mounts
        assert mount.fstype == "vfat"
        assert_mounted_safely(mount)
        assert read(os.path.join(mount.mountpoint, "v.txt")) == "v"
    assert_gone(mount)


def test_unsupported_and_empty_images_are_skipped_with_reasons(images):
    swap = blank(images / "swap.img", 8 * MiB)
    run("mkswap", str(swap))
    minix = blank(images / "minix.img", 8 * MiB)
    run("mkfs.minix", str(minix))
    empty = blank(images / "empty.img", 8 * MiB)
    cases = [(swap, "swap space"), (minix, "unsupported filesystem minix"), (empty, "no filesystem found")]
    for image, reason in cases:
        with mounted_image(str(image)) as report:
            assert report.mounts == []
            assert [r for _, r in report.skipped] == [reason]
        assert loops_of(image) == []


def test_missing_image_file(images):
    with pytest.raises(mounting.MountError, match="no such image file"):
        with mounted_image(str(images / "nope.img")):
            pass


# ---- mounted_volumes ----------------------------------------------------------------


def root_disk_devices():
    tree = json.loads(run("lsblk", "--json", "--output", mounting.LSBLK_COLUMNS))
    return {n["path"] for d in tree["blockdevices"] if mounting._in_use(d) for n in mounting._walk(d)}


def test_mounted_volumes_mounts_an_attached_volume(attach, images):
    image = ext4_image(images / "volume.img", {"data.txt": "attached\n"})
    loop = attach(image)
    system = root_disk_devices()
    assert system, "expected the running system's disk to show as in use"
    with mounted_volumes() as report:
        ours = [m for m in report.mounts if m.device == loop]
        assert ours == [Mount(loop, "ext4", ours[0].mountpoint)]
        assert read(os.path.join(ours[0].mountpoint, "data.txt")) == "attached\n"
        assert_mounted_safely(ours[0], ["norecovery"])
        # Read-only at the block layer too while mounted.
        assert run("blockdev", "--getro", loop).strip() == "1"
        touched = {m.device for m in report.mounts} | {device for device, _ in report.skipped}
        assert not touched & system
    assert_gone(ours[0])
    assert run("blockdev", "--getro", loop).strip() == "0"  # restored
    assert loops_of(image) == [loop]  # someone else's device: still attached


def test_mounted_volumes_adds_and_removes_partitions(attach, images):
    needs("sfdisk")
    image = blank(images / "parts.img", 64 * MiB)
    run("sfdisk", "--quiet", str(image), input="label: dos\n,24M\n,\n")
    with writable_partitions(image) as (first, second):
        run("mkfs.ext4", "-q", "-F", "-d", str(file_tree(images, {"p1.txt": "1"})), first)
        run("mkfs.ext4", "-q", "-F", second)
    # Without --partscan the kernel doesn't know the partitions: like a fresh attach.
    loop = attach(image)
    assert not os.path.exists(f"{loop}p1")
    with mounted_volumes() as report:
        ours = sorted((m for m in report.mounts if m.device.startswith(loop + "p")), key=str)
        assert [m.device for m in ours] == [f"{loop}p1", f"{loop}p2"]
        assert read(os.path.join(ours[0].mountpoint, "p1.txt")) == "1"
    for mount in ours:
        assert_gone(mount)
    assert not os.path.exists(f"{loop}p1")  # partx --delete: only what it added


def test_mounted_volumes_leaves_mounted_volumes_alone(attach, images, tmp_path):
    image = ext4_image(images / "busy.img", {"x": "x"})
    loop = attach(image)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run("mount", "-o", "ro", loop, str(elsewhere))
    try:
        with mounted_volumes() as report:
            touched = {m.device for m in report.mounts} | {device for device, _ in report.skipped}
            assert loop not in touched
    finally:
        run("umount", str(elsewhere))


def test_a_busy_mount_is_detached_lazily(images, caplog):
    image = ext4_image(images / "busy.img", {"open.txt": "still open"})
    with mounted_image(str(image)) as report:
        [mount] = report.mounts
        held = open(os.path.join(mount.mountpoint, "open.txt"))
    try:
        # umount failed (busy), umount -l detached it; the directory is gone all the same.
        assert_gone(mount)
        assert held.read() == "still open"
        assert "detaching it lazily" in caplog.text
    finally:
        held.close()
    # The loop device was marked to go away once its last user let go.
    assert loops_of(image) == []


def test_a_failed_mount_is_skipped_with_mounts_message(images, monkeypatch):
    monkeypatch.setitem(mounting.MOUNT_METHODS, "ext4", [("ext4", ["no_such_option"])])
    image = ext4_image(images / "disk.img", {"a": "a"})
    os.makedirs(mounting.MOUNT_ROOT, exist_ok=True)
    before = set(os.listdir(mounting.MOUNT_ROOT))
    with mounted_image(str(image)) as report:
        assert report.mounts == []
        [(device, reason)] = report.skipped
        assert device.startswith("/dev/loop")
        assert reason.startswith("mount failed: `mount -t ext4 -o ro,noexec,nosuid,nodev,no_such_option")
    assert loops_of(image) == []
    assert set(os.listdir(mounting.MOUNT_ROOT)) <= before  # its mount directory removed too
