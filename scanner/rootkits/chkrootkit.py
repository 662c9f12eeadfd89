"""The `chkrootkit` rootkit scanner: `chkrootkit -r ROOT`, made safe for a disk that is not ours.

chkrootkit was written to check the machine it runs on; `-r` only re-points part of it.
Read in its source (0.57), that means:

- It writes into the target: the Syslogk test does `echo 1 > ROOT/proc/syslogk` and then
  reports the file it just made. So it never sees the real tree: it runs in a private
  mount namespace (unshare) on a bind mount of ROOT remounted read-only, noexec, nosuid
  and nodev. The write fails, nothing changes on the disk, and the view disappears with
  the namespace even if we are killed. Without the privileges for that it does not run.
  A copy-on-write overlay would not do: the Syslogk file would land there and be reported.
- It runs the target's own programs (the Ebury test runs ROOT/usr/bin/ssh -V): noexec stops that.
- Its "suspect PHP files" test passes the target's /tmp file names through `sh -c`, so a
  file named `$(...)` runs as root on the scanner. We run a private copy of the script with
  that one line fixed (the name becomes "$1"); an unknown variant of it refuses to run.
- Some tests only look at the scanner host, so they are not run (HOST_ONLY_TESTS).
- Some ask the host's `ps` and `ss`/`netstat`: slapper and scalper add the host's listening
  ports to their file checks, tcpdump is only a port check, and inetd/sshd/tcpd choose which
  of the target's binaries to check from the host's processes. chkrootkit is given stub
  `ss`/`netstat` that list nothing and a stub `ps` that lists sshd, inetd and xinetd
  (`-p`), so those tests judge the target's files only, the same way whatever the host runs.
- "suspicious files and dirs" (any dot-file under /usr/lib, /lib, /usr/man) flags Python
  packages, build ids, .gitignore files... on most machines; like the original we drop it
  unless `include_hidden_files` is set.

Results: one Rootkit per warning (or INFECTED command), the view's path replaced by '/' in
messages. rootkitType: APPLICATION for trojaned system commands and the named user-space
rootkits, worms and backdoors; KERNEL for kernel-module rootkits (LKM, modules, Suckit);
UNKNOWN for the generic searches (suspicious files, sniffer logs, PHP files, shell history).

Settings (`scanners_config.chkrootkit`): binary_path (default "chkrootkit"), timeout
seconds (default 1800), include_hidden_files (default false).
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile

from scanner.family import FamilyScanner, ScannerResult

SCANNER_NAME = "chkrootkit"
DEFAULT_TIMEOUT = 1800
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

HOST_ONLY_TESTS = {
    "lkm": "reads the host's /proc/kallsyms and runs chkproc/chkdirs on the host's processes",
    "sniffer": "asks the host's network interfaces for promiscuous mode",
    "bindshell": "looks at the host's listening ports",
    "tcpdump": "looks at the host's network connections",
    "chkutmp": "compares the host's processes with the host's utmp",
    "z2": "with -r it doubles the root in the lastlog path and always reports an error",
    "OSX_RSPLUG": "looks at the host's /Library (macOS only)",
}
HIDDEN_FILES_SEARCH = "suspicious files and dirs"
GENERIC_SEARCHES = ("suspicious files", "known suspicious", "sniffer's logs", "suspect PHP files",
                    "zero-size shell history", "hardlinked shell history")
KERNEL_NAME = re.compile(r"lkm|kernel|module|suckit", re.IGNORECASE)
# Warnings that only say a test could not be done (wted says "unable to open" when the target has no wtmp).
NOT_A_FINDING = re.compile(r"not tested|can't exec|unable to open")

# The unsafe line of the "suspect PHP files" test and its fix: the file name is passed as $1.
UNSAFE_SCRIPT = ('script="${head} $arg \\"{}\\" 2>/dev/null | ${grep} -q \\"^#!.*php\\" && echo \\"{}\\""',
                 'script="${head} $arg \\"\\$1\\" 2>/dev/null | ${grep} -q \\"^#!.*php\\" && echo \\"\\$1\\""')
UNSAFE_EXEC = ('-exec sh -c "$script" \\;', '-exec sh -c "$script" sh {} \\;')
UNSAFE_SH = re.compile(r"-exec \S*sh -c")  # safe only when the file name comes as an argument: sh -c '...' sh {}

STUBS = {
    "ps": "#!/bin/sh\n# vmclarity: the daemons whose target binaries chkrootkit checks only when they run\n"
          "echo '  PID TTY      STAT   TIME COMMAND'\necho '    1 ?        Ss     0:00 /usr/sbin/sshd'\n"
          "echo '    2 ?        Ss     0:00 /usr/sbin/inetd'\necho '    3 ?        Ss     0:00 /usr/sbin/xinetd'\n",
    "ss": "#!/bin/sh\n# vmclarity: the host's sockets say nothing about the target\nexit 0\n",
    "netstat": "#!/bin/sh\n# vmclarity: the host's sockets say nothing about the target\nexit 0\n",
}

# Runs inside the new mount namespace: the read-only view, a tmpfs for the stubs, then chkrootkit.
IN_NAMESPACE = r"""
fail() { echo "vmclarity-view: $1" >&2; exit 97; }
mount --bind "$1" "$2" || fail "cannot bind-mount the root"
mount -o remount,bind,ro,nosuid,nodev,noexec "$2" || fail "cannot make the view read-only"
mount -t tmpfs -o size=1m,mode=0755 vmclarity-tools "$4" || fail "cannot mount a tmpfs for the tool stubs"
cp "$3"/* "$4"/ && chmod 0755 "$4"/* || fail "cannot install the tool stubs"
shift 4
exec "$@"
"""
VIEW_FAILED = 97


class ChkrootkitScanner(FamilyScanner):
    name = SCANNER_NAME

    def __init__(self, root, settings=None):
        super().__init__(root, settings)
        self.output = None
        self.view = None
        self.error = None
        self.notes = []

    def run(self):
        try:
            self.output, self.view = run_chkrootkit(self.settings.get("binary_path") or "chkrootkit", self.root,
                                                    int(self.settings.get("timeout", DEFAULT_TIMEOUT)))
        except ChkrootkitError as error:
            self.error = f"chkrootkit: {error}"

    def finish(self):
        if self.error:
            return ScannerResult(errors=[self.error], scanned=False)
        if self.output is None:
            return ScannerResult(errors=["chkrootkit: did not run"], scanned=False)
        results = parse_output(self.output, self.view, bool(self.settings.get("include_hidden_files")))
        notes = [f"chkrootkit: not run, host-only: {', '.join(sorted(HOST_ONLY_TESTS))}"]
        return ScannerResult(results=results, notes=notes)


class ChkrootkitError(Exception):
    pass


def run_chkrootkit(binary, root, timeout):
    """chkrootkit's stdout for `root`, run on a private read-only view; returns (stdout, view path)."""
    script_path = shutil.which(binary, path=f"{os.environ.get('PATH', '')}:{HOST_PATH}")  # it lives in sbin
    if script_path is None:
        raise ChkrootkitError(f"{binary} not found")
    with open(script_path, encoding="utf-8", errors="surrogateescape") as handle:
        script = safe_script(handle.read())
    tests = [test for test in offered_tests(script) if test not in HOST_ONLY_TESTS]
    workdir = tempfile.mkdtemp(prefix="vmclarity-chkrootkit-", dir="/tmp")  # chkrootkit splits paths on spaces
    try:
        view, stubs, tools = (os.path.join(workdir, name) for name in ("view", "stubs", "tools"))
        for directory in (view, stubs, tools):
            os.mkdir(directory, 0o700)
        for name, text in STUBS.items():
            with open(os.path.join(stubs, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        copy = os.path.join(workdir, "chkrootkit")
        with open(copy, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(script)
        command = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", IN_NAMESPACE,
                   "vmclarity-view", os.path.abspath(root), view, stubs, tools,
                   "/bin/sh", copy, "-r", view, "-p", f"{tools}:{HOST_PATH}", *tests]
        stdout, stderr, code = _run(command, timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # the mounts went with the namespace
    if code == VIEW_FAILED or (code != 0 and "unshare:" in stderr):
        raise ChkrootkitError(f"no private read-only view of {root}, so not running it there: {stderr.strip()[-300:]}")
    if code != 0:
        raise ChkrootkitError(f"exit {code}: {(stderr or stdout).strip()[-300:]}")
    return stdout, view


def _run(command, timeout):
    """Run in its own session, so that a timeout kills chkrootkit and everything it started."""
    env = {"PATH": HOST_PATH, "HOME": "/root", "SHELL": "/bin/sh", "LANG": "C", "LC_ALL": "C"}
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                   start_new_session=True)
    except FileNotFoundError:
        raise ChkrootkitError("unshare (util-linux) not found: cannot make a private read-only view") from None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ChkrootkitError(f"timed out after {timeout}s") from None
    return stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"), process.returncode


def safe_script(text):
    """The chkrootkit script with the file-name injection of its PHP test fixed; refuses unknown variants."""
    if UNSAFE_SCRIPT[0] in text and UNSAFE_EXEC[0] in text:
        text = text.replace(UNSAFE_SCRIPT[0], UNSAFE_SCRIPT[1]).replace(UNSAFE_EXEC[0], UNSAFE_EXEC[1])
    if any(UNSAFE_SH.search(line) and " sh {} " not in line for line in text.splitlines()):
        raise ChkrootkitError("this chkrootkit passes file names through sh -c in a way we cannot fix; not running it")
    return text


def offered_tests(script):
    """The tests the script offers: its TROJAN and TOOLS lists."""
    names = []
    for variable in ("TROJAN", "TOOLS"):
        found = re.search(rf'^{variable}="([^"]*)"', script, re.MULTILINE)
        if found is None:
            raise ChkrootkitError(f"cannot find the {variable} test list in the chkrootkit script")
        names += [word for word in found.group(1).split() if word != "\\"]
    return names


# Output

CHECKING = re.compile(r"^Checking `([^']+)'\.\.\.\s*(.*)$")
SEARCHING = re.compile(r"^Searching for (.+?)\.\.\.\s*(.*)$")


def parse_output(stdout, view, include_hidden_files=False):
    """Rootkit results from chkrootkit's (non-quiet) output of a run on `view`."""
    stdout = _in_root_paths(stdout, view)
    results, block = [], None
    test = search = None
    for line in stdout.splitlines():
        checking, searching = CHECKING.match(line), SEARCHING.match(line)
        if checking or searching or line.startswith("WARNING: "):
            _close(block, results, include_hidden_files)
            block = None
        if checking:
            test, search = checking.group(1), None
            if checking.group(2).startswith("INFECTED"):
                results.append(_trojaned(test, checking.group(2)))
        elif searching:
            search = searching.group(1)
        elif line.startswith("WARNING: "):
            block = {"test": test, "search": search, "message": line[len("WARNING: "):].strip(), "details": []}
        elif block is not None and line.strip():
            block["details"].append(line.strip())
    _close(block, results, include_hidden_files)
    unique = {(item["rootkitName"], item["rootkitType"], item["message"]): item for item in results}
    return list(unique.values())


def _in_root_paths(text, view):
    """The output with the view's path (chkrootkit's ROOTDIR) turned back into '/'."""
    view = view.rstrip("/")
    return text.replace(view + "//", "/").replace(view + "/", "/").replace(view, "/")


def _trojaned(test, status):
    detail = status.removeprefix("INFECTED").strip(" :")
    detail = "" if detail == "but disabled" else detail
    message = f"`{test}' looks trojaned (chkrootkit: INFECTED)" + (f": {detail}" if detail else "")
    return {"rootkitName": f"trojaned {test}", "rootkitType": "APPLICATION", "message": message}


def _close(block, results, include_hidden_files):
    """Turn one WARNING block into a Rootkit, unless it is about the host or only says a test could not run."""
    if block is None or block["test"] in HOST_ONLY_TESTS:
        return
    if NOT_A_FINDING.search(" ".join([block["message"]] + block["details"])):
        return
    name = (block["search"] or block["test"] or "unknown").removesuffix(" rootkit").strip()
    if name == HIDDEN_FILES_SEARCH and not include_hidden_files:
        return
    message = block["message"].rstrip(":").strip()
    if block["details"]:
        message += ": " + ", ".join(sorted(block["details"]))
    results.append({"rootkitName": name, "rootkitType": _type_of(name), "message": message})


def _type_of(name):
    if name.startswith(GENERIC_SEARCHES):
        return "UNKNOWN"
    if KERNEL_NAME.search(name):
        return "KERNEL"
    return "APPLICATION"
