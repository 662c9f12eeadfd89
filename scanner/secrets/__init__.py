"""The secrets family's own engine, scanner name `secrets`.

It replaces the original's gitleaks run: the rules (scanner.secrets.rules) cover cloud
keys (AWS, GCP, Azure), GitHub, GitLab, Slack, Stripe, npm and PyPI tokens, JWTs, PEM and
OpenSSH private keys, passwords in URLs and generic high-entropy assignments; hyperscan
picks where to look (scanner.secrets.engine); the visitor streams every text file of the
shared walk through them (scanner.secrets.visitor), skipping binaries and known noise
paths (scanner.secrets.skip).

Usage:
    scanner = SecretsScanner(root, settings)
    walk(root, scanner.visitors())
    result = scanner.finish()   # ScannerResult; results are API Secret dicts

A result never holds the secret or any part of it:
    description  "<rule description> (<rule id>)"
    filePath     the in-root path, shown safely (Entry.display_path)
    startLine, endLine, startColumn, endColumn
                 1-based; columns count characters; endColumn is the secret's last
                 character; the span is the secret itself
    fingerprint  32 hex digits of HMAC-SHA256(fingerprint_key, rule id, path, secret):
                 the same secret in the same file keeps its finding across scans and line
                 moves, the same secret in another file is another finding, and a rotated
                 secret is a new one. The key is what keeps anyone who reads findings from
                 testing guesses of a weak password against them: the control plane sends
                 its installation's own (tasks.scanner_config), the same in every scan. A
                 run without one uses a public constant and says so in a note.
                 The identity key of a Secret finding is (fingerprint, startColumn, endColumn),
                 so one secret repeated in one file at the same columns is one finding.

Settings (`scanners_config.secrets`):
    max_file_size       bytes; larger files are skipped and counted (default 64 MiB)
    skip_noise_paths    skip noise paths and tests inside third-party code, and keep the
                        context-guessing rules out of third-party trees (scanner.secrets.skip;
                        default true)
    skip_paths          more globs over in-root paths to skip (default none)
    path_prefix         where the root sits on the scanned machine, for the path rules above
                        (default '': the root is a whole disk; '/srv/app' for a directory asset)
    fingerprint_key     the HMAC key of fingerprints (default a public constant, with a note)
    max_findings_per_file  (default 100), max_findings (default 10000): hostile files
                        full of fake keys cannot flood the report
"""

from scanner.family import FamilyScanner, ScannerResult
from scanner.secrets.engine import Engine
from scanner.secrets.rules import RULES
from scanner.secrets.skip import PathFilter
from scanner.secrets.visitor import SecretsVisitor

__all__ = ["SecretsScanner", "RULES"]

#: Public, so fingerprints made with it let a reader test password guesses offline.
DEFAULT_FINGERPRINT_KEY = "vmclarity-secrets-v1"
DEFAULT_KEY_NOTE = ("fingerprints use the public default key (no fingerprint_key in scanners_config.secrets): "
                    "anyone who reads them can test guesses of the secrets; a control plane sets its own key")


class SecretsScanner(FamilyScanner):
    name = "secrets"

    def __init__(self, root, settings=None, *, use_hyperscan=True):
        super().__init__(root, settings)
        options = self.settings
        self.default_key = not options.get("fingerprint_key")
        self.engine = Engine(use_hyperscan=use_hyperscan)
        self.visitor = SecretsVisitor(
            self.engine,
            PathFilter(bool(options.get("skip_noise_paths", True)), tuple(options.get("skip_paths") or ()),
                       str(options.get("path_prefix") or "")),
            str(options.get("fingerprint_key") or DEFAULT_FINGERPRINT_KEY).encode(),
            max_file_size=int(options.get("max_file_size", 64 * 1024**2)),
            max_per_file=int(options.get("max_findings_per_file", 100)),
            max_total=int(options.get("max_findings", 10000)),
        )

    def visitors(self):
        return [self.visitor]

    def finish(self):
        visitor = self.visitor
        results = sorted(visitor.findings, key=lambda s: (s["filePath"], s["startLine"], s["startColumn"]))
        notes = [f"scanned {visitor.bytes_scanned} bytes with {self.engine.kind} prefiltering"]
        if visitor.skipped:
            notes.append("skipped files: " + ", ".join(f"{reason} {count}"
                                                        for reason, count in sorted(visitor.skipped.items())))
        if visitor.truncated:
            notes.append(f"more than {visitor.max_per_file} findings, the rest not reported, in: "
                         + ", ".join(visitor.truncated[:10]))
        if len(visitor.findings) >= visitor.max_total:
            notes.append(f"stopped reporting at {visitor.max_total} findings")
        if self.default_key:
            notes.append(DEFAULT_KEY_NOTE)
        return ScannerResult(results=results, notes=notes)
