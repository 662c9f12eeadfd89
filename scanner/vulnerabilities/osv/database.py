"""The OSV database: records loaded from disk (or the helper server) and indexed by package."""

import json
import logging
import time
import zipfile
import zlib
from collections import Counter
from pathlib import Path

from scanner.versions import InvalidVersion, scheme
from scanner.vulnerabilities.osv import ecosystems
from scanner.vulnerabilities.osv.records import compile_record

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 32 * 1024 * 1024  # the largest real OSV records are a few hundred KB
MAX_MEMBERS = 5_000_000  # members read from one archive


class OsvError(Exception):
    """The OSV data cannot be used at all (missing path, unreachable server, HTTP 4xx)."""


class OsvDatabase:
    """OSV advisories indexed by (ecosystem key, normalised package name).

    Attributes a caller may read: `record_count` (records indexed), `skipped` (Counter of
    reasons for anything not used), `sources` (files read), `missing_ecosystems` (asked of
    the server, which had none), `load_seconds`.
    """

    def __init__(self):
        self._index = {}
        self._seen_ids = set()
        self._parsed = {}
        self.record_count = 0
        self.skipped = Counter()
        self.sources = []
        self.missing_ecosystems = []
        self.load_seconds = 0.0

    @classmethod
    def from_path(cls, path, ecosystems=None):
        """Load a directory in OSV's per-ecosystem layout (<Ecosystem>/all.zip or
        <Ecosystem>/*.json), a single .zip, or a single .json record.

        With `ecosystems` (base names such as "PyPI", "Debian"), only those folders are read.
        """
        start = time.perf_counter()
        db = cls()
        path = Path(path)
        if path.is_dir():
            db._load_dir(path, set(ecosystems) if ecosystems else None)
        elif path.is_file():
            db._load_file(path)
        else:
            raise OsvError(f"OSV data not found: {path}")
        db.load_seconds = time.perf_counter() - start
        return db

    @classmethod
    def from_server(cls, url, cache_dir, ecosystems, **options):
        """Download (or revalidate) <url>/<Ecosystem>/all.zip for each base ecosystem into
        cache_dir and load them. Options: timeout, retries, backoff, max_bytes."""
        from scanner.vulnerabilities.osv.server import fetch_ecosystems

        start = time.perf_counter()
        files, missing = fetch_ecosystems(url, cache_dir, ecosystems, **options)
        db = cls()
        db.missing_ecosystems = missing
        for file in files:
            db._load_file(file)
        db.load_seconds = time.perf_counter() - start
        return db

    @classmethod
    def from_records(cls, records):
        """Build a database from already decoded OSV records (dicts)."""
        db = cls()
        for record in records:
            db.add_record(record)
        return db

    def add_record(self, record):
        """Index one decoded OSV record (skipping it, with a reason, if unusable)."""
        record_id = record.get("id") if isinstance(record, dict) else None
        if isinstance(record_id, str) and record_id in self._seen_ids:
            # The same record appears under every ecosystem it affects.
            self.skipped["duplicate record id"] += 1
            return
        entries = compile_record(record, self.skipped, self._parse)
        if not entries:
            return
        self._seen_ids.add(record_id)
        self.record_count += 1
        for key, name, entry in entries:
            self._index.setdefault((key, name), []).append(entry)

    def lookup(self, ecosystem, name):
        """The Affected entries for a package (ecosystem key, normalised name)."""
        return self._index.get((ecosystem, name), ())

    def _parse(self, scheme_name, text):
        # Real data repeats the same few thousand version strings a hundred thousand times.
        key = (scheme_name, text)
        if key not in self._parsed:
            try:
                self._parsed[key] = scheme(scheme_name).parse(text)
            except InvalidVersion:
                self._parsed[key] = None
        return self._parsed[key]

    def _load_dir(self, root, wanted):
        for child in sorted(root.iterdir()):
            if child.is_dir() and not child.is_symlink():
                base = ecosystems.base_ecosystem(child.name)
                if wanted is None or base in wanted or child.name in wanted:
                    self._load_ecosystem_dir(child)
            elif child.is_file() and child.suffix in (".zip", ".json") and wanted is None:
                self._load_file(child)

    def _load_ecosystem_dir(self, folder):
        archive = folder / "all.zip"
        if archive.is_file():
            self._load_file(archive)
            return
        for file in sorted(folder.glob("*.json")):
            if file.is_file():
                self._load_file(file)

    def _load_file(self, path):
        self.sources.append(str(path))
        if path.suffix == ".zip":
            self._load_zip(path)
            return
        try:
            if path.stat().st_size > MAX_RECORD_BYTES:
                self.skipped["record too large"] += 1
                return
            data = path.read_bytes()
        except OSError:
            self.skipped["unreadable file"] += 1
            return
        self._load_json(data)

    def _load_zip(self, path):
        try:
            with zipfile.ZipFile(path) as archive:
                members = archive.infolist()[:MAX_MEMBERS]
                for info in members:
                    if not info.is_dir() and info.filename.endswith(".json"):
                        self._load_member(archive, info)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            log.warning("OSV archive %s is unreadable: %s", path, error)
            self.skipped["unreadable archive"] += 1

    def _load_member(self, archive, info):
        if info.file_size > MAX_RECORD_BYTES:
            self.skipped["record too large"] += 1
            return
        try:
            with archive.open(info) as member:
                data = member.read(MAX_RECORD_BYTES + 1)  # the header's size may lie
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError):
            self.skipped["unreadable archive member"] += 1
            return
        if len(data) > MAX_RECORD_BYTES:
            self.skipped["record too large"] += 1
            return
        self._load_json(data)

    def _load_json(self, data):
        try:
            record = json.loads(data)
        except (ValueError, RecursionError):
            self.skipped["invalid JSON"] += 1
            return
        self.add_record(record)
