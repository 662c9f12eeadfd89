"""Per-object locks in Redis: one reconcile of an object at a time, across all workers.

A lock expires on its own (a killed worker cannot hold it forever); a reconcile
that cannot get it re-enqueues itself shortly instead of waiting.
"""

import contextlib

import dramatiq

#: Seconds a lock lives without its holder renewing it (longer than any reconcile).
LOCK_TTL = 120


class Busy(Exception):
    """Another worker is reconciling this object right now."""


@contextlib.contextmanager
def object_lock(kind, object_id, wait=5.0):
    lock = dramatiq.get_broker().client.lock(f"vmclarity:lock:{kind}:{object_id}", timeout=LOCK_TTL,
                                             blocking_timeout=wait)
    if not lock.acquire():
        raise Busy(f"{kind} {object_id} is being reconciled elsewhere")
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # expired meanwhile: nothing to release
            lock.release()
