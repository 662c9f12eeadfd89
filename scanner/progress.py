"""What the scan shows a person: a live line on a terminal, plain log lines otherwise."""

import logging
import sys
import time

from scanner.run import Events

log = logging.getLogger("scanner")

REFRESH_SECONDS = 0.2


class Progress(Events):
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.files = 0
        self.bytes = 0
        self.shown_at = 0.0

    def family_started(self, name):
        self.files, self.bytes = 0, 0
        log.info("%s: started", name)

    def family_finished(self, name, block, stats):
        if self.live:
            self.stream.write("\r\x1b[K")
        status = block["status"]
        log.info("%s: %s%s", name, status["state"], f" ({status['message']})" if status.get("message") else "")

    def walking(self, input_, entry):
        self.files += 1
        self.bytes += entry.size
        if self.live and time.monotonic() - self.shown_at > REFRESH_SECONDS:
            self.shown_at = time.monotonic()
            line = f"walking {input_.path}: {self.files:,} files, {self.bytes / 1e9:.2f} GB"
            self.stream.write("\r\x1b[K" + line[:200])
            self.stream.flush()


class Fanout(Events):
    """Passes every event to several listeners, in order."""

    def __init__(self, *listeners):
        self.listeners = [listener for listener in listeners if listener is not None]

    def family_started(self, name):
        for listener in self.listeners:
            listener.family_started(name)

    def family_finished(self, name, block, stats):
        for listener in self.listeners:
            listener.family_finished(name, block, stats)

    def walking(self, input_, entry):
        for listener in self.listeners:
            listener.walking(input_, entry)
