"""The local provider, the embedded default: directories and raw disk images on this host.

Its "scanner VM" is a process of the real scanner CLI (`vmclarity-scanner scan`) in its
own session and process group, in server mode with the asset scan's scanner token; a
disk image is attached read-only to a loop device, as a cloud provider attaches a
snapshot volume, and the scanner mounts it (`--mount-device`).

Settings (a dict; the orchestrator fills it from the environment):
- `data_dir` (VMCLARITY_DATA_DIR): this provider keeps its state in `<data_dir>/local-provider/`.
- `local_assets` (VMCLARITY_LOCAL_ASSETS): what discovery reports, absolute paths as a
  list or one string separated by `:`. A directory becomes a DirInfo asset, a regular
  file (a raw disk image) a VMInfo asset. Any DirInfo whose `dirName` is a directory on
  this host and any VMInfo whose `instanceID` is an image file on it can be scanned,
  listed here or not (the API lets users create DirInfo assets).
- `api_url`: where scanners report when the job does not say (ScanJob.api_url first).
- `scanner_command`: the scanner CLI as an argv list (or a string split like a shell
  would); default: this interpreter running `scanner.cli`, so the scanner is always the
  one installed beside the orchestrator, whatever PATH says.
- `stop_grace` (default 10): seconds between SIGTERM and SIGKILL when removing.
- `estimate_throughput` (default 50 MB/s): bytes per second a scan reads, for estimates
  without earlier stats.
- `on_scanner_exit`: called with the asset scan id when a scanner this process started
  exits (from the thread that reaps it), so the orchestrator checks it at once.

A scanner's exit code is recorded in its `state.json` by the process that started it
(`exit_code`, `exited`); when that process died first, the code is lost and the first
`scanner_exit` call that finds the scanner gone records when it noticed (`gone`).

lynis is never run here (see `_for_this_host`): it would audit this host, not the asset.

Everything an asset scan owns is named after it (principle 2):
- `<data_dir>/local-provider/<id>/`: `families.yaml`, `state.json` (pid, pgid, loop
  device, started, exit code), `scanner.log` (its stdout and stderr), `state/` and `output/` of the
  scanner;
- `<data_dir>/local-provider/<id>.lock`: serialises run and remove of that asset scan;
- every scanner process carries `VMCLARITY_LOCAL_ASSET_SCAN=<id>` in its environment,
  inherited by its children, so they are found even after a crash lost the pid;
- after removal its log is kept as `<data_dir>/local-provider/logs/<id>.log`.

The token is passed in the environment (VMCLARITY_SCANNER_TOKEN), never on the command
line, where `ps` would show it. The scanner gets a small allowlisted environment,
never the control plane's own secrets.
"""

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from tasks.providers import FatalError, Provider, RetryableError, ScannerExit

log = logging.getLogger(__name__)

GiB = 1024 ** 3
TAG = "VMCLARITY_LOCAL_ASSET_SCAN"
DEFAULT_SCANNER = [sys.executable, "-c", "from scanner.cli import main; main()"]
DEFAULT_STOP_GRACE = 10.0
DEFAULT_THROUGHPUT = 50 * 1000 * 1000
# Bounds of the size walk behind an estimate: an estimate must stay cheap.
ESTIMATE_MAX_ENTRIES = 200_000
COMMAND_TIMEOUT = 60
# What the scanner inherits from the worker's environment; nothing else.
SCANNER_ENV = {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV",
               "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
               "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}
SCANNER_ENV_PREFIXES = ("LC_", "SYFT_")
ASSET_SCAN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class LocalProvider(Provider):
    kind = "local"

    def __init__(self, settings):
        if not settings.get("data_dir"):
            raise ValueError("the local provider needs settings['data_dir'] (VMCLARITY_DATA_DIR)")
        self.root = Path(settings["data_dir"]) / "local-provider"
        assets = settings.get("local_assets") or []
        self.local_assets = [p for p in assets.split(":") if p] if isinstance(assets, str) else list(assets)
        self.api_url = settings.get("api_url")
        command = settings.get("scanner_command") or DEFAULT_SCANNER
        self.scanner_command = shlex.split(command) if isinstance(command, str) else list(command)
        self.stop_grace = float(settings.get("stop_grace", DEFAULT_STOP_GRACE))
        self.throughput = float(settings.get("estimate_throughput", DEFAULT_THROUGHPUT))
        self.on_scanner_exit = settings.get("on_scanner_exit")

    # ---- discovery ------------------------------------------------------------------

    def discover_assets(self):
        for path in self.local_assets:
            if not os.path.isabs(path):
                log.warning("VMCLARITY_LOCAL_ASSETS: %s is not an absolute path; skipped", path)
            elif os.path.isdir(path):
                yield {"objectType": "DirInfo", "dirName": path, "location": socket.gethostname()}
            elif os.path.isfile(path):
                yield _image_info(path)
            else:
                log.warning("VMCLARITY_LOCAL_ASSETS: %s is neither a directory nor a file; skipped", path)

    # ---- running a scan -------------------------------------------------------------

    def run_asset_scan(self, job):
        directory = self._directory(job.asset_scan_id)
        with self._locked(job.asset_scan_id):
            record = _read_json(directory / "state.json")
            # Started before (or by a worker that died before recording it): running, or
            # exited; either way the scanner reports its own outcome through the API.
            if record.get("pid") or _processes(job.asset_scan_id, None):
                return
            kind, path = _scan_target(job.asset)
            if not (job.api_url or self.api_url):
                raise FatalError("no API address for the scanner to report to (api_url)")
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            config = _for_this_host(job.scanner_config)
            _write_file(directory / "families.yaml", yaml.safe_dump(config, sort_keys=False))
            record.update(asset_scan_id=job.asset_scan_id, kind=kind, path=path)
            if kind == "image":
                self._attach(directory, record)
                target = ["--mount-device", record["loop"]]
            else:
                target = ["--input", f"rootfs:{path}"]
            self._start(job, directory, record, target)

    def _start(self, job, directory, record, target):
        argv = [*self.scanner_command, "scan", "--config", str(directory / "families.yaml"),
                "--server", job.api_url or self.api_url, "--asset-scan-id", job.asset_scan_id,
                "--state-dir", str(directory / "state"), "--output", str(directory / "output"), *target]
        env = _scanner_environment(job.asset_scan_id, job.mint_token())
        try:
            with open(directory / "scanner.log", "ab") as output:
                process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output,
                                           stderr=subprocess.STDOUT, cwd=directory, env=env,
                                           start_new_session=True)
        except OSError as error:
            raise FatalError(f"cannot start the scanner ({argv[0]}): {error}") from None
        record.update(pid=process.pid, pgid=process.pid, started=_now())
        _write_json(directory / "state.json", record)
        log.info("asset scan %s: scanner started, pid %s", job.asset_scan_id, process.pid)
        # Reap it when it exits, so that a finished scanner is not a zombie that looks alive,
        # and record how it ended. Started after the record: the reaper records under the lock.
        threading.Thread(target=self._reap, args=(job.asset_scan_id, process), name=f"reap-{process.pid}",
                         daemon=True).start()

    def _reap(self, asset_scan_id, process):
        code = process.wait()
        log.info("asset scan %s: scanner pid %s exited with code %s", asset_scan_id, process.pid, code)
        try:
            # Not after removal: a removed asset scan has no lock file, and none is made here.
            with self._locked(asset_scan_id, create=False) as held:
                state = self.root / asset_scan_id / "state.json"
                record = _read_json(state) if held else {}
                if record.get("pid") == process.pid:
                    record.update(exit_code=code, exited=time.time())
                    _write_json(state, record)
        except OSError as error:
            log.warning("asset scan %s: cannot record the scanner's exit: %s", asset_scan_id, error)
        if self.on_scanner_exit is not None:
            try:
                self.on_scanner_exit(asset_scan_id)
            except Exception as error:  # noqa: BLE001 - the sweep asks again later
                log.warning("asset scan %s: cannot report the scanner's exit: %s", asset_scan_id, error)

    def scanner_exit(self, asset_scan_id):
        """How the scanner ended once its main process is gone; None while it runs or none was started.

        Children it left behind do not keep it alive here: removal stops them.
        """
        state = self._directory(asset_scan_id) / "state.json"
        record = _read_json(state)
        if not record.get("pid"):
            return None
        if "exit_code" in record:
            return _exit_of(record)
        if _processes(asset_scan_id, record.get("pgid")):
            return None
        with self._locked(asset_scan_id, create=False) as held:
            record = _read_json(state) if held else {}
            if not record.get("pid"):
                return None  # removed meanwhile
            if "exit_code" in record:
                return _exit_of(record)
            # Not reaped by the process that started it (not yet, or that one died): no exit code.
            if "gone" not in record:
                record["gone"] = time.time()
                _write_json(state, record)
            return ScannerExit(code=None, at=record["gone"])

    def _attach(self, directory, record):
        """Attach the image read-only to a loop device, recorded before and after.

        Under one lock for all asset scans: a worker that died between `losetup` and
        the record left an attached device that no record claims, and the retry adopts it.
        """
        image = os.path.realpath(record["path"])
        with _flock(self.root / "attach.lock"):
            loop = self._unclaimed_loop(image) if record.get("attaching") else None
            if loop is None:
                record.update(image=image, attaching=True)
                _write_json(directory / "state.json", record)
                try:
                    loop = _run(["losetup", "--find", "--show", "--read-only", "--partscan", image]).strip()
                except RuntimeError as error:
                    # On one host this does not heal by itself (no loop support, not root).
                    raise FatalError(f"cannot attach {image} to a loop device: {error}") from None
            record.update(loop=loop, attaching=False)
            _write_json(directory / "state.json", record)

    def _unclaimed_loop(self, image):
        claimed = {_read_json(path).get("loop") for path in self.root.glob("*/state.json")}
        for loop, backing in _loop_devices():
            if backing == image and loop not in claimed:
                return loop
        return None

    # ---- removing a scan ------------------------------------------------------------

    def remove_asset_scan(self, asset_scan_id):
        directory = self._directory(asset_scan_id)
        with self._locked(asset_scan_id) as lock_path:
            record = _read_json(directory / "state.json")
            self._stop(asset_scan_id, directory, record)
            if record.get("attaching"):
                with _flock(self.root / "attach.lock"):
                    record["loop"] = self._unclaimed_loop(record["image"])
            _release_loop(record)
            self._keep_log(asset_scan_id, directory)
            shutil.rmtree(directory, ignore_errors=True)
            # Deleted while held: a waiter notices and locks a fresh file (see _flock).
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)

    def _stop(self, asset_scan_id, directory, record):
        """SIGTERM the scanner's processes, SIGKILL after the grace; RetryableError until gone."""
        if not _processes(asset_scan_id, record.get("pgid")):
            return
        since = record.get("stopping")
        if since is None:
            record["stopping"] = time.time()
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_json(directory / "state.json", record)
            _signal(asset_scan_id, record.get("pgid"), signal.SIGTERM)
        elif time.time() - since >= self.stop_grace:
            _signal(asset_scan_id, record.get("pgid"), signal.SIGKILL)
        # Most scanners die at once: wait a moment rather than a whole retry.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if not _processes(asset_scan_id, record.get("pgid")):
                return
            time.sleep(0.05)
        raise RetryableError(f"the scanner of asset scan {asset_scan_id} is still stopping", after=1)

    def _keep_log(self, asset_scan_id, directory):
        log_file = directory / "scanner.log"
        if log_file.exists():
            (self.root / "logs").mkdir(parents=True, exist_ok=True)
            os.replace(log_file, self.root / "logs" / f"{asset_scan_id}.log")

    def leftovers(self, live_asset_scan_ids):
        if not self.root.is_dir():
            return []
        live = set(live_asset_scan_ids)
        return sorted(entry.name for entry in self.root.iterdir()
                      if entry.is_dir() and entry.name != "logs" and entry.name not in live)

    # ---- estimation -----------------------------------------------------------------

    def estimate(self, stats, asset, template):
        """Size of the directory or image; duration from earlier stats, else at `estimate_throughput`.

        Nothing is billed on this host, so the cost is 0.
        """
        kind, path = _scan_target(asset)
        size = os.stat(path).st_size if kind == "image" else _tree_size(path)
        duration = _stats_duration(stats) or max(1, math.ceil(size / self.throughput))
        return {"duration": duration, "size": math.ceil(size / GiB), "cost": 0.0, "costBreakdown": []}

    # ---- helpers --------------------------------------------------------------------

    def _directory(self, asset_scan_id):
        # The id becomes a path: refuse anything that could leave the provider's directory.
        if not isinstance(asset_scan_id, str) or not ASSET_SCAN_ID.fullmatch(asset_scan_id) \
                or asset_scan_id == "logs":
            raise FatalError(f"unusable asset scan id {asset_scan_id!r}")
        return self.root / asset_scan_id

    @contextlib.contextmanager
    def _locked(self, asset_scan_id, create=True):
        """Hold the asset scan's lock; yield its path (None, unlocked, if not `create` and there is none)."""
        self._directory(asset_scan_id)
        path = self.root / f"{asset_scan_id}.lock"
        with _flock(path, create) as held:
            yield path if held else None


def _exit_of(record):
    """The ScannerExit a record with an exit code describes (since when it was first found gone)."""
    return ScannerExit(code=record["exit_code"], at=min(record["exited"], record.get("gone", record["exited"])))


# ---- assets -------------------------------------------------------------------------


def _scan_target(asset):
    """("dir", path) or ("image", path) for an Asset document; FatalError otherwise."""
    info = (asset or {}).get("assetInfo") or {}
    kind = info.get("objectType")
    host = socket.gethostname()
    if kind == "DirInfo":
        path = info.get("dirName") or ""
        if not os.path.isabs(path):
            raise FatalError(f"DirInfo dirName {path!r} is not an absolute path")
        if not os.path.isdir(path):
            raise FatalError(f"DirInfo {path}: no such directory on this host ({host})")
        return "dir", path
    if kind == "VMInfo":
        path = info.get("instanceID") or ""
        if not (os.path.isabs(path) and os.path.isfile(path)):
            raise FatalError(f"VMInfo {path!r}: the local provider scans disk image files, "
                             f"and there is no such file on this host ({host})")
        return "image", path
    raise FatalError(f"the local provider scans DirInfo directories and VMInfo disk images, not {kind}")


def _for_this_host(config):
    """The scanner config without what must not run on the control-plane host.

    lynis audits the machine it runs on (apt-get update, systemctl, lsmod, its own report
    file) whatever --rootdir says, so here it is left out; with no other scanner listed,
    the family runs the scanner's default checks instead.
    """
    block = config.get("misconfiguration") or {}
    if "lynis" not in (block.get("scanners_list") or []):
        return config
    log.info("the local provider does not run lynis on this host; misconfiguration runs without it")
    scanners = [name for name in block["scanners_list"] if name != "lynis"]
    block = {key: value for key, value in block.items() if key != "scanners_list"}
    if scanners:
        block["scanners_list"] = scanners
    return {**config, "misconfiguration": block}


def _image_info(path):
    status = os.stat(path)
    launched = datetime.fromtimestamp(status.st_mtime, timezone.utc)
    return {
        "objectType": "VMInfo",
        "instanceID": path,
        "instanceProvider": "External",
        "location": socket.gethostname(),
        "image": path,
        "instanceType": "disk-image",
        "platform": "Linux",
        "launchTime": launched.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "rootVolume": {"sizeGB": math.ceil(status.st_size / GiB), "encrypted": "Unknown"},
        "tags": [],
        "securityGroups": [],
    }


def _tree_size(root):
    """Bytes of the regular files under root, never following links; a bounded walk."""
    total, seen, pending = 0, 0, [root]
    while pending and seen < ESTIMATE_MAX_ENTRIES:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    seen += 1
                    with contextlib.suppress(OSError):
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue  # unreadable directories are skipped by the scanner too
    return total


def _stats_duration(stats):
    """Seconds the earlier scan took: the whole scan's time, else the sum of each family's span."""
    stats = stats or {}
    general = (stats.get("general") or {}).get("scanTime") or {}
    whole = _seconds(general.get("startTime"), general.get("endTime"))
    if whole:
        return whole
    total = 0
    for family, inputs in stats.items():
        if family == "general" or not isinstance(inputs, list):
            continue
        times = [item.get("scanTime") or {} for item in inputs]
        starts = [t["startTime"] for t in times if t.get("startTime")]
        ends = [t["endTime"] for t in times if t.get("endTime")]
        if starts and ends:
            total += _seconds(min(starts), max(ends)) or 0
    return total


def _seconds(start, end):
    if not (start and end):
        return 0
    try:
        delta = datetime.fromisoformat(end.replace("Z", "+00:00")) - \
            datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return max(0, math.ceil(delta.total_seconds()))


# ---- processes ----------------------------------------------------------------------


def _scanner_environment(asset_scan_id, token):
    env = {name: value for name, value in os.environ.items()
           if name in SCANNER_ENV or name.startswith(SCANNER_ENV_PREFIXES)}
    env[TAG] = asset_scan_id
    env["VMCLARITY_SCANNER_TOKEN"] = token
    return env


def _processes(asset_scan_id, pgid):
    """Pids of the living (not zombie) processes of an asset scan's scanner.

    A process is the scanner's when it is in its process group or carries its tag in
    its environment (children inherit it, even those that left the group).
    """
    tag = f"{TAG}={asset_scan_id}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            if fields[0] == b"Z":
                continue
            if pgid and int(fields[2]) == pgid:
                found.append(int(entry.name))
                continue
            with open(f"/proc/{entry.name}/environ", "rb") as environ:
                if tag in environ.read().split(b"\0"):
                    found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
    return found


def _signal(asset_scan_id, pgid, signum):
    if pgid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signum)
    for pid in _processes(asset_scan_id, pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


# ---- loop devices -------------------------------------------------------------------


def _loop_devices():
    """(device, backing file) of every attached loop device."""
    devices = []
    for entry in Path("/sys/block").glob("loop*"):
        with contextlib.suppress(OSError):
            backing = (entry / "loop" / "backing_file").read_text().strip()
            devices.append((f"/dev/{entry.name}", backing.removesuffix(" (deleted)")))
    return devices


def _release_loop(record):
    """Unmount what a killed scanner left mounted from the loop device, then detach it."""
    loop, image = record.get("loop"), record.get("image")
    if not loop or (loop, image) not in _loop_devices():
        return  # never attached, already detached, or the number now belongs to someone else
    for mountpoint in _mounts_of(loop):
        try:
            _run(["umount", mountpoint])
        except RuntimeError:
            try:
                _run(["umount", "--lazy", mountpoint])
            except RuntimeError as error:
                raise RetryableError(f"cannot unmount {mountpoint}: {error}", after=5) from None
        # Empty directories only: rmdir refuses anything else, which is the point.
        for directory in (mountpoint, os.path.dirname(mountpoint)):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
    # Partitions the scanner added with partx outlive the loop device; none is no error.
    with contextlib.suppress(RuntimeError):
        _run(["partx", "--delete", loop])
    try:
        _run(["losetup", "--detach", loop])
    except RuntimeError as error:
        raise RetryableError(f"cannot detach {loop}: {error}", after=5) from None


def _mounts_of(device):
    """Mount points of a device and its partitions (/dev/loop3, /dev/loop3p1), deepest first."""
    partition = re.compile(re.escape(device) + r"(p\d+)?")
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if partition.fullmatch(line.split()[0])]
    # /proc/mounts writes a space in a path as \040.
    return sorted({p.replace("\\040", " ") for p in points}, key=len, reverse=True)


def _run(argv):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"`{' '.join(argv)}`: {error}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


# ---- files --------------------------------------------------------------------------


@contextlib.contextmanager
def _flock(path, create=True):
    """An exclusive flock on `path`, across processes and threads alike; yields True once held.

    With `create` false a missing (or meanwhile deleted) file is not made: it yields False, unlocked.
    """
    if create:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
        except FileNotFoundError:
            if create:
                raise
            yield False
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        # The previous holder may have deleted the file: then lock the one now at `path`.
        try:
            current = os.stat(path)
            mine = os.fstat(fd)
            if (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield True
    finally:
        os.close(fd)


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}


def _write_json(path, document):
    _write_file(path, json.dumps(document, indent=2) + "\n")


def _write_file(path, text):
    """Write atomically: a reader (or a crash) sees the old file or the new one, never half."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
