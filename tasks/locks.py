"""Per-object locks in Redis, and the one way actors run a step under them.

A lock lives LOCK_TTL seconds unless its holder keeps renewing it, so a killed
worker stalls its object only briefly; a step that cannot get the lock, or that
finds its object changed meanwhile, is sent again shortly instead of waiting.
"""

import contextlib
import threading

import dramatiq
from redis.exceptions import LockError, RedisError

from tasks.objects import Stale
from tasks.providers import RetryableError

#: Seconds a lock outlives a holder that stopped renewing it (a killed worker).
LOCK_TTL = 10
#: Milliseconds before a step that met a busy or changed object runs again.
RETRY_SOON_MS = 200


class Busy(Exception):
    """Another worker is running a step on this object right now."""


@contextlib.contextmanager
def object_lock(kind, object_id):
    lock = dramatiq.get_broker().client.lock(f"vmclarity:lock:{kind}:{object_id}", timeout=LOCK_TTL)
    if not lock.acquire(blocking=False):
        raise Busy(f"{kind} {object_id} is being reconciled elsewhere")
    done = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lock, done), name=f"lock-{kind}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()
        with contextlib.suppress(LockError, RedisError):  # expired or Redis gone: nothing to release
            lock.release()


def _renew(lock, done):
    while not done.wait(LOCK_TTL / 3):
        with contextlib.suppress(LockError, RedisError):
            lock.reacquire()


def run_step(actor, kind, object_id, step):
    """Run `step(object_id)` under the object's lock; send `actor` again when it must run again."""
    try:
        with object_lock(kind, object_id):
            step(object_id)
    except (Busy, Stale):
        actor.send_with_options(args=(object_id,), delay=RETRY_SOON_MS)
    except RetryableError as error:
        actor.logger.info("%s: %s; again in %.1fs", object_id, error, error.after)
        actor.send_with_options(args=(object_id,), delay=int(error.after * 1000))
