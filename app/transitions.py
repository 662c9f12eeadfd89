"""State machines of the API objects: which state changes and reasons are allowed.

Anatomy §1.5; the API checks every PUT/PATCH against these tables.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class StateMachine:
    name: str
    #: state -> states it may move to
    edges: dict
    #: state -> reasons allowed in that state
    reasons: dict

    def check(self, old, new):
        """Return an error message when `old` -> `new` is not allowed, else None."""
        if old == new:
            return None
        state, reason = new.get("state"), new.get("reason")
        if state not in self.reasons:
            return f"{self.name}: unknown state {state!r}"
        if reason not in self.reasons[state]:
            return f"{self.name}: reason {reason!r} is not allowed for state {state!r}"
        old_state = (old or {}).get("state")
        if old_state != state and state not in self.edges.get(old_state, ()):
            return f"{self.name}: transition from {old_state!r} to {state!r} is not allowed"
        return None

    def check_initial(self, status, allowed_states):
        """Return an error message unless a new object starts in one of `allowed_states`."""
        if not status or status.get("state") not in allowed_states:
            return f"{self.name}: a new object must start in state {' or '.join(allowed_states)}"
        state, reason = status["state"], status.get("reason")
        if reason not in self.reasons[state]:
            return f"{self.name}: reason {reason!r} is not allowed for state {state!r}"
        return None


SCAN = StateMachine(
    "status",
    edges={
        "Pending": ("Discovered", "Aborted", "Failed", "Done"),
        "Discovered": ("InProgress", "Aborted"),
        "InProgress": ("Aborted", "Failed", "Done"),
        "Aborted": ("Failed",),
    },
    reasons={
        "Pending": ("Created",),
        "Discovered": ("AssetsDiscovered",),
        "InProgress": ("AssetScansRunning",),
        "Aborted": ("Cancellation",),
        "Failed": ("Cancellation", "Error", "Timeout"),
        "Done": ("NothingToScan", "Success"),
    },
)

ASSET_SCAN = StateMachine(
    "status",
    edges={
        "Pending": ("Scheduled", "Aborted"),
        "Scheduled": ("ReadyToScan", "Failed", "Aborted"),
        "ReadyToScan": ("InProgress", "Failed", "Aborted"),
        "InProgress": ("Done", "Failed", "Aborted"),
        "Aborted": ("Failed",),
    },
    reasons={
        "Pending": ("Created",),
        "Scheduled": ("Provisioning",),
        "ReadyToScan": ("UnSupervised", "ResourcesReady"),
        "InProgress": ("ScannerIsRunning",),
        "Aborted": ("Cancellation",),
        "Failed": ("Error", "AbortTimedOut"),
        "Done": ("Success",),
    },
)

RESOURCE_CLEANUP = StateMachine(
    "resourceCleanupStatus",
    edges={"Pending": ("Skipped", "Failed", "Done")},
    reasons={
        "Pending": ("AssetScanCreated",),
        "Skipped": ("NotApplicable", "DeletePolicy"),
        "Failed": ("ProviderError", "InternalError"),
        "Done": ("Success",),
    },
)

SCAN_ESTIMATION = StateMachine(
    "status",
    edges={
        "Pending": ("Discovered", "Aborted", "Failed", "Done"),
        "Discovered": ("InProgress", "Aborted", "Failed"),
        "InProgress": ("Aborted", "Failed", "Done"),
        "Aborted": ("Failed",),
    },
    reasons={
        "Pending": ("Created",),
        "Discovered": ("SuccessfulDiscovery",),
        "InProgress": ("EstimationsRunning",),
        "Aborted": ("Cancellation",),
        "Failed": ("Aborted", "Error", "TimeOut"),
        "Done": ("NothingToEstimate", "Success"),
    },
)

ASSET_SCAN_ESTIMATION = StateMachine(
    "status",
    edges={"Pending": ("Aborted", "Done", "Failed"), "Failed": ("Aborted",)},
    reasons={
        "Pending": ("Created",),
        "Aborted": ("Cancellation",),
        "Failed": ("Aborted", "Error"),
        "Done": ("Success",),
    },
)
