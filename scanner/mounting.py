"""Mount the scanned machine's volumes read-only on the scanner VM (`--mount-attached-volume`).

The orchestrator attaches snapshot volumes of the scanned machine to the scanner VM.
`mounted_volumes()` finds attached block devices that nothing on this machine uses,
mounts every supported filesystem on them read-only under a private directory, and
always undoes everything afterwards. `mounted_image(path)` does the same for a raw
disk image file through a read-only loop device (local provider, tests).

What is left alone, and why:
- every device of a disk that has anything mounted or in use as swap: that is the
  disk of the running system (an LVM volume spread over several disks counts as
  in use on all of them);
- CD-ROMs (`rom`): on clouds those are config drives of the scanner VM itself;
- LVM physical volumes whose logical volumes are not active, and LUKS / BitLocker
  volumes that are not opened: activating a snapshot's volume group on the scanner
  would clash with the live machine's VG names and UUIDs, and we hold no keys. When
  something above has already activated them, lsblk shows the logical volume as a
  child and it is mounted like any other device;
- swap, RAID members and unknown filesystems: recorded in `MountReport.skipped`.

Never writes to the devices: each device is switched to read-only at the block
layer (`blockdev --setro`, restored afterwards) before mounting, and the mount options
stop journal replay (ext3/4 `noload`, xfs `norecovery`, btrfs `rescue=nologreplay`),
which a read-only mount would otherwise still do on a crash-consistent snapshot.

Needs root and util-linux (lsblk, blkid, partx, losetup, blockdev, mount, umount);
xfsprogs / btrfs-progs are not needed to mount, ntfs-3g is the fallback for NTFS when
the kernel lacks the ntfs3 driver. lsblk must know the MOUNTPOINTS column (2.37+).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

log = logging.getLogger(__name__)

MOUNT_ROOT = "/run/vmclarity/mounts"
COMMAND_TIMEOUT = 60
# Mounting a large or dirty filesystem (ntfs-3g, big xfs) reads a lot of metadata.
MOUNT_TIMEOUT = 300
LSBLK_COLUMNS = "NAME,PATH,TYPE,FSTYPE,MOUNTPOINTS,SIZE,RO,PKNAME"
# Trees rooted at these are candidates; `rom` is left out (see the module docstring).
WHOLE_DISK_TYPES = {"disk", "loop"}

COMMON_OPTIONS = ["ro", "noexec", "nosuid", "nodev"]
# Per detected filesystem: (mount -t type, extra options) tried in order.
MOUNT_METHODS = {
    "ext2": [("ext2", [])],
    # noload: don't replay the journal of a crashed snapshot (it would write to it).
    "ext3": [("ext3", ["noload"])],
    "ext4": [("ext4", ["noload"])],
    # A snapshot has the same UUID as the live disk; norecovery skips log replay.
    "xfs": [("xfs", ["nouuid", "norecovery"])],
    # Kernels before 5.9 only know the older spelling.
    "btrfs": [("btrfs", ["rescue=nologreplay"]), ("btrfs", ["nologreplay"])],
    # The kernel ntfs3 driver when it exists (it is auto-loaded), else FUSE ntfs-3g.
    "ntfs": [("ntfs3", []), ("ntfs-3g", [])],
    "vfat": [("vfat", [])],
}
NOT_FILESYSTEMS = {
    "swap": "swap space",
    "LVM2_member": "LVM physical volume whose logical volumes are not active (not scanned)",
    "crypto_LUKS": "encrypted volume (LUKS) that is not opened",
    "BitLocker": "encrypted volume (BitLocker) that is not opened",
    "linux_raid_member": "member of a RAID array that is not assembled",
}


class MountError(RuntimeError):
    """A command needed to mount or unmount failed."""


@dataclass(frozen=True)
class Mount:
    """A mounted filesystem; fstype is what blkid found (ntfs), not the driver (fuseblk)."""

    device: str
    fstype: str
    mountpoint: str


@dataclass
class MountReport:
    mounts: list[Mount] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (device, reason)


@dataclass(frozen=True)
class Volume:
    """A block device without children that nothing on this machine uses."""

    device: str  # /dev/nvme1n1p1
    name: str  # nvme1n1p1
    fstype: str | None  # lsblk's idea; None without udev, then blkid decides
    disk: str  # the whole disk (tree root) it belongs to


# ---- pure logic ---------------------------------------------------------------------


def find_unmounted_filesystems(lsblk_json: dict) -> list[Volume]:
    """Leaf devices of `lsblk --json` output on disks that nothing here uses."""
    disks = [d for d in lsblk_json.get("blockdevices", []) if d.get("type") in WHOLE_DISK_TYPES]
    busy = {_path(node) for disk in disks if _in_use(disk) for node in _walk(disk)}
    volumes, seen = [], set()
    for disk in disks:
        for node in _walk(disk):
            path = _path(node)
            if node.get("children") or path in busy or path in seen or _size(node) == 0:
                continue
            seen.add(path)
            volumes.append(Volume(path, node["name"], node.get("fstype") or None, _path(disk)))
    return volumes


def skip_reason(fstype: str | None) -> str | None:
    """Why a device with this filesystem type is not mounted, or None to mount it."""
    if not fstype:
        return "no filesystem found"
    if fstype in NOT_FILESYSTEMS:
        return NOT_FILESYSTEMS[fstype]
    if fstype not in MOUNT_METHODS:
        return f"unsupported filesystem {fstype}"
    return None


def mount_attempts(fstype: str) -> list[tuple[str, str]]:
    """(mount -t type, -o options) pairs to try in order for a supported filesystem."""
    return [(kind, ",".join(COMMON_OPTIONS + extra)) for kind, extra in MOUNT_METHODS[fstype]]


def _walk(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("children") or []:
        yield from _walk(child)


def _in_use(node: dict) -> bool:
    """Mounted (active swap shows as "[SWAP]") here or anywhere below."""
    return any(_mountpoints(n) for n in _walk(node))


def _mountpoints(node: dict) -> list[str]:
    # lsblk < 2.37 has a single MOUNTPOINT column.
    points = node.get("mountpoints") or [node.get("mountpoint")]
    return [p for p in points if p]


def _path(node: dict) -> str:
    return node.get("path") or f"/dev/{node['name']}"


def _size(node: dict) -> int:
    # Older lsblk prints numbers as strings even with --bytes.
    return int(node.get("size") or 0)


# ---- commands -----------------------------------------------------------------------


def _run(argv: list[str], timeout: float = COMMAND_TIMEOUT, ok: tuple[int, ...] = (0,)):
    """Run a command (no shell); MountError with its stderr when it fails."""
    command = " ".join(argv)
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise MountError(f"{argv[0]} not found (is util-linux installed?)") from None
    except subprocess.TimeoutExpired:
        raise MountError(f"`{command}` timed out after {timeout}s") from None
    if proc.returncode not in ok:
        detail = proc.stderr.strip() or proc.stdout.strip() or "no output"
        raise MountError(f"`{command}` failed (exit {proc.returncode}): {detail}")
    return proc


def _lsblk(devices: list[str] | None) -> dict:
    proc = _run(["lsblk", "--json", "--bytes", "--output", LSBLK_COLUMNS, *(devices or [])])
    return json.loads(proc.stdout or "{}")


def _probe(device: str) -> dict[str, str]:
    """blkid's low-level probe (reads the superblock, not a cache): TYPE, PTTYPE, ..."""
    # Exit 2: nothing found; 8: ambivalent (several signatures) - both mean "don't know".
    proc = _run(["blkid", "-p", "-o", "export", device], ok=(0, 2, 8))
    pairs = (line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return dict(pairs)


def _unmount(mountpoint: str) -> str | None:
    """Unmount, lazily if a normal unmount fails; an error message if both fail."""
    try:
        _run(["umount", mountpoint])
        return None
    except MountError as error:
        first = error
    log.warning("%s; detaching it lazily", first)
    try:
        _run(["umount", "-l", mountpoint])
        return None
    except MountError as error:
        return f"{first}; {error}"


def _mounts_under(directory: str) -> list[str]:
    """Mount points at or below directory, deepest first."""
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.strip()]
    # /proc/mounts escapes spaces and such as octal; our own directories have none.
    ours = [p for p in points if p == directory or p.startswith(directory + "/")]
    return sorted(set(ours), key=len, reverse=True)


# ---- a mounting session -------------------------------------------------------------


class _Session:
    """Everything mounted or changed, so that close() can undo exactly that."""

    def __init__(self):
        self.report = MountReport()
        self.directory: str | None = None
        self.loops: list[str] = []
        self.partitioned: list[str] = []
        self.made_readonly: list[str] = []

    def attach(self, image: str) -> str:
        """Attach an image file to a read-only loop device; the kernel reads its partitions."""
        if not os.path.isfile(image):
            raise MountError(f"{image}: no such image file")
        argv = ["losetup", "--find", "--show", "--read-only", "--partscan", image]
        loop = _run(argv).stdout.strip()
        self.loops.append(loop)
        return loop

    def mount_all(self, devices: list[str] | None = None) -> MountReport:
        """Mount every unused filesystem on the given disks (all disks when None)."""
        volumes = find_unmounted_filesystems(_lsblk(devices))
        if self._add_partitions(volumes):
            volumes = find_unmounted_filesystems(_lsblk(devices))
        skipped = {device for device, _ in self.report.skipped}
        for volume in volumes:
            if volume.device not in skipped:
                self._mount(volume)
        return self.report

    def _add_partitions(self, volumes: list[Volume]) -> bool:
        """Make the kernel see the partitions of whole disks that have a partition table.

        A freshly attached volume's partitions are not always known yet (no udev, or a
        loop device without --partscan). partx only tells the kernel; it writes nothing.
        """
        added = False
        for volume in volumes:
            probe = _probe(volume.device) if volume.device == volume.disk else {}
            # A filesystem on the whole disk wins over a stray partition table signature.
            if "PTTYPE" not in probe or "TYPE" in probe:
                continue
            try:
                _run(["partx", "--add", volume.device])
            except MountError as error:
                self.report.skipped.append((volume.device, f"cannot read its partitions: {error}"))
                continue
            self.partitioned.append(volume.device)
            added = True
        return added

    def _mount(self, volume: Volume) -> None:
        fstype = _probe(volume.device).get("TYPE") or volume.fstype
        reason = skip_reason(fstype)
        if reason:
            self.report.skipped.append((volume.device, reason))
            return
        try:
            self._set_readonly(volume.device)
        except MountError as error:
            self.report.skipped.append((volume.device, f"cannot make it read-only: {error}"))
            return
        target = self._make_dir(volume.name)
        errors = []
        for kind, options in mount_attempts(fstype):
            try:
                _run(["mount", "-t", kind, "-o", options, volume.device, target], MOUNT_TIMEOUT)
            except MountError as error:
                errors.append(str(error))
                continue
            self.report.mounts.append(Mount(volume.device, fstype, target))
            return
        # The empty directory goes in close(), with the others.
        self.report.skipped.append((volume.device, "mount failed: " + "; ".join(errors)))

    def _set_readonly(self, device: str) -> None:
        """Refuse writes at the block layer too, whatever a filesystem driver tries."""
        if _run(["blockdev", "--getro", device]).stdout.strip() == "1":
            return
        _run(["blockdev", "--setro", device])
        self.made_readonly.append(device)

    def _make_dir(self, name: str) -> str:
        if self.directory is None:
            os.makedirs(MOUNT_ROOT, mode=0o700, exist_ok=True)
            # Private (0700) and unique, so concurrent scans never share mount points.
            self.directory = tempfile.mkdtemp(prefix="scan-", dir=MOUNT_ROOT)
        target = os.path.join(self.directory, name.replace("/", "_"))
        os.mkdir(target, mode=0o700)
        return target

    def close(self) -> list[str]:
        """Undo everything, in reverse order, carrying on past failures; the errors."""
        errors = []
        if self.directory:
            # From /proc/mounts rather than our list: a mount whose command timed out
            # may still have completed in the kernel.
            errors += filter(None, map(_unmount, _mounts_under(self.directory)))
        errors += self._undo(["blockdev", "--setrw"], self.made_readonly)
        # Only disks whose partitions we added; partitions of a --partscan loop go with it.
        errors += self._undo(["partx", "--delete"], self.partitioned)
        errors += self._undo(["losetup", "--detach"], self.loops)
        errors += self._remove_dirs()
        return errors

    @staticmethod
    def _undo(argv: list[str], devices: list[str]) -> list[str]:
        errors = []
        for device in reversed(devices):
            try:
                _run(argv + [device])
            except MountError as error:
                errors.append(str(error))
        return errors

    def _remove_dirs(self) -> list[str]:
        # rmdir only, never a recursive delete: a directory still mounted must fail.
        if not self.directory:
            return []
        paths = [os.path.join(self.directory, name) for name in os.listdir(self.directory)]
        errors = []
        for path in paths + [self.directory]:
            try:
                os.rmdir(path)
            except OSError as error:
                errors.append(f"cannot remove {path}: {error}")
        return errors


@contextmanager
def _mounting(image: str | None = None, devices: list[str] | None = None) -> Iterator[MountReport]:
    session = _Session()
    try:
        if image:
            devices = [session.attach(image)]
        yield session.mount_all(devices)
    except BaseException:
        # Clean up, but let the exception already on its way out be the one reported.
        for error in session.close():
            log.error("cleanup after a failure: %s", error)
        raise
    errors = session.close()
    if errors:
        raise MountError("cleanup incomplete: " + "; ".join(errors))


@contextmanager
def mounted_volumes(devices: list[str] | None = None) -> Iterator[MountReport]:
    """Mount the attached, unused block devices read-only; undo it all on exit.

    `devices` limits it to those block devices (and their partitions), e.g. the one
    volume a provider attached for this scan; None means every attached device.
    """
    with _mounting(devices=devices) as report:
        yield report


@contextmanager
def mounted_image(path: str) -> Iterator[MountReport]:
    """Mount the filesystems of a raw disk image read-only; undo it all on exit."""
    with _mounting(image=path) as report:
        yield report


mount_image = mounted_image
