"""Run the enabled families over the inputs: one walk per filesystem, then the chain.

Every content family (the SBOM's native cataloguers, secrets, malware, rootkits,
misconfigurations, SSH topology) plugs its visitors into ONE shared walk of each
filesystem input; scanners that are real tools reading the tree themselves
(clamd, chkrootkit, lynis) run in threads beside that walk. Then vulnerabilities
match the SBOM's packages and exploits look up the vulnerabilities' CVE ids. A
family that fails is reported as Failed with its reason; the families after it
that need it fail too, the others carry on.

A scanner says whether it scanned its input (ScannerResult.scanned). It did not, at
all, only when it had nothing to scan with or could not run: ClamAV without a
signature database or with neither clamd nor clamscan running, or cancelled; yara
without a single usable rule; chkrootkit or lynis that would not run; any scanner
whose run() or finish() raised. Then the family is never reported clean:
- no scanner of the family scanned and none found anything: the family is Failed,
  with their errors;
- otherwise the family is Done with what was found (the control plane turns only
  Done blocks into findings, so yara's findings are kept when clam cannot run), its
  message starts with "<scanner> failed" (`Outcome.incomplete` reads it there), its
  reason is Error (so the control plane keeps the family's earlier findings valid),
  and the asset scan fails as a whole (Failed/Error, "families incomplete: malware
  (clam failed)") as does the CLI's exit code.
Errors of a scanner that did scan are partial (a file clamd could not reach, one
rule file that does not compile, one misconfiguration check that raised): the
family is Done/Success with the errors in its message, even on a clean host.
Scanners the original had but this scanner does not (config.UNAVAILABLE) are
named in their family's message; the family runs its other scanners.
Every block and its stats pass through results.storable() before anyone sees
them, so a NUL or lone surrogate from the target is escaped, never sent raw.
"""

import os
import threading
from dataclasses import dataclass, field

from scanner import cyclonedx
from scanner.config import FILESYSTEM_INPUTS, FamilyConfig, Input
from scanner.exploits import cve_ids_from_vulnerabilities, find_exploits, read_cve_csv
from scanner.family import ScannerResult
from scanner.infofinder import SshTopologyScanner
from scanner.malware import ClamScanner, YaraScanner
from scanner.misconfigurations import LynisScanner, NativeScanner
from scanner.results import storable
from scanner.rootkits import ChkrootkitScanner
from scanner.sbom import SbomResult, collect, merge, native_visitors, run_syft
from scanner.secrets import SecretsScanner
from scanner.vocabulary import FAMILIES_BY_CONFIG_KEY, INCOMPLETE_REASON, now, scanner_status
from scanner.vulnerabilities.osv import OsvDatabase, match_packages, needed_ecosystems
from scanner.walker import Visitor, walk

#: Content families: scanner name -> FamilyScanner class, per family.
CONTENT_SCANNERS = {
    "secrets": {"secrets": SecretsScanner},
    "malware": {"clam": ClamScanner, "yara": YaraScanner},
    "rootkits": {"chkrootkit": ChkrootkitScanner},
    "misconfiguration": {"native": NativeScanner, "lynis": LynisScanner},
    "infofinder": {"sshTopology": SshTopologyScanner},
}
CHAIN = ("sbom", "vulnerabilities", "exploits")
#: How vulnerabilities catalogue packages when no sbom family runs.
NATIVE_SBOM = FamilyConfig("sbom", ("native",))


class Cancelled(BaseException):
    """The asset scan was aborted; BaseException so that no visitor isolation swallows it."""


class Events:
    """What a run tells the outside world; the reporter and the terminal override these."""

    def family_started(self, name):
        pass

    def family_finished(self, name, block, stats):
        pass

    def walking(self, input_, entry):
        """Called for every file the walk sees; raise Cancelled to stop the scan."""


@dataclass
class Outcome:
    blocks: dict = field(default_factory=dict)     # API result block per family: {status, <results>}
    stats: dict = field(default_factory=dict)      # API AssetScanStats per family: [input stats]
    walks: list = field(default_factory=list)      # WalkStats of every filesystem walk
    sbom: SbomResult | None = None
    started: str = field(default_factory=now)
    ended: str | None = None

    @property
    def incomplete(self):
        """{API key: "<scanner> failed"} of the families Done but incomplete (see the module's docstring)."""
        return {name: block["status"]["message"].partition("; ")[0] for name, block in self.blocks.items()
                if block["status"]["state"] == "Done" and block["status"]["reason"] == INCOMPLETE_REASON}

    @property
    def families_failed(self):
        """API keys of the families that ended Failed."""
        return [name for name, block in self.blocks.items() if block["status"]["state"] == "Failed"]

    @property
    def failed(self):
        """API keys of the families that fail the asset scan: the Failed ones and the incomplete ones."""
        return self.families_failed + list(self.incomplete)

    @property
    def problems(self):
        """Why the asset scan did not succeed as a whole ("families failed: ...", "families incomplete: ..."),
        or "" when it did."""
        parts, failed, incomplete = [], self.families_failed, self.incomplete
        if failed:
            parts.append("families failed: " + ", ".join(failed))
        if incomplete:
            parts.append("families incomplete: " + ", ".join(f"{name} ({why})" for name, why in incomplete.items()))
        return "; ".join(parts)


def run_scan(families, cli_inputs, events=None, cache_dir=None):
    """Run every enabled family (a {name: FamilyConfig} from scanner.config) and return the Outcome."""
    events = events or Events()
    outcome = Outcome()
    context = _Context(families, list(cli_inputs), events, outcome, cache_dir)
    context.run_content_families()
    for name in CHAIN:
        if name in families:
            context.run_family(name)
    outcome.ended = now()
    return outcome


class _Context:
    def __init__(self, families, cli_inputs, events, outcome, cache_dir):
        self.families = families
        self.cli_inputs = cli_inputs
        self.events = events
        self.outcome = outcome
        self.cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "vmclarity-scanner")
        self.vulnerabilities = None
        self.input_bytes = {}    # filesystem input path -> bytes of regular files seen by its walk
        self.catalogued = {}     # filesystem input path -> SbomResult of the native cataloguers
        self.run_errors = {}     # content scanner -> what its run() raised in the latest walk

    def inputs(self, name):
        """A family's own inputs, else the command line's."""
        return self.families[name].inputs or self.cli_inputs

    # The shared walk

    def run_content_families(self):
        """Walk each filesystem input once for every content family (and the SBOM's cataloguers)."""
        content = [name for name in CONTENT_SCANNERS if name in self.families]
        for name in content:
            self.events.family_started(name)
        found = {name: [] for name in content}
        stats = {name: [] for name in content}
        for input_ in self._filesystem_inputs():
            started = now()
            scanners = {name: self._scanners(name, input_) for name in content if input_ in self.inputs(name)}
            self._walk(input_, scanners)
            for name, built in scanners.items():
                found[name].append(_finish_all(built, self.run_errors))
                stats[name].append(self._input_stats(input_, started))
        for name in content:
            self._report(name, lambda name=name: _content_block(name, found[name]), stats[name])

    def _filesystem_inputs(self):
        wanted = []
        for name in list(CONTENT_SCANNERS) + ["sbom"]:
            if name in self.families:
                wanted += [i for i in self.inputs(name) if i.type in FILESYSTEM_INPUTS and i not in wanted]
        return wanted

    def _scanners(self, name, input_):
        config = self.families[name]
        classes = CONTENT_SCANNERS[name]
        return [classes[scanner](input_.path, config.scanner_config(scanner)) for scanner in config.scanners]

    def _walk(self, input_, scanners):
        """One walk of the input: cataloguers and content scanners, tools running beside it."""
        watcher = _Watcher(self.events, input_)
        cataloguers = []
        if "sbom" in self.families and "native" in self.families["sbom"].scanners \
                and input_ in self.inputs("sbom"):
            cataloguers = native_visitors(input_.path)
        all_scanners = [scanner for built in scanners.values() for scanner in built]
        stats, self.run_errors = walk_with_scanners(input_.path, all_scanners, [watcher] + cataloguers)
        self.outcome.walks.append(stats)
        self.input_bytes[input_.path] = watcher.bytes
        if cataloguers:
            self.catalogued[input_.path] = collect(cataloguers)

    # The chain

    def run_family(self, name):
        self.events.family_started(name)
        stats = []
        self._report(name, lambda: getattr(self, f"_{name}")(self.families[name], stats), stats)

    def _report(self, name, produce, stats):
        family = FAMILIES_BY_CONFIG_KEY[name]
        try:
            block = produce()
        except Cancelled:
            raise
        except Exception as error:  # noqa: BLE001 - one family's failure is reported, not fatal
            block = {"status": scanner_status("Failed", f"{type(error).__name__}: {error}"),
                     family.results_key: None}
        notes = self.families[name].notes
        if notes:
            block["status"]["message"] = "; ".join(filter(None, [block["status"].get("message"), *notes]))
        block, stats = storable(block), storable(stats)
        self.outcome.blocks[family.api_key] = block
        self.outcome.stats[family.api_key] = stats
        self.events.family_finished(name, block, stats)

    def _sbom(self, config, stats):
        results = []
        for input_ in self.inputs("sbom"):
            started = now()
            results.extend(self._catalogue(config, input_))
            stats.append(self._input_stats(input_, started))
        if not results:
            raise ValueError("no input to catalogue: give --input or sbom.inputs")
        merged = merge(results)
        errors = [error for result in results for error in result.errors]
        if errors and len(errors) == len(results):
            raise RuntimeError("; ".join(errors))
        self.outcome.sbom = merged
        message = _message(len(merged.packages), "packages", errors, self.outcome.walks)
        return {"status": scanner_status("Done", message), "packages": merged.packages}

    def _catalogue(self, config, input_):
        if input_.type == "sbom":
            return [cyclonedx.sbom_from_cyclonedx(input_.path)]
        if input_.type not in FILESYSTEM_INPUTS:
            raise ValueError(f"sbom cannot read a {input_.type} input ({input_.path})")
        found = []
        if "native" in config.scanners:
            if input_.path not in self.catalogued:  # not walked yet (vulnerabilities without sbom)
                self._walk(input_, {})
            found.append(self.catalogued[input_.path])
        if "syft" in config.scanners:
            options = config.scanner_config("syft")
            found.append(run_syft(input_.path, timeout=int(options.get("timeout", 1800))))
        return found

    def _vulnerabilities(self, config, stats):
        packages, distro = self._packages_for(config, stats)
        options = config.scanner_config("osv")
        if options.get("server_url"):
            database = OsvDatabase.from_server(options["server_url"], os.path.join(self.cache_dir, "osv"),
                                               needed_ecosystems(packages, distro))
        elif options.get("db_path"):
            database = OsvDatabase.from_path(options["db_path"])
        else:
            raise ValueError("vulnerabilities: set scanners_config.osv.db_path or .server_url")
        self.vulnerabilities = match_packages(database, packages, distro=distro)
        message = f"{len(self.vulnerabilities)} vulnerabilities in {len(packages)} packages"
        return {"status": scanner_status("Done", message), "vulnerabilities": self.vulnerabilities}

    def _packages_for(self, config, stats):
        if config.options.get("input_from_sbom", True) and "sbom" in self.families:
            if self.outcome.sbom is None:
                raise RuntimeError("the sbom family failed, so there are no packages to match")
            return self.outcome.sbom.packages, self.outcome.sbom.distro
        results = []
        for input_ in self.inputs("vulnerabilities"):
            started = now()
            results.extend(self._catalogue(NATIVE_SBOM, input_))
            stats.append(self._input_stats(input_, started))
        merged = merge(results)
        return merged.packages, merged.distro

    def _exploits(self, config, stats):
        started = now()
        if config.options.get("input_from_vuln", True) and "vulnerabilities" in self.families:
            if self.vulnerabilities is None:
                raise RuntimeError("the vulnerabilities family failed, so there are no CVEs to look up")
            cve_ids = cve_ids_from_vulnerabilities(self.vulnerabilities)
            stats.append({"type": "csv", "path": "vulnerabilities", "scanTime": {"startTime": started}})
        else:
            cve_ids = []
            for input_ in self.inputs("exploits"):
                if input_.type != "csv":
                    raise ValueError(f"exploits reads csv inputs of CVE ids, not {input_.type}")
                cve_ids.extend(read_cve_csv(input_.path))
                stats.append({"type": "csv", "path": input_.path, "scanTime": {"startTime": started}})
        options = config.scanner_config("exploit_db")
        if not (options.get("base_url") or options.get("csv_path")):
            raise ValueError("exploits: set scanners_config.exploit_db.base_url or .csv_path")
        found = find_exploits(cve_ids, base_url=options.get("base_url"), csv_path=options.get("csv_path"))
        for item in stats:
            item["scanTime"]["endTime"] = now()
        if found.errors and not found.exploits:
            raise RuntimeError("; ".join(found.errors[:5]))
        message = _message(len(found.exploits), f"exploits for {len(cve_ids)} CVEs", found.errors, [])
        return {"status": scanner_status("Done", message), "exploits": found.exploits}

    def _input_stats(self, input_, started):
        stats = {"type": input_.type.upper(), "path": input_.path,
                 "scanTime": {"startTime": started, "endTime": now()}}
        if input_.path in self.input_bytes:
            stats["size"] = self.input_bytes[input_.path] // (1024 * 1024)
        return stats


def walk_with_scanners(root, scanners, visitors=()):
    """Walk `root` once for the scanners' visitors and `visitors`, each scanner's run() in a thread beside it.

    Returns (WalkStats, {scanner: the exception its run() raised, or None}). An
    interrupted walk (an abort) cancels the tools at once instead of waiting for them.
    """
    errors = dict.fromkeys(scanners)

    def run(scanner):
        try:
            scanner.run()
        except Exception as error:  # noqa: BLE001 - reported as this scanner's error
            errors[scanner] = error

    threads = [threading.Thread(target=run, args=(scanner,), name=f"scanner-{scanner.name}", daemon=True)
               for scanner in scanners]
    for thread in threads:
        thread.start()
    try:
        stats = walk(root, [visitor for scanner in scanners for visitor in scanner.visitors()] + list(visitors))
    except BaseException:
        for scanner in scanners:
            getattr(scanner, "cancel", lambda: None)()
        raise
    finally:
        for thread in threads:
            thread.join()
    return stats, errors


def _finish_all(scanners, run_errors):
    """[(scanner name, ScannerResult)] of the scanners of one family on one input.

    A scanner whose run() or finish() raised did not scan the input.
    """
    finished = []
    for scanner in scanners:
        try:
            result = scanner.finish()
        except Exception as error:  # noqa: BLE001 - reported as this scanner's error
            result = ScannerResult(errors=[f"{scanner.name}: {type(error).__name__}: {error}"], scanned=False)
        error = run_errors.get(scanner)
        if error is not None:
            result.errors.append(f"{scanner.name}: {type(error).__name__}: {error}")
            result.scanned = False
        finished.append((scanner.name, result))
    return finished


def _content_block(name, per_input):
    """The API result block of a content family from its scanners' results on every input.

    A scanner that did not scan an input makes the family incomplete; none scanned and nothing found: it fails.
    """
    family = FAMILIES_BY_CONFIG_KEY[name]
    pairs = [pair for finished in per_input for pair in finished]
    results = [item for _, result in pairs for item in result.results]
    errors = [error for _, result in pairs for error in result.errors]
    failed = [scanner for scanner, result in pairs if not result.scanned]
    if pairs and len(failed) == len(pairs) and not results:
        raise RuntimeError("; ".join(errors[:5]))
    notes = [note for _, result in pairs for note in result.notes]
    failures = [f"{', '.join(dict.fromkeys(failed))} failed"] if failed else []
    message = "; ".join(failures + [f"{len(results)} found"] + errors[:5] + notes[:5])
    reason = INCOMPLETE_REASON if failed else None
    block = {"status": scanner_status("Done", message, reason), family.results_key: results}
    if name == "malware":
        block["metadata"] = [item for _, result in pairs for item in result.metadata]
    if name in ("misconfiguration", "infofinder"):
        block["scanners"] = sorted({scanner for scanner, _ in pairs})
    return block


class _Watcher(Visitor):
    """Sees every file of a walk (wanting none) so progress shows and an abort stops the walk."""

    name = "progress"

    def __init__(self, events, input_):
        self.events = events
        self.input = input_
        self.bytes = 0

    def wants(self, entry):
        self.bytes += entry.size
        self.events.walking(self.input, entry)
        return False


def _message(count, what, errors, walks):
    parts = [f"{count} {what}"]
    skipped = {}
    for stats in walks:
        for reason, number in stats.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + number
    if skipped:
        parts.append("skipped " + ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items())))
    if errors:
        parts.append("errors: " + "; ".join(errors[:5]))
    return "; ".join(parts)


__all__ = ["Cancelled", "Events", "Input", "Outcome", "run_scan", "walk_with_scanners"]
