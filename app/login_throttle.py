"""Signing in with a brake on password guessing.

After FREE_FAILURES consecutive failures for a username, that username is locked
for FIRST_LOCK, doubling with each further failure up to MAX_LOCK; while locked no
password is checked at all, so even the right one is refused. The count is kept per
username *as typed* (LoginFailure), whether or not such a user exists: an unknown
name is counted, locked and answered exactly like a real one, so neither the
message nor the timing tells which names exist. The counts live in the database,
shared by every web worker and kept across restarts.

Each attempt is counted before its password is checked, and when it is one too
many the lock is set right then, as if it failed: concurrent guesses cannot slip
past the limit while the first is still being hashed. A right password clears it.
"""

import datetime
import logging
import math

from app import users
from app.db import is_postgres, write_transaction
from app.models import LoginFailure

FREE_FAILURES = 5
FIRST_LOCK = datetime.timedelta(seconds=30)
MAX_LOCK = datetime.timedelta(minutes=15)
#: A streak of failures this old is forgotten (and its row removed), so rare typos never add up to a lock.
FORGET_AFTER = datetime.timedelta(days=1)
MAX_KEY_LENGTH = LoginFailure.username.max_length

# A child of Flask's app logger ("app"), so its records go wherever the app's go.
log = logging.getLogger(__name__)


class LockedOut(Exception):
    """Too many failed sign-ins for this username; `seconds` until the next may be tried."""

    def __init__(self, seconds):
        self.seconds = seconds
        super().__init__(f"too many failed sign-ins for this user: try again in {seconds} s")


def now():
    """The current time as naive UTC, like the stored times; tests replace it."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def authenticate(username, password, client_address):
    """Return the user when `password` is right, None when wrong; raise LockedOut while locked.

    Every refusal is logged at WARNING with the username and the client address, never the password.
    """
    # PostgreSQL text cannot hold NUL, so no user's name has one: replaced, it matches none there either.
    username = username.replace("\x00", "\N{REPLACEMENT CHARACTER}")
    key = username[:MAX_KEY_LENGTH]  # longer names match no user (their limit): any prefix will do
    try:
        _count_attempt(key, now())
    except LockedOut as locked:
        log.warning("sign-in refused for %r from %s: locked for %d s more", key, client_address, locked.seconds)
        raise
    user = users.check_password(username, password)
    if user is None:
        log.warning("failed sign-in for %r from %s", key, client_address)
    else:
        LoginFailure.delete().where(LoginFailure.username == key).execute()
    return user


def lock_duration(count):
    """How long `count` consecutive failures lock a username (none below FREE_FAILURES)."""
    if count < FREE_FAILURES:
        return datetime.timedelta(0)
    return min(FIRST_LOCK * 2 ** min(count - FREE_FAILURES, 32), MAX_LOCK)


def _count_attempt(key, moment):
    """Count one more attempt for `key`, locking it when that makes too many; raise LockedOut if locked."""
    with write_transaction():
        row = _locked_row(key, moment)
        if row.locked_until is not None and row.locked_until > moment:
            raise LockedOut(math.ceil((row.locked_until - moment).total_seconds()))
        if row.last_attempt < moment - FORGET_AFTER:
            row.count = 0
        row.count += 1
        row.last_attempt = moment
        duration = lock_duration(row.count)
        row.locked_until = moment + duration if duration else None
        row.save()
        _forget_old_streaks(moment)


def _locked_row(key, moment):
    """The row for `key`, made when missing, locked until the transaction ends."""
    LoginFailure.insert(username=key, count=0, last_attempt=moment).on_conflict_ignore().execute()
    query = LoginFailure.select().where(LoginFailure.username == key)
    # SQLite: write_transaction already holds the database's write lock.
    return (query.for_update() if is_postgres() else query).get()


def _forget_old_streaks(moment):
    """Delete stale rows, so names sprayed by a guesser do not pile up (their locks ended long ago)."""
    stale = LoginFailure.select(LoginFailure.username).where(LoginFailure.last_attempt < moment - FORGET_AFTER)
    if is_postgres():
        # Rows another sign-in holds are left for next time: taking them in turn could deadlock.
        stale = stale.for_update(skip_locked=True)
    LoginFailure.delete().where(LoginFailure.username.in_(stale)).execute()
