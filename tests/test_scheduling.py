"""Scan config scheduling (tasks.scan_configs) and the scheduler's sweep, with an injected clock.

`reconcile_scan_config.fn` runs directly in the test; the clock is a fixed moment
put in place of `tasks.scan_configs.now` and `tasks.objects.now` (which stamps
scan start times and the sweep's "now"). Messages go to the real Redis of the
suite, but through a broker of our own namespace, so that another test run on
the same Redis can neither take them nor flush them: the delayed queue is read
back to check when a not-yet-due config will be looked at again.
"""

import datetime
import uuid

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

import tasks
import tasks.objects
import tasks.scan_configs
import tasks.scheduler
from app.models import Scan, ScanConfig
from tasks.asset_scans import remove_leftover
from tasks.broker import redis_url
from tasks.objects import create, load, patch, status, timestamp
from tasks.scan_configs import MAX_DELAY_SECONDS, reconcile_scan_config
from tasks.settings import orchestrator_settings

UTC = datetime.timezone.utc
ACTORS = (tasks.discover_assets, tasks.process_findings, tasks.reconcile_asset_scan, tasks.reconcile_scan,
          reconcile_scan_config, remove_leftover)
EVERY_SIX_HOURS = "0 */6 * * *"


class Clock:
    """A settable stand-in for `now()`."""

    def __init__(self, moment):
        self.moment = moment

    def __call__(self):
        return self.moment

    def set(self, text):
        self.moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))

    def advance(self, **delta):
        self.moment += datetime.timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(datetime.datetime(2030, 5, 1, 6, 0, 30, tzinfo=UTC))
    monkeypatch.setattr(tasks.scan_configs, "now", clock)
    monkeypatch.setattr(tasks.objects, "now", clock)
    return clock


@pytest.fixture
def broker(db, monkeypatch):
    """Every actor sends through a Redis broker with a namespace of this test's own."""
    broker = RedisBroker(url=redis_url(), namespace=f"vmclarity-test-scheduling-{uuid.uuid4().hex}")
    broker.declare_queue("orchestrator")
    for actor in ACTORS:
        monkeypatch.setattr(actor, "broker", broker)
    yield broker
    broker.flush_all()
    broker.client.delete(f"{broker.namespace}:__heartbeats__")
    broker.close()


def messages(broker, queue="orchestrator", actor=None):
    """The messages waiting in `queue` (`orchestrator.DQ`: the delayed ones), oldest first."""
    raw = broker.client.hvals(f"{broker.namespace}:{queue}.msgs")
    found = sorted((dramatiq.Message.decode(item) for item in raw), key=lambda m: m.message_timestamp)
    return [m for m in found if actor is None or m.actor_name == actor]


def scan_config(*, operation_time=None, cron_line=None, disabled=None, name=None):
    scheduled = {}
    if operation_time:
        scheduled["operationTime"] = operation_time
    if cron_line:
        scheduled["cronLine"] = cron_line
    body = {"name": name or f"config-{uuid.uuid4().hex[:8]}", "scheduled": scheduled,
            "scanTemplate": {"scope": "assetInfo/objectType eq 'DirInfo'", "maxParallelScanners": 3,
                             "assetScanTemplate": {"scanFamiliesConfig": {"sbom": {"enabled": True}}}}}
    if disabled is not None:
        body["disabled"] = disabled
    return create(ScanConfig, body)


def scans_of(config):
    return [row.data for row in Scan.select().where(Scan.scan_config == config["id"]).order_by(Scan.pk)]


def reconcile(config):
    reconcile_scan_config.fn(config["id"])
    return load(ScanConfig, config["id"])


def finish(scan):
    """End a scan the way the orchestrator does (state and endTime), so it no longer runs."""
    return patch(Scan, scan, {"status": status("Done", "NothingToScan"), "endTime": timestamp()})


# ---- due ----------------------------------------------------------------------------


def test_a_due_cron_config_starts_one_scan_and_moves_to_the_next_tick(broker, clock):
    config = scan_config(operation_time="2030-05-01T06:00:00Z", cron_line=EVERY_SIX_HOURS)

    after = reconcile(config)

    [scan] = scans_of(config)
    assert scan["name"] == f"{config['name']}-2030-05-01T06:00:00Z"
    assert scan["status"]["state"] == "Pending"
    assert scan["startTime"] == "2030-05-01T06:00:30Z"  # the injected clock
    assert scan["scope"] == "assetInfo/objectType eq 'DirInfo'" and scan["maxParallelScanners"] == 3
    assert scan["assetScanTemplate"] == config["scanTemplate"]["assetScanTemplate"]
    assert after["scheduled"] == {"cronLine": EVERY_SIX_HOURS, "operationTime": "2030-05-01T12:00:00Z"}
    assert not after.get("disabled")


def test_a_due_cron_config_run_twice_still_starts_one_scan(broker, clock):
    """A duplicate message (the sweep and a trigger together) is harmless: the config is no longer due."""
    config = scan_config(operation_time="2030-05-01T06:00:00Z", cron_line=EVERY_SIX_HOURS)
    reconcile(config)
    after = reconcile(config)
    assert len(scans_of(config)) == 1
    assert after["scheduled"]["operationTime"] == "2030-05-01T12:00:00Z"


def test_each_cron_tick_starts_one_scan_as_the_clock_moves_on(broker, clock):
    config = scan_config(operation_time="2030-05-01T06:00:00Z", cron_line=EVERY_SIX_HOURS)
    for tick in ("2030-05-01T06:00:00Z", "2030-05-01T12:00:00Z", "2030-05-01T18:00:00Z"):
        clock.set(tick)
        clock.advance(seconds=1)
        reconcile(config)
        finish(scans_of(config)[-1])
        clock.advance(hours=1)  # between ticks: nothing
        reconcile(config)
    assert [scan["name"][len(config["name"]) + 1:] for scan in scans_of(config)] == [
        "2030-05-01T06:00:00Z", "2030-05-01T12:00:00Z", "2030-05-01T18:00:00Z"]
    assert load(ScanConfig, config["id"])["scheduled"]["operationTime"] == "2030-05-02T00:00:00Z"


def test_a_cron_config_missed_for_days_catches_up_once_then_moves_past_now(broker, clock):
    """The scheduler was down for days: one scan for the missed time, then the next tick after now."""
    config = scan_config(operation_time="2030-04-20T06:00:00Z", cron_line=EVERY_SIX_HOURS)
    after = reconcile(config)
    assert [scan["name"][len(config["name"]) + 1:] for scan in scans_of(config)] == ["2030-04-20T06:00:00Z"]
    assert after["scheduled"]["operationTime"] == "2030-05-01T12:00:00Z"


def test_a_due_one_off_config_starts_one_scan_and_is_disabled(broker, clock):
    config = scan_config(operation_time="2030-05-01T06:00:25Z")

    after = reconcile(config)

    [scan] = scans_of(config)
    assert scan["name"] == f"{config['name']}-2030-05-01T06:00:25Z"
    assert after["disabled"] is True
    assert after["scheduled"] == {"operationTime": "2030-05-01T06:00:25Z"}
    assert reconcile(config)["disabled"] is True
    assert len(scans_of(config)) == 1


def test_start_now_on_a_disabled_one_off_config_runs_it_again(broker, clock):
    """The UI's "start now": operationTime = now, disabled = false."""
    config = scan_config(operation_time="2030-05-01T06:00:00Z")
    reconcile(config)
    finish(scans_of(config)[0])
    clock.advance(minutes=10)
    config = patch(ScanConfig, load(ScanConfig, config["id"]),
                   {"disabled": False, "scheduled": {"operationTime": timestamp()}})
    after = reconcile(config)
    assert len(scans_of(config)) == 2
    assert after["disabled"] is True


# ---- not due, or not to run ---------------------------------------------------------


def test_a_config_not_yet_due_starts_nothing_and_is_looked_at_again_when_due(broker, clock):
    config = scan_config(operation_time="2030-05-01T06:02:00Z")  # in 90 s
    broker.flush_all()  # what creating it sent
    sent_at = _millis_now()

    after = reconcile(config)

    assert scans_of(config) == []
    assert after == config
    assert messages(broker, "orchestrator") == []
    [message] = messages(broker, "orchestrator.DQ")
    assert (message.actor_name, message.args) == ("reconcile_scan_config", (config["id"],))
    # Due in 90 s by the injected clock: the message becomes visible then (+50 ms), by the real one.
    assert 90_050 <= message.options["eta"] - sent_at <= 90_050 + (_millis_now() - sent_at) + 5


def test_a_config_due_in_days_is_looked_at_again_within_the_longest_delay(broker, clock):
    config = scan_config(operation_time="2030-05-09T00:00:00Z", cron_line="0 0 * * *")
    broker.flush_all()
    sent_at = _millis_now()
    reconcile(config)
    assert scans_of(config) == []
    [message] = messages(broker, "orchestrator.DQ")
    delay = message.options["eta"] - sent_at
    assert MAX_DELAY_SECONDS * 1000 <= delay <= MAX_DELAY_SECONDS * 1000 + 1000


def test_a_running_scan_means_no_second_scan_but_the_cron_time_still_moves_on(broker, clock):
    config = scan_config(operation_time="2030-05-01T00:00:00Z", cron_line=EVERY_SIX_HOURS)
    reconcile(config)
    [running] = scans_of(config)  # not finished: still running at the next tick
    clock.set("2030-05-01T06:00:05Z")

    after = reconcile(config)

    assert scans_of(config) == [running]
    assert after["scheduled"]["operationTime"] == "2030-05-01T12:00:00Z"

    # Once it has finished, the next tick starts the next scan.
    finish(running)
    clock.set("2030-05-01T12:00:01Z")
    reconcile(config)
    assert len(scans_of(config)) == 2


def test_a_one_off_config_due_while_its_scan_runs_starts_no_second_scan(broker, clock):
    """As the original: "start now" during a running scan is dropped (the config ends disabled)."""
    config = scan_config(operation_time="2030-05-01T06:00:00Z")
    reconcile(config)
    config = patch(ScanConfig, load(ScanConfig, config["id"]),
                   {"disabled": False, "scheduled": {"operationTime": "2030-05-01T06:00:20Z"}})
    after = reconcile(config)
    assert len(scans_of(config)) == 1
    assert after["disabled"] is True


def test_a_disabled_config_starts_nothing_and_is_not_changed(broker, clock):
    config = scan_config(operation_time="2030-05-01T06:00:00Z", cron_line=EVERY_SIX_HOURS, disabled=True)
    broker.flush_all()
    after = reconcile(config)
    assert scans_of(config) == []
    assert after == config  # same revision: not even touched
    assert messages(broker, "orchestrator") == messages(broker, "orchestrator.DQ") == []


@pytest.mark.parametrize("operation_time", [None, "not a time", "2030-13-45T99:00:00Z", ""])
def test_a_config_without_a_usable_operation_time_starts_nothing(broker, clock, operation_time):
    config = scan_config(operation_time="2030-05-01T06:00:00Z", cron_line=EVERY_SIX_HOURS)
    # The API refuses such a document; write it underneath, as an old or hand-made row would be.
    data = dict(config, scheduled={"cronLine": EVERY_SIX_HOURS} if operation_time is None
                else {"cronLine": EVERY_SIX_HOURS, "operationTime": operation_time})
    ScanConfig.update(data=data).where(ScanConfig.id == config["id"]).execute()
    broker.flush_all()

    after = reconcile(config)

    assert scans_of(config) == []
    assert after == data
    assert messages(broker, "orchestrator") == messages(broker, "orchestrator.DQ") == []


def test_a_deleted_config_is_a_no_op(broker, clock):
    reconcile_scan_config.fn(str(uuid.uuid4()))
    assert Scan.select().count() == 0
    assert messages(broker, "orchestrator.DQ") == []


# ---- the scheduler's sweep ----------------------------------------------------------


def test_the_sweep_enqueues_due_configs_only(broker, clock, tmp_path, monkeypatch):
    monkeypatch.setenv("VMCLARITY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VMCLARITY_PROVIDER", "local")
    due = {
        "cron": scan_config(operation_time="2030-05-01T06:00:00Z", cron_line=EVERY_SIX_HOURS),
        "one-off": scan_config(operation_time="2030-05-01T05:00:00Z"),
        "exactly now": scan_config(operation_time="2030-05-01T06:00:30Z"),
        "explicitly enabled": scan_config(operation_time="2030-05-01T06:00:00Z", disabled=False),
    }
    not_due = {
        "later": scan_config(operation_time="2030-05-01T06:00:31Z"),
        "cron later": scan_config(operation_time="2030-05-01T12:00:00Z", cron_line=EVERY_SIX_HOURS),
        "disabled": scan_config(operation_time="2030-05-01T06:00:00Z", disabled=True),
    }
    broker.flush_all()

    sent = tasks.scheduler.sweep(orchestrator_settings())

    enqueued = messages(broker, "orchestrator", actor="reconcile_scan_config")
    assert sorted(m.args[0] for m in enqueued) == sorted(config["id"] for config in due.values())
    assert sent == len(messages(broker, "orchestrator")) == len(due)  # nothing else has work
    assert messages(broker, "orchestrator.DQ") == []

    # What those messages do: a scan for each due config, none for the others.
    for message in enqueued:
        reconcile_scan_config.fn(*message.args)
    assert all(len(scans_of(config)) == 1 for config in due.values())
    assert all(scans_of(config) == [] for config in not_due.values())
    # Nothing is due any more; the unfinished scans are what the next sweep re-drives.
    broker.flush_all()
    tasks.scheduler.sweep(orchestrator_settings())
    assert messages(broker, "orchestrator", actor="reconcile_scan_config") == []
    assert sorted(m.args[0] for m in messages(broker, "orchestrator", actor="reconcile_scan")) == sorted(
        scans_of(config)[0]["id"] for config in due.values())


def test_the_sweep_follows_the_injected_clock(broker, clock, tmp_path, monkeypatch):
    monkeypatch.setenv("VMCLARITY_DATA_DIR", str(tmp_path / "data"))
    config = scan_config(operation_time="2030-05-01T07:00:00Z", cron_line=EVERY_SIX_HOURS)
    broker.flush_all()
    tasks.scheduler.sweep(orchestrator_settings())
    assert messages(broker, "orchestrator", actor="reconcile_scan_config") == []
    clock.set("2030-05-01T07:00:00Z")
    tasks.scheduler.sweep(orchestrator_settings())
    assert [m.args for m in messages(broker, "orchestrator", actor="reconcile_scan_config")] == [(config["id"],)]


def _millis_now():
    return int(datetime.datetime.now(UTC).timestamp() * 1000)
