"""Which files the secrets engine leaves alone, and why.

Skipped from the path alone (the file is never read for us):
- known binary formats by extension (BINARY_EXTENSIONS: images, audio, video, fonts,
  archives and compressed files, compiled code, packages, disk images): nothing in them
  is readable text, and we do not decompress;
- tests inside third-party code: a test/, tests/, testdata/, test_data/, __tests__/ or
  dummyserver/ (urllib3's test server, keys included, vendored by the Google Cloud SDK)
  directory, or a *_test.go, *_test.py or test_*.py file, in a third-party tree (below);
- minified bundles and source maps (*.min.js, *.min.css, *.map) in a third-party tree
  (an application's own are scanned);
- NOISE_PATHS: CPython's test suite wherever Python is installed, documentation and
  translations in share/ trees, git's compressed objects, and the host keys that every
  SSH server and Debian's ssl-cert package generate for themselves (the SSH topology
  family reports host keys).

Third-party trees are /usr/lib, /usr/lib64 and /usr/share (OS packages; the FHS puts a
host's configuration in /etc), and any node_modules, site-packages, dist-packages,
third_party, vendor or vendored directory, or Go module cache (pkg/mod). Besides the
skips above, the context-guessing rules (generic assignments, passwords in URLs) don't
run there: in installed code they find documentation examples, not configuration.
Rules for specific formats (keys, checksummed tokens, JWTs) still do.

Secrets put in these places by a person are lost, which is why the lists stay short and
stay off /etc, /home, /root, /opt, /srv and /var. `skip_noise_paths: false` scans
everything with every rule.

Skipped from the first bytes: files with a NUL byte in their first 8 KiB (binaries, and
UTF-16 text, which we don't decode) or a binary magic number (BINARY_MAGIC).
"""

import fnmatch
import re

BINARY_EXTENSIONS = frozenset(
    "png jpg jpeg gif ico bmp webp tif tiff psd xcf mp3 mp4 m4a ogg oga wav flac avi mkv mov webm "
    "woff woff2 ttf otf eot pfb zip gz tgz bz2 xz lz lzma zst 7z rar jar war ear whl egg apk deb rpm "
    "so a o ko pyc pyo class dll exe mo gmo pdf iso img qcow2 vmdk vdi".split()
)

THIRD_PARTY_PREFIXES = ("/usr/lib/", "/usr/lib64/", "/usr/share/")
THIRD_PARTY_DIRS = frozenset(("node_modules", "site-packages", "dist-packages", "third_party", "vendor", "vendored"))
TEST_DIRS = frozenset(("test", "tests", "testdata", "test_data", "__tests__", "dummyserver"))
TEST_FILE_SUFFIXES = ("_test.go", "_test.py")
BUNDLE_SUFFIXES = (".min.js", ".min.css", ".map")

NOISE_PATHS = (
    "*/lib/python[23]*/test/*",  # its ssl tests ship private keys
    "*/share/doc/*", "*/share/man/*", "*/share/info/*", "*/share/locale/*", "*/share/i18n/*", "*/LC_MESSAGES/*",
    "*/.git/objects/*",
    "/etc/ssh/ssh_host_*_key", "/etc/ssl/private/ssl-cert-snakeoil.key",
)

#: Starts of files that are binary even without a NUL byte early on.
BINARY_MAGIC = (b"\x7fELF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"PK\x03\x04", b"\x1f\x8b", b"\xfd7zXZ",
                b"\x28\xb5\x2f\xfd", b"%PDF-", b"\x00asm", b"OggS", b"wOFF", b"wOF2", b"\xca\xfe\xba\xbe")

SNIFF_SIZE = 8192


class PathFilter:
    """Decisions from in-root paths; `prefix` is where the root sits on its machine ('' for a whole disk)."""

    def __init__(self, skip_noise=True, extra=(), prefix=""):
        self.skip_noise = skip_noise
        self.globs = _Globs((NOISE_PATHS if skip_noise else ()) + tuple(extra))
        self.prefix = prefix.rstrip("/")

    def classify(self, path):
        """(why `path` is skipped or None, whether it is in a third-party tree)."""
        path = self.prefix + path
        directories, _, name = path.rpartition("/")
        if "." in name and name.rpartition(".")[2].lower() in BINARY_EXTENSIONS:
            return "binary-extension", False
        if self.globs.match(path):
            return "noise-path", False
        if not self.skip_noise:
            return None, False
        parts = directories.split("/")
        third_party = (path.startswith(THIRD_PARTY_PREFIXES) or not THIRD_PARTY_DIRS.isdisjoint(parts)
                       or "/pkg/mod/" in directories)
        if third_party and (not TEST_DIRS.isdisjoint(parts) or name.endswith(TEST_FILE_SUFFIXES + BUNDLE_SUFFIXES)
                            or (name.startswith("test_") and name.endswith(".py"))):
            return "noise-path", True
        return None, third_party


class _Globs:
    """Globs grouped by their longest literal part: a group's one regex runs only on paths holding it."""

    def __init__(self, globs):
        groups = {}
        for glob in globs:
            groups.setdefault(max(re.split(r"[*?\[\]]", glob), key=len), []).append(fnmatch.translate(glob))
        self.groups = [(literal, re.compile("|".join(patterns))) for literal, patterns in groups.items()]

    def match(self, path):
        for literal, regex in self.groups:  # a plain loop: twice as fast as any() over a generator
            if literal in path and regex.match(path):
                return True
        return False


def is_binary(first_chunk):
    return b"\0" in first_chunk[:SNIFF_SIZE] or first_chunk.startswith(BINARY_MAGIC)
