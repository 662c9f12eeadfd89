"""Rule matches in a buffer of bytes: hyperscan finds where to look, Python's `re` decides.

Hyperscan scans the whole buffer for every rule at once (about 1 GB/s) and reports
where matches of a superset of each rule end; only a window around each hit reaches a
Python regex, so most bytes never meet one. Without the hyperscan wheel (there is none for
ARM) the engine falls back to the rules' keywords: a rule's regex runs around each of its
keywords that bytes.find meets in the lowered buffer (same results, many times slower).
"""

import threading

from scanner.secrets.rules import RULES, TRIGGER_REACH

try:
    import hyperscan
except ImportError:  # the wheel is missing on this platform: keyword fallback
    hyperscan = None

#: Bytes past a window that a rule's lookahead may need to see.
LOOKAHEAD = 64

_compiled = {}
_compile_lock = threading.Lock()


class Engine:
    """Every rule, and the rules that apply anywhere (inside third-party code too)."""

    def __init__(self, rules=RULES, use_hyperscan=True):
        use_hyperscan = use_hyperscan and hyperscan is not None
        self.all = RuleSet(rules, use_hyperscan)
        self.anywhere = RuleSet([rule for rule in rules if rule.anywhere], use_hyperscan)
        self.kind = "hyperscan" if use_hyperscan else "keywords"
        #: How far apart a hit and the bytes of its match can be: the overlap kept between chunks.
        self.reach = max(rule.max_len for rule in rules) + TRIGGER_REACH + LOOKAHEAD


class RuleSet:
    def __init__(self, rules, use_hyperscan):
        self.rules = tuple(rules)
        self.database = _database(self.rules) if use_hyperscan else None
        # A scratch per rule set and engine: hyperscan scratch space must not be shared between threads.
        self.scratch = hyperscan.Scratch(self.database) if self.database else None

    def matches(self, buf, lo, hi):
        """(rule, match) for every match of a rule that starts in buf[lo:hi], rule by rule."""
        for index, windows in self._windows(buf):
            rule = self.rules[index]
            for start, end in windows:
                for match in rule.regex.finditer(buf, start, end):
                    # A match ending near a cut window may only exist because its lookahead saw the cut.
                    if lo <= match.start() < hi and (match.end() + LOOKAHEAD <= end or end == len(buf)):
                        yield rule, match

    def _windows(self, buf):
        """[(rule index, [(start, end), ...])] of the parts of `buf` worth a regex, in rule order."""
        if self.database is None:
            return self._keyword_windows(buf)
        hits = {}
        self.database.scan(buf, match_event_handler=_collect, context=hits, scratch=self.scratch)
        windows = []
        for index, ends in sorted(hits.items()):
            rule = self.rules[index]
            if rule.trigger is None:  # a hit is the end of a (superset) match
                before, after = rule.max_len, LOOKAHEAD
            else:  # a hit is the end of a match's first TRIGGER_REACH bytes
                before, after = TRIGGER_REACH, rule.max_len + LOOKAHEAD
            windows.append((index, _merge(ends, before, after, len(buf))))
        return windows

    def _keyword_windows(self, buf):
        """Without hyperscan: windows around every keyword (a match holds one, anywhere in it)."""
        lower = buf.lower()
        windows = []
        for index, rule in enumerate(self.rules):
            ends = [at + len(keyword) for keyword in rule.keywords for at in _find_all(lower, keyword)]
            if ends:
                windows.append((index, _merge(ends, rule.max_len, rule.max_len + LOOKAHEAD, len(buf))))
        return windows


def _merge(ends, before, after, size):
    """The windows [end - before, end + after) around hits, merged where they touch."""
    windows = []
    for end in sorted(ends):
        start, stop = max(0, end - before), min(size, end + after)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], stop)
        else:
            windows.append((start, stop))
    return windows


def _find_all(data, needle):
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


def _collect(index, start, end, flags, hits):
    hits.setdefault(index, []).append(end)


def _database(rules):
    """The rules compiled once per process (about 0.5 s), in prefilter mode: a superset of each regex."""
    key = tuple(rule.trigger or rule.pattern for rule in rules)
    with _compile_lock:
        if key not in _compiled:
            database = hyperscan.Database()
            database.compile(expressions=list(key), ids=list(range(len(key))),
                             flags=[hyperscan.HS_FLAG_PREFILTER] * len(key))
            _compiled[key] = database
        return _compiled[key]
