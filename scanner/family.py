"""How a content family's scanner plugs into a scan of one filesystem input.

The runner builds each scanner with the input's root and its settings (the
family's `scanners_config.<name>` mapping), adds its `visitors()` to the ONE
shared walk of that root (principle 3: the disk is read once), runs its `run()`
in a thread beside the walk (for real tools that must read the tree themselves,
like clamd or chkrootkit), and then calls `finish()` for the results.

A scanner that could not scan its input at all (no signature database, no usable rules, a
tool that would not run, a run() that raised) says so with `scanned=False`, its errors
saying why: its family is then incomplete, never clean. Errors with `scanned` left True
are partial (one file, one rule file, one check): the family still scanned the input.
"""

from dataclasses import dataclass, field


@dataclass
class ScannerResult:
    results: list = field(default_factory=list)   # API dicts of the family's result type
    errors: list = field(default_factory=list)    # human-readable failures, shown in the family's message
    metadata: list = field(default_factory=list)  # API ScannerMetadata (malware)
    notes: list = field(default_factory=list)     # what a user should know (skipped files, ...)
    scanned: bool = True                          # False: it could not scan the input at all (errors say why)


class FamilyScanner:
    #: Scanner name as in `scanners_list`.
    name = ""

    def __init__(self, root, settings):
        self.root = root
        self.settings = settings or {}

    def visitors(self):
        """Walker visitors that see the shared walk of `root`."""
        return []

    def run(self):
        """Work done beside the walk, in its own thread; may raise."""

    def finish(self):
        """The results, after the walk and run() are both done."""
        return ScannerResult()
