"""Server mode: drive one asset scan through the API while the families run.

Waits for ReadyToScan, marks InProgress, PATCHes each family's status and results
as it finishes, then Done or Failed. Every PATCH is written to a spool directory
first and removed once the API took it, so results outlive an API outage or a
scanner restart: pending ones are resent, in order, before anything new. A
watcher thread notices an abort within `abort_poll` seconds and interrupts the
scan (a KeyboardInterrupt in the main thread, told apart by `aborted`).

A family whose results the API still refuses for good never ends as if it
succeeded: its block becomes Failed with the API's reason (sent at once, and again
in the final PATCH), and the asset scan ends Failed naming it.
"""

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

from scanner.api_client import ApiError
from scanner.results import asset_scan_document
from scanner.run import Cancelled, Events
from scanner.vocabulary import FAMILIES_BY_API_KEY, FAMILIES_BY_CONFIG_KEY, now, scanner_status

log = logging.getLogger(__name__)

FINISHED_STATES = ("Done", "Failed", "Aborted")


class Aborted(Exception):
    """The asset scan was aborted or ended elsewhere; the scanner must stop."""


class Reporter(Events):
    def __init__(self, client, asset_scan_id, spool_dir, *, poll=2.0, abort_poll=2.0):
        self.client = client
        self.path = f"/assetScans/{asset_scan_id}"
        self.spool = Path(spool_dir) / asset_scan_id
        self.poll = poll
        self.abort_poll = abort_poll
        self.aborted = threading.Event()
        self._stop = threading.Event()
        self._watcher = None
        self._sequence = 0
        self.rejected = 0
        self.refused = {}  # API key of a family whose results the API refused -> the API's reason

    # Lifecycle

    def start(self, ready_timeout=3600):
        """Resend leftovers, wait until the asset scan is ready, mark it InProgress, watch for aborts."""
        self.spool.mkdir(parents=True, exist_ok=True)
        self.flush()
        state = self._wait_ready(ready_timeout)
        if state == "ReadyToScan":
            self._send({"status": _status("InProgress", "ScannerIsRunning")})
        self._watcher = threading.Thread(target=self._watch, name="abort-watcher", daemon=True)
        self._watcher.start()

    def finish(self, outcome):
        """Report the final results and Done, or Failed naming the failed, incomplete or refused families."""
        refused = self._refused_blocks()
        outcome.blocks.update(refused)  # so the summary and the status say so too
        document = asset_scan_document(outcome)
        problems = outcome.problems
        status = _status("Failed", "Error", problems) if problems else _status("Done", "Success")
        delivered = self._send({**refused, "stats": document["stats"], "summary": document["summary"],
                                "status": status})
        self.close()
        if not delivered:
            raise ApiError(f"the API stayed unreachable; the results are kept in {self.spool} "
                           "and are resent when the scanner runs again for this asset scan")
        if self.rejected:
            raise ApiError(f"the API refused {self.rejected} update(s); see {self.spool / 'rejected'}")

    def stopped_after_abort(self):
        """Tell the API the scanner has stopped, so cleanup need not wait out the abort grace."""
        self.close()
        try:
            if self._state() == "Aborted":
                self._send({"status": _status("Failed", "Error", "aborted: the scanner stopped")})
        except ApiError as error:
            log.warning("could not report the stop after the abort: %s", error)

    def fail(self, message):
        """Report a scan that could not run at all."""
        self._send({"status": _status("Failed", "Error", message)})
        self.close()

    def close(self):
        self._stop.set()
        if self._watcher:
            self._watcher.join(timeout=self.abort_poll + 1)

    # Events from the run

    def family_started(self, name):
        self._check_abort()
        api_key = FAMILIES_BY_CONFIG_KEY[name].api_key
        self._send({api_key: {"status": scanner_status("InProgress")}})

    def family_finished(self, name, block, stats):
        api_key = FAMILIES_BY_CONFIG_KEY[name].api_key
        self.refused.pop(api_key, None)  # these results replace any refused in an earlier run
        self._send({api_key: block, "stats": {api_key: stats}})
        if api_key in self.refused:
            self._send(self._refused_blocks([api_key]))
        self._check_abort()

    def walking(self, input_, entry):
        self._check_abort()

    # Spool

    def flush(self):
        """Send the spooled PATCHes in order; return False when the API is unreachable.

        A PATCH the API refuses for good is moved to `rejected/` (and counted) so
        it cannot block the ones after it.
        """
        for path in sorted(self.spool.glob("*.json")):
            body = json.loads(path.read_text())
            try:
                self.client.patch(self.path, body)
            except ApiError as error:
                if error.status is None:
                    log.warning("the API is unreachable; %s kept for resending: %s", path.name, error)
                    return False
                self._reject(path, error)
                self.refused.update(dict.fromkeys(_finished_families(body), str(error)))
                continue
            path.unlink()
        return True

    def _reject(self, path, error):
        log.error("the API refused %s: %s", path.name, error)
        rejected = self.spool / "rejected"
        rejected.mkdir(exist_ok=True)
        os.replace(path, rejected / path.name)
        (rejected / f"{path.stem}.error").write_text(str(error))
        self.rejected += 1

    def _refused_blocks(self, api_keys=None):
        """A Failed block with the API's reason for each refused family (of `api_keys`)."""
        return {api_key: {"status": scanner_status("Failed", f"the API refused the results: {reason}"),
                          FAMILIES_BY_API_KEY[api_key].results_key: None}
                for api_key, reason in self.refused.items() if api_keys is None or api_key in api_keys}

    def _send(self, body):
        self.spool.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        spooled = self.spool / f"{time.time_ns():020d}-{self._sequence:04d}.json"
        temporary = spooled.with_suffix(".tmp")
        temporary.write_text(json.dumps(body))
        os.replace(temporary, spooled)
        return self.flush()

    # Watching

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            state = self._state()
            if state in ("ReadyToScan", "InProgress"):
                return state
            if state in FINISHED_STATES:
                raise Aborted(f"the asset scan is {state}; nothing to do")
            if time.monotonic() > deadline:
                raise Aborted(f"the asset scan stayed {state} for {timeout}s")
            time.sleep(self.poll)

    def _watch(self):
        while not self._stop.wait(self.abort_poll):
            try:
                if self._state() == "Aborted":
                    log.warning("the asset scan was aborted; stopping")
                    self.aborted.set()
                    # Stop the scan where it is, even inside a long family: a real SIGINT
                    # to the main thread also wakes it from a blocking wait.
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                    return
            except ApiError as error:
                log.warning("could not check for an abort: %s", error)

    def _state(self):
        return ((self.client.request("GET", f"{self.path}?$select=status", retry_for=60) or {})
                .get("status") or {}).get("state")

    def _check_abort(self):
        if self.aborted.is_set():
            raise Cancelled("the asset scan was aborted")


def _finished_families(body):
    """API keys of the families whose final block (Done or Failed) is in the PATCH `body`."""
    return [api_key for api_key in FAMILIES_BY_API_KEY if isinstance(body.get(api_key), dict)
            and (body[api_key].get("status") or {}).get("state") in ("Done", "Failed")]


def _status(state, reason, message=None):
    status = {"state": state, "reason": reason, "lastTransitionTime": now()}
    if message:
        status["message"] = message
    return status
