"""The walker visitor of the secrets engine: streams each text file through the rules.

A file is scanned in buffers of whole chunks. A buffer that is not the file's last keeps
its final `engine.reach` bytes for the next one, and only matches that start before them
are decided now: a match across a chunk boundary is seen whole in the next buffer, and
memory stays bounded (about one chunk plus twice the reach) whatever the file's size.

Positions: lines and columns are 1-based. A line ends at '\\n' (so CRLF files count
right; a lone '\\r' is not a line break). Columns count characters (UTF-8 code points:
every byte that is not a UTF-8 continuation byte), so a multibyte character before a
secret moves it by one column. endColumn is the column of the secret's last character.
The span is the secret itself (the value, not the `password =` around it).
"""

import bisect
import hmac
import os
from collections import Counter

from scanner.secrets.skip import is_binary
from scanner.walker import Visitor

#: Bytes kept before the undecided part of the next buffer, for lookbehinds and pairing
#: (rules.PAIRING_DISTANCE).
KEEP_BEFORE = 4096

_NOT_CONTINUATION = bytes(b for b in range(256) if not 0x80 <= b < 0xC0)


def characters(data):
    """UTF-8 code points in `data`: its bytes minus its continuation bytes."""
    return len(data) - len(data.translate(None, _NOT_CONTINUATION))


class SecretsVisitor(Visitor):
    name = "secrets"

    def __init__(self, engine, path_filter, fingerprint_key, max_file_size, max_per_file, max_total):
        self.engine = engine
        self.path_filter = path_filter
        self.fingerprint_key = fingerprint_key
        self.max_file_size = max_file_size
        self.max_per_file = max_per_file
        self.max_total = max_total
        self.findings = []
        self.skipped = Counter()  # reason -> files
        self.truncated = []  # display paths of files with more findings than max_per_file
        self.bytes_scanned = 0
        self._file = None
        self._rules = engine.all  # the rule set for the file wants() accepted last

    def wants(self, entry):
        if entry.size == 0:
            reason, third_party = "empty", False
        else:
            reason, third_party = self.path_filter.classify(entry.path)
        if reason is None and entry.size > self.max_file_size:
            reason = "too-large"
        if reason:
            self.skipped[reason] += 1
            return False
        self._rules = self.engine.anywhere if third_party else self.engine.all
        return True

    def feed(self, entry, chunk):
        if self._file is None or self._file.entry is not entry:
            self._file = None
            if is_binary(chunk):
                self.skipped["binary"] += 1
                return False  # stop reading it for us
            self._file = FileScan(entry, self._rules, self.engine.reach, self.fingerprint_key, self.max_per_file)
        self.bytes_scanned += len(chunk)
        self._file.add(chunk)
        return None

    def end(self, entry, complete):
        scan, self._file = self._file, None
        if scan is None or scan.entry is not entry:
            return
        # Scan what was read even when the read stopped early: those bytes are real.
        found = scan.close()
        if scan.truncated:
            self.truncated.append(entry.display_path)
        room = self.max_total - len(self.findings)
        self.findings.extend(found[:max(0, room)])


class FileScan:
    """One file's scan: buffering, positions and fingerprints."""

    def __init__(self, entry, rules, reach, fingerprint_key, max_findings):
        self.entry = entry
        self.rules = rules     # engine.RuleSet
        self.reach = reach
        self.fingerprint_key = fingerprint_key
        self.max_findings = max_findings
        self.path_bytes = os.fsencode(entry.path)
        self.pending = []      # chunks not scanned yet
        self.pending_size = 0
        self.buf = b""         # the previous buffer's undecided tail (and some context before it)
        self.base = 0          # offset of buf[0] in the file
        self.lo = 0            # buf[:lo] was decided by the previous buffer
        self.lines = 0         # newlines before buf[0]
        self.column = 0        # characters between the last newline before buf[0] and buf[0]
        self.spans = []        # file offsets (start, end) of the secrets found: sorted, disjoint
        self.findings = []
        self.truncated = False

    def add(self, chunk):
        self.pending.append(chunk)
        self.pending_size += len(chunk)
        if len(self.buf) + self.pending_size >= 2 * self.reach:
            self._scan(final=False)

    def close(self):
        self._scan(final=True)
        return self.findings

    def _scan(self, final):
        buf = b"".join([self.buf, *self.pending])
        self.pending, self.pending_size = [], 0
        hi = len(buf) if final else len(buf) - self.reach
        accepted = [found for rule, match in self.rules.matches(buf, self.lo, hi)
                    if (found := self._consider(buf, rule, match))]
        self._report(buf, sorted(accepted))
        if not final:
            cut = hi - KEEP_BEFORE
            self._advance(buf, cut)
            self.buf, self.base, self.lo = buf[cut:], self.base + cut, KEEP_BEFORE

    def _advance(self, buf, cut):
        """Move the line and column counters from buf[0] to buf[cut]."""
        newline = buf.rfind(b"\n", 0, cut)
        self.lines += buf.count(b"\n", 0, cut)
        if newline >= 0:
            self.column = characters(buf[newline + 1:cut])
        else:
            self.column += characters(buf[:cut])

    def _consider(self, buf, rule, match):
        """(start, end, rule) of the match's secret in `buf` if it is a new finding, else None."""
        start, end = rule.secret_span(match)
        if end <= start:
            return None
        try:
            if rule.validate is not None and not rule.validate(buf[start:end], match):
                return None
        except (ValueError, IndexError, RecursionError):  # hostile bytes fail the check, not the scan
            return None
        first, last = self.base + start, self.base + end
        if self._overlaps(first, last):
            return None  # the same secret, already found by a more specific rule (or an earlier buffer)
        if len(self.spans) >= self.max_findings:
            self.truncated = True
            return None
        bisect.insort(self.spans, (first, last))
        return start, end, rule

    def _overlaps(self, first, last):
        """Whether [first, last) overlaps a secret found before (its neighbours in the sorted spans)."""
        i = bisect.bisect_left(self.spans, (first, last))
        return any(first < self.spans[j][1] and self.spans[j][0] < last
                   for j in (i - 1, i) if 0 <= j < len(self.spans))

    def _report(self, buf, accepted):
        """Findings for the accepted (start, end, rule) of `buf`, in order: lines are counted once, forwards."""
        line, counted = self.lines, 0  # `line` newlines lie before buf[counted]
        for start, end, rule in accepted:
            last = end - 1
            while last > start and 0x80 <= buf[last] < 0xC0:  # the last character's first byte
                last -= 1
            where = []
            for offset in (start, last):
                line += buf.count(b"\n", counted, offset)
                counted = offset
                where.append((line + 1, self._column(buf, offset)))
            (start_line, start_column), (end_line, end_column) = where
            self.findings.append({
                "description": f"{rule.description} ({rule.id})",
                "filePath": self.entry.display_path,
                "startLine": start_line,
                "endLine": end_line,
                "startColumn": start_column,
                "endColumn": end_column,
                "fingerprint": self._fingerprint(rule, buf[start:end]),
            })

    def _column(self, buf, offset):
        """The 1-based column of buf[offset]."""
        newline = buf.rfind(b"\n", 0, offset)
        if newline >= 0:
            return characters(buf[newline + 1:offset]) + 1
        return self.column + characters(buf[:offset]) + 1

    def _fingerprint(self, rule, secret):
        """A keyed hash of rule, path and secret: stable across scans, and no use for reading the secret back."""
        message = b"\0".join([rule.id.encode(), self.path_bytes, secret])
        return hmac.new(self.fingerprint_key, message, "sha256").hexdigest()[:32]
