"""Client for the vulnerability-DB helper server: GET <url>/<Ecosystem>/all.zip, cached.

Each archive is kept in <cache_dir>/<Ecosystem>/all.zip with its ETag beside it and
revalidated with If-None-Match, so an unchanged database costs one 304. Network errors,
HTTP 5xx and 429 are retried with exponential backoff; when retries run out a cached copy
is used if there is one (logged), else the download fails. Other 4xx are errors at once,
except 404: an ecosystem the server does not carry is recorded as missing and skipped,
unless every requested ecosystem is missing (then the URL is surely wrong: an error).
"""

import http.client
import logging
import re
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import quote

from scanner import downloads
from scanner.vulnerabilities.osv.database import OsvError
from scanner.vulnerabilities.osv.ecosystems import base_ecosystem

log = logging.getLogger(__name__)

ECOSYSTEM_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")
ETAG_PATTERN = re.compile(r'(W/)?"[\x21\x23-\x7e]{0,200}"')


class _Retryable(Exception):
    pass


def fetch_ecosystems(url, cache_dir, ecosystems, timeout=60, retries=4, backoff=1.0, max_bytes=4 << 30):
    """Return ([archive paths], [missing ecosystems]) for the base ecosystems asked for."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise OsvError(f"server URL must be http(s): {url!r}")
    wanted = sorted({base_ecosystem(e) for e in ecosystems})
    for name in wanted:
        if not ECOSYSTEM_PATTERN.fullmatch(name) or ".." in name:
            raise OsvError(f"invalid ecosystem name: {name!r}")
    files, missing = [], []
    for name in wanted:
        source = f"{url.rstrip('/')}/{quote(name)}/all.zip"
        target = Path(cache_dir) / quote(name, safe=" ") / "all.zip"
        got = _fetch(source, target, timeout, retries, backoff, max_bytes)
        (files if got else missing).append(target if got else name)
    if wanted and not files:
        raise OsvError(f"the server at {url} has none of the ecosystems {', '.join(wanted)}")
    for name in missing:
        log.warning("the OSV server has no data for %s; its packages are not matched", name)
    return files, missing


def _fetch(source, target, timeout, retries, backoff, max_bytes):
    """Bring `target` up to date from `source`; False if the server has no such file."""
    for attempt in range(retries + 1):
        try:
            return _download(source, target, timeout, max_bytes)
        except _Retryable as error:
            if attempt == retries:
                return _fall_back(source, target, error)
            delay = backoff * 2**attempt
            log.info("OSV download %s failed (%s); retrying in %.1fs", source, error, delay)
            time.sleep(delay)
    return False  # not reached


def _fall_back(source, target, error):
    if target.is_file():
        log.warning("OSV server unreachable (%s); using the cached %s", error, target)
        return True
    raise OsvError(f"cannot download {source}: {error}")


def _download(source, target, timeout, max_bytes):
    etag_file = target.with_name("etag")
    request = urllib.request.Request(source, headers={"User-Agent": "vmclarity-scanner"})
    if target.is_file() and etag_file.is_file():
        request.add_header("If-None-Match", etag_file.read_text(errors="replace").strip())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            downloads.save(response, target, max_bytes, _refuse_non_zip, too_large=OsvError)
            etag = response.headers.get("ETag", "")
    except urllib.error.HTTPError as error:
        return _http_error(error, source, target)
    except (urllib.error.URLError, http.client.HTTPException, OSError, EOFError) as error:
        # timeouts, refused or reset connections, truncated bodies
        raise _Retryable(str(error)) from None
    _store_etag(etag_file, etag)
    return True


def _http_error(error, source, target):
    error.close()
    if error.code == 304 and target.is_file():
        return True
    if error.code == 404:
        return False
    if error.code == 429 or error.code >= 500:
        raise _Retryable(f"HTTP {error.code}")
    raise OsvError(f"{source}: HTTP {error.code} {error.reason}")


def _refuse_non_zip(path):
    if not zipfile.is_zipfile(path):
        raise _Retryable("the server sent something that is not a zip archive")


def _store_etag(etag_file, etag):
    if ETAG_PATTERN.fullmatch(etag or ""):
        etag_file.write_text(etag)
    elif etag_file.exists():
        etag_file.unlink()
