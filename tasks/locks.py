"""Per-object locks in Redis, and the one way actors run a step under them.

A lock lives LOCK_TTL seconds unless its holder keeps renewing it, so a killed
worker stalls its object only briefly. A step that finds its object changed
meanwhile is sent again shortly. A step that cannot get the lock is not: it
leaves a request (`again`) that the holder honours by sending the step once
more when it is done, so a burst of messages for one object (every asset scan
of a scan finishing at once) costs one more run, not a message bouncing every
RETRY_SOON_MS per sender. If the holder dies, the scheduler's sweep re-drives
the object.
"""

import contextlib
import threading

import dramatiq
from redis.exceptions import LockError, RedisError

from tasks.objects import Stale
from tasks.providers import RetryableError

#: Seconds a lock outlives a holder that stopped renewing it (a killed worker).
LOCK_TTL = 10
#: Milliseconds before a step that met a changed object runs again.
RETRY_SOON_MS = 200
#: Seconds a request to run again outlives a holder that never honoured it (the sweep covers it).
AGAIN_TTL = 60


class Busy(Exception):
    """Another worker is running a step on this object right now."""


@contextlib.contextmanager
def object_lock(kind, object_id):
    # Not thread-local: the renewer thread must see the token this thread acquired.
    lock = dramatiq.get_broker().client.lock(f"vmclarity:lock:{kind}:{object_id}", timeout=LOCK_TTL,
                                             thread_local=False)
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
    client = dramatiq.get_broker().client
    again = f"vmclarity:again:{kind}:{object_id}"
    try:
        try:
            _run_locked(actor, kind, object_id, step, client, again)
        except Busy:
            # Ask the holder to run once more; then try again, in case it let go before it could see that.
            client.set(again, 1, ex=AGAIN_TTL)
            _run_locked(actor, kind, object_id, step, client, again)
    except Busy:
        return  # the holder runs the step again once it is done
    except Stale:
        actor.send_with_options(args=(object_id,), delay=RETRY_SOON_MS)
    except RetryableError as error:
        actor.logger.info("%s: %s; again in %.1fs", object_id, error, error.after)
        actor.send_with_options(args=(object_id,), delay=int(error.after * 1000))


def _run_locked(actor, kind, object_id, step, client, again):
    held = False
    try:
        with object_lock(kind, object_id):
            held = True
            client.delete(again)  # this run reads the object afresh: it covers every request so far
            step(object_id)
    finally:
        # Requests made while the lock was held: the lock is released first, so that a request is
        # either seen here or made when the lock is free again (and its sender then runs the step).
        if held and client.delete(again):
            actor.send(object_id)
