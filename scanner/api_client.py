"""A small client of the VMClarity API for the scanner: bearer token, JSON, retries.

Network failures, 5xx and 429 are retried with exponential backoff until
`retry_for` seconds have passed; other 4xx answers are final.
"""

import json
import logging
import time
import urllib.error
import urllib.request

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class ApiError(Exception):
    """The API refused the request (a final 4xx), or stayed unreachable."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class ApiClient:
    def __init__(self, base_url, token, *, timeout=30, retry_for=600, first_delay=0.5, max_delay=30):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retry_for = retry_for
        self.first_delay = first_delay
        self.max_delay = max_delay

    def get(self, path):
        return self.request("GET", path)

    def patch(self, path, body):
        return self.request("PATCH", path, body)

    def request(self, method, path, body=None, retry_for=None):
        """Send one request, retrying while the API is unreachable; return the decoded JSON."""
        deadline = time.monotonic() + (self.retry_for if retry_for is None else retry_for)
        delay = self.first_delay
        while True:
            try:
                return self._send(method, path, body)
            except _Retryable as error:
                if time.monotonic() + delay > deadline:
                    raise ApiError(f"{method} {path}: gave up retrying: {error}") from None
                log.warning("%s %s failed (%s); retrying in %.1fs", method, path, error, delay)
                time.sleep(delay)
                delay = min(delay * 2, self.max_delay)

    def _send(self, method, path, body):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        })
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            message = _message(error)
            if error.code in RETRYABLE_STATUS:
                raise _Retryable(f"HTTP {error.code}: {message}") from None
            raise ApiError(f"{method} {path}: HTTP {error.code}: {message}", error.code) from None
        except (urllib.error.URLError, OSError, json.JSONDecodeError) as error:
            raise _Retryable(str(getattr(error, "reason", error))) from None


class _Retryable(Exception):
    pass


def _message(error):
    try:
        return json.loads(error.read()).get("message", "")
    except (ValueError, AttributeError, OSError):
        return error.reason
