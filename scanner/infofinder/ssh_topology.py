"""The `sshTopology` scanner: the SSH keys that tie this machine to others.

It rides the shared walk (no second read of the disk) and reports InfoFinderInfo
results, one per key, with `data` as `ssh-keygen -l` prints it
("256 SHA256:<base64> <comment> (ED25519)") and `path` inside the scanned root:

- SSHDaemonKeyFingerprint: private keys in /etc/ssh (as the original did), plus
  /etc/ssh/ssh_host_*.pub files whose private key is not there;
- SSHAuthorizedKeyFingerprint: each key line of ~/.ssh/authorized_keys(2), options
  skipped, comment kept;
- SSHKnownHostFingerprint: each line of ~/.ssh/known_hosts(2) and /etc/ssh/ssh_known_hosts(2),
  plain or hashed hosts; @cert-authority and @revoked lines are kept (ssh-keygen -l skips
  them) with the marker in front of the hosts;
- SSHPrivateKeyFingerprint: any file with a PEM/OpenSSH private key header in a user's
  ~/.ssh, or anywhere under /root and /home (as the original searched).

Home directories come from the target's own /etc/passwd (read up front), plus /root and
/home/*. Malformed lines are skipped and counted in the notes. An encrypted PEM key cannot
be fingerprinted without its passphrase; like ssh-keygen we then use its .pub file, if any.
"""

import posixpath

from scanner.family import FamilyScanner, ScannerResult
from scanner.infofinder import ssh_keys
from scanner.walker import WholeFileVisitor, read_in_root

SCANNER_NAME = "sshTopology"
DAEMON_DIR = "/etc/ssh"
AUTHORIZED_FILES = ("authorized_keys", "authorized_keys2")
KNOWN_HOSTS_FILES = ("known_hosts", "known_hosts2")
GLOBAL_KNOWN_HOSTS_FILES = ("ssh_known_hosts", "ssh_known_hosts2")
SEARCHED_TREES = ("/root/", "/home/")  # searched through for private keys
MAX_LIST_SIZE = 4 * 1024**2  # authorized_keys / known_hosts
MAX_KEY_SIZE = 64 * 1024  # a 16384-bit RSA key is about 13 KiB

DAEMON = "SSHDaemonKeyFingerprint"
AUTHORIZED = "SSHAuthorizedKeyFingerprint"
KNOWN_HOST = "SSHKnownHostFingerprint"
PRIVATE = "SSHPrivateKeyFingerprint"


def home_dirs(root):
    """Home directories named in the target's /etc/passwd, plus /root."""
    homes = {"/root"}
    try:
        text = read_in_root(root, "/etc/passwd", limit=16 * 1024**2).decode("utf-8", "replace")
    except OSError:
        return homes
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[5].startswith("/"):
            homes.add(posixpath.normpath(fields[5]))
    return homes


def info(info_type, path, data):
    return {"scannerName": SCANNER_NAME, "type": info_type, "path": path, "data": data}


class SshKeyFiles(WholeFileVisitor):
    """Collects key files from the walk; `results()` turns them into InfoFinderInfo dicts."""

    name = SCANNER_NAME
    max_file_size = MAX_LIST_SIZE

    def __init__(self, homes):
        self.ssh_dirs = {posixpath.join(home, ".ssh") for home in homes}
        self.infos = []
        self.private = {}  # raw path -> (info type, display path, Key or None, comment or None)
        self.public = {}  # raw path of a .pub -> (Key, comment, display path)
        self.skipped = {}  # display path -> malformed lines or unreadable keys

    def _place(self, path):
        """'daemon' for /etc/ssh, 'user' for a ~/.ssh, 'search' elsewhere under /root and /home, else None."""
        directory = posixpath.dirname(path)
        if directory == DAEMON_DIR:
            return "daemon"
        parts = directory.split("/")
        if directory in self.ssh_dirs or (len(parts) == 4 and parts[1] == "home" and parts[3] == ".ssh"):
            return "user"
        if path.startswith(SEARCHED_TREES):
            return "search"
        return None

    def wants(self, entry):
        place = self._place(entry.path)
        if place is None or entry.size == 0:
            return False
        return entry.size <= (MAX_KEY_SIZE if place == "search" else MAX_LIST_SIZE)

    def handle(self, entry, data):
        place = self._place(entry.path)
        name = posixpath.basename(entry.path)
        if place == "daemon" and name in GLOBAL_KNOWN_HOSTS_FILES:
            self._lines(entry, data, KNOWN_HOST, ssh_keys.parse_known_host)
        elif place == "user" and name in AUTHORIZED_FILES:
            self._lines(entry, data, AUTHORIZED, ssh_keys.parse_authorized_key)
        elif place == "user" and name in KNOWN_HOSTS_FILES:
            self._lines(entry, data, KNOWN_HOST, ssh_keys.parse_known_host)
        elif entry.size <= MAX_KEY_SIZE and ssh_keys.is_private_key(data):
            self._private_key(entry, data, DAEMON if place == "daemon" else PRIVATE)
        elif name.endswith(".pub") and entry.size <= MAX_KEY_SIZE:
            self._public_key(entry, data)

    def _lines(self, entry, data, info_type, parse):
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                parsed = parse(line)
            except ValueError:
                self._skip(entry)
                continue
            if parsed is not None:
                key, comment = parsed
                self.infos.append(info(info_type, entry.display_path, key.describe(comment)))

    def _private_key(self, entry, data, info_type):
        try:
            key, comment = ssh_keys.parse_private(data)
        except ssh_keys.Encrypted:
            key, comment = None, None  # its .pub, if there is one, may still tell
        except ValueError:
            self._skip(entry)
            return
        self.private[entry.path] = (info_type, entry.display_path, key, comment)

    def _public_key(self, entry, data):
        try:
            key, comment = ssh_keys.parse_public(data.decode("utf-8", "replace").strip())
        except ValueError:
            return  # a .pub that is not a key is nobody's business here
        self.public[entry.path] = (key, comment, entry.display_path)

    def _skip(self, entry):
        self.skipped[entry.display_path] = self.skipped.get(entry.display_path, 0) + 1

    def results(self):
        infos = list(self.infos)
        public = dict(self.public)
        for raw, (info_type, path, key, comment) in self.private.items():
            pub = public.pop(raw + ".pub", None)
            if key is None and pub is not None:
                key = pub[0]  # an encrypted PEM key: ssh-keygen -l also falls back to the .pub
            if key is None:
                self.skipped[path] = self.skipped.get(path, 0) + 1
                continue
            if pub is not None and pub[0].blob == key.blob:
                comment = pub[1]  # ssh-keygen -l shows the .pub's comment when there is one
            infos.append(info(info_type, path, key.describe(comment)))
        for raw, (key, comment, path) in public.items():
            directory, name = posixpath.split(raw)
            if directory == DAEMON_DIR and name.startswith("ssh_host_"):  # a host key without its private half
                infos.append(info(DAEMON, path, key.describe(comment)))
        unique = {(item["path"], item["type"], item["data"]): item for item in infos}
        return [unique[key] for key in sorted(unique)]

    def notes(self):
        return [f"{path}: skipped {count} malformed or unreadable key(s)"
                for path, count in sorted(self.skipped.items())]


class SshTopologyScanner(FamilyScanner):
    """InfoFinder scanner `sshTopology`; it has no settings."""

    name = SCANNER_NAME

    def __init__(self, root, settings=None):
        super().__init__(root, settings)
        self.files = None

    def visitors(self):
        self.files = SshKeyFiles(home_dirs(self.root))
        return [self.files]

    def finish(self):
        if self.files is None:
            return ScannerResult(errors=["sshTopology: the walk never ran"], scanned=False)
        return ScannerResult(results=self.files.results(), notes=self.files.notes())
