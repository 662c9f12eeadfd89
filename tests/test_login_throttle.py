"""Password guessing at the login form: a username is locked after five failures, known or not."""

import datetime
import logging

import pytest

from app import login_throttle, users
from app.models import LoginFailure
from conftest import UI_PASSWORD, race, sign_in

WRONG = "not the password"
LOCKED = "too many failed sign-ins for this user: try again in"


class Clock:
    def __init__(self):
        self.time = datetime.datetime(2030, 1, 1, 12, 0, 0)

    def advance(self, **delta):
        self.time += datetime.timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(login_throttle, "now", lambda: clock.time)
    return clock


@pytest.fixture
def person(db):
    return users.create_user("alice", UI_PASSWORD, "operator")


@pytest.fixture
def hash_checks(monkeypatch):
    """The password hash checks made, as (hash, password) pairs."""
    checked = []
    real = users.check_password_hash
    monkeypatch.setattr(users, "check_password_hash", lambda *args: checked.append(args) or real(*args))
    return checked


def fail(client, username, times):
    return [sign_in(client, username, WRONG).status_code for _ in range(times)]


def test_five_failures_lock_the_username(client, person, clock):
    assert fail(client, "alice", 5) == [401] * 5
    response = sign_in(client, "alice", WRONG)
    assert response.status_code == 429
    assert f"{LOCKED} 30 s" in response.text
    assert response.headers["Retry-After"] == "30"
    clock.advance(seconds=10.5)
    assert f"{LOCKED} 20 s" in sign_in(client, "alice", WRONG).text
    assert sign_in(client, "bob", WRONG).status_code == 401  # other names are not locked


def test_the_right_password_is_refused_unchecked_while_locked(client, person, clock, hash_checks):
    fail(client, "alice", 5)
    hash_checks.clear()
    response = sign_in(client, "alice")
    assert response.status_code == 429 and LOCKED in response.text
    assert hash_checks == []
    assert client.get("/").status_code == 302


def test_once_the_lock_ends_the_right_password_works_and_resets_the_count(client, person, clock):
    fail(client, "alice", 5)
    clock.advance(seconds=30)
    assert sign_in(client, "alice").status_code == 302
    assert client.get("/").status_code == 200
    assert not LoginFailure.select().exists()
    assert fail(client, "alice", 5) == [401] * 5  # a fresh allowance of five


def test_each_further_failure_doubles_the_lock_up_to_fifteen_minutes(client, person, clock):
    fail(client, "alice", 5)
    for lock, next_lock in [(30, 60), (60, 120), (120, 240), (240, 480), (480, 900), (900, 900)]:
        clock.advance(seconds=lock)
        assert sign_in(client, "alice", WRONG).status_code == 401  # one more guess once the lock ends
        assert f"{LOCKED} {next_lock} s" in sign_in(client, "alice", WRONG).text


def test_the_right_password_on_the_fifth_try_gets_in(client, person, clock):
    fail(client, "alice", 4)
    assert sign_in(client, "alice").status_code == 302
    assert not LoginFailure.select().exists()


def test_unknown_usernames_are_counted_and_locked_exactly_alike(client, person, clock, hash_checks):
    known = [sign_in(client, "alice", WRONG) for _ in range(6)]
    known_checks, hash_checks[:] = len(hash_checks), []
    unknown = [sign_in(client, "nobody", WRONG) for _ in range(6)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401] * 5 + [429]
    assert [r.text for r in known] == [r.text for r in unknown]
    assert known[-1].headers["Retry-After"] == unknown[-1].headers["Retry-After"]
    assert known_checks == len(hash_checks) == 5  # a hash check per attempt until the lock, none after


@pytest.mark.parametrize("username", ["x" * 10_000, "ali\x00ce"])
def test_odd_usernames_are_counted_without_error(client, person, clock, username):
    assert fail(client, username, 5) == [401] * 5  # PostgreSQL refuses NUL in text: never a 500
    assert sign_in(client, username, WRONG).status_code == 429


def test_a_streak_is_forgotten_after_a_day(db, person, clock):
    for _ in range(4):
        login_throttle.authenticate("alice", WRONG, "192.0.2.1")
        login_throttle.authenticate("sprayed", WRONG, "192.0.2.1")
    clock.advance(days=1, seconds=1)
    assert login_throttle.authenticate("alice", WRONG, "192.0.2.1") is None
    assert login_throttle.authenticate("alice", WRONG, "192.0.2.1") is None  # 2 of 5, not 6
    assert [(row.username, row.count) for row in LoginFailure.select()] == [("alice", 2)]  # "sprayed" pruned


def attempt(username, password):
    try:
        return login_throttle.authenticate(username, password, "192.0.2.1")
    except login_throttle.LockedOut:
        return "locked"


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_concurrent_failures_are_each_counted_and_none_slips_past_the_lock(person, clock, username):
    """Each attempt is counted before its slow hash check: eight at once get five checks, three locks."""
    results = race([lambda: attempt(username, WRONG) for _ in range(8)])
    assert sorted(results, key=str) == [None] * 5 + ["locked"] * 3
    row = LoginFailure.get(LoginFailure.username == username)
    assert row.count == 5 and row.locked_until == clock.time + datetime.timedelta(seconds=30)


def test_failures_are_logged_without_the_password(client, person, clock, caplog):
    caplog.set_level(logging.WARNING)
    fail(client, "alice", 5)
    sign_in(client, "alice", WRONG)
    sign_in(client, "alice\nforged line", WRONG)
    records = [record for record in caplog.records if record.name.startswith("app")]
    messages = [record.getMessage() for record in records]
    assert len(records) == 7 and all(record.levelno == logging.WARNING for record in records)
    assert messages[0] == "failed sign-in for 'alice' from 127.0.0.1"
    assert messages[5] == "sign-in refused for 'alice' from 127.0.0.1: locked for 30 s more"
    assert "\n" not in messages[6]  # the name is quoted: no forged log lines
    assert not any(WRONG in message for message in messages)
    sign_in(client, "nobody", UI_PASSWORD)
    assert UI_PASSWORD not in caplog.text and WRONG not in caplog.text
