"""The live API against the ORIGINAL VMClarity contract, property-based with schemathesis.

Every operation of upstream's openapi.yaml is exercised over real HTTP (the app in a
threaded werkzeug server, on the test database of the selected backend), twice:

- `generated`: everything generated from upstream's schema (ids are random, so item
  paths mostly answer 404, bodies are valid by upstream's schema but often not by our
  rules, so writes answer 400/409 as well as 2xx); about half the item requests carry
  an id with a NUL byte, which schemathesis seldom generates on its own;
- `seeded`: path ids, relationship ids in bodies and (for GETs) the OData query are
  replaced by real objects of a freshly seeded set, so 200s, expanded relationships
  and 409 `<Type>Exists` bodies are exercised too (one of the list queries compares
  with a NUL-carrying literal).

Each answer must not be a 5xx and must conform to upstream's document: status code,
content type, body schema and headers. Every upstream operation declares `default`
(ApiResponse), so our deliberate 400 for a malformed OData query conforms. The admin
token goes on every request, so 401/403 never happen here.

Bounded and deterministic: MAX_EXAMPLES per operation and pass, derandomized, no
shrinking (every example runs and is counted; failures are reported with a curl line).
"""

import collections
import contextlib
import datetime
import uuid
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from app.db import database
from conftest import backend, database_url_for, serving

# CI clones the repo next to shared/, so look beside the repo, not inside it.
UPSTREAM = Path(__file__).resolve().parents[1].parent / "shared/reference/vmclarity-api/openapi.yaml"

if UPSTREAM.exists():
    SCHEMA = schemathesis.openapi.from_path(UPSTREAM)
    OPERATION_IDS = [SCHEMA.get_operation_id(result.ok()) for result in SCHEMA.get_all_operations()]
else:
    pytestmark = pytest.mark.skip(reason=f"upstream VMClarity spec not found at {UPSTREAM} (shared/ beside the clone)")
    SCHEMA = None
    OPERATION_IDS = ["no-upstream-spec"]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
MAX_EXAMPLES = 25
REPORTS_PER_FAILURE = 3
#: A string schemathesis seldom puts where it hurts: a NUL byte (PostgreSQL refuses it in text and JSONB).
HOSTILE = "id\x00with-nul"
ADMIN_TOKEN = "conformance-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

#: Checks we leave out for one operation, each with the reason.
EXEMPT = {
    # Upstream declares `type: string, format: json`, yet upstream's own server answers the
    # document as a JSON object (`ctx.JSON(200, swagger)`), exactly as we do.
    "GetOpenAPISpec": {"response_schema_conformance"},
}

#: Path parameter -> the seeded object it names.
PATH_PARAMS = {
    "assetID": "asset", "assetScanID": "assetScan", "scanID": "scan", "scanConfigID": "scanConfig",
    "findingID": "finding", "assetFindingID": "assetFinding", "scanEstimationID": "scanEstimation",
    "assetScanEstimationID": "assetScanEstimation", "providerID": "provider",
}
#: Relationship property in a request body -> the seeded object it should point at.
BODY_RELATIONSHIPS = {
    "asset": "asset", "scan": "scan", "scanConfig": "scanConfig", "finding": "finding",
    "scanEstimation": "scanEstimation", "lastSeenBy": "assetScan", "provider": "provider",
}
#: Collection -> (the seeded object of that type, relationships `$expand` may name).
COLLECTIONS = {
    "assets": ("asset", ()),
    "assetScans": ("assetScan", ("asset", "scan")),
    "scans": ("scan", ("scanConfig",)),
    "scanConfigs": ("scanConfig", ()),
    "findings": ("finding", ("lastSeenBy",)),
    "assetFindings": ("assetFinding", ("asset", "finding")),
    "scanEstimations": ("scanEstimation", ()),
    "assetScanEstimations": ("assetScanEstimation", ("asset", "scanEstimation")),
    "providers": ("provider", ()),
}


@pytest.fixture(scope="module")
def live_api(request, tmp_path_factory):
    """Base URL of the app served over real HTTP, on one fresh database for the module."""
    app = create_app({
        "DATABASE_URL": database_url_for(request, tmp_path_factory.mktemp("conformance")),
        "DATA_DIR": str(tmp_path_factory.mktemp("conformance-data")),
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "EXTENSIONS": (),
    })
    tally = {}
    with serving(app) as url:
        yield f"{url}/api", tally
    if not database.is_closed():
        database.close()
    _print_tally(request.config, tally)


def _print_tally(config, tally):
    """Show passing/total examples and statuses per operation, even when output is captured."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or not tally:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line("")
        reporter.section(f"schemathesis conformance on {backend()}: passing examples per operation", sep="-")
        for (operation_id, mode), record in sorted(tally.items()):
            statuses = " ".join(f"{code}x{count}" for code, count in sorted(record.statuses.items(), key=str))
            reporter.write_line(f"{operation_id:48} {mode:9} {record.passed:3}/{record.total:<3} {statuses}")


@pytest.fixture
def session():
    with requests.Session() as http:
        http.headers.update(AUTH)
        yield http


@pytest.fixture
def seeded(live_api, session):
    """One fresh, valid object of every type, created through the API; returns their ids."""
    base, _ = live_api
    now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    tag = uuid.uuid4().hex[:8]
    template = {
        "scope": "assetInfo/objectType eq 'DirInfo'",
        "maxParallelScanners": 2,
        "assetScanTemplate": {"scanFamiliesConfig": {"sbom": {"enabled": True}, "secrets": {"enabled": True}}},
    }
    ids = {}

    def create(collection, name, body):
        response = session.post(f"{base}/{collection}", json=body, timeout=30)
        assert response.status_code == 201, f"seeding {collection}: {response.status_code} {response.text}"
        ids[name] = response.json()["id"]

    create("providers", "provider", {
        "displayName": f"local {tag}",
        "status": {"state": "Healthy", "reason": "HeartbeatReceived", "lastTransitionTime": now},
    })
    create("assets", "asset", {
        "assetInfo": {"objectType": "DirInfo", "dirName": f"/srv/{tag}", "location": "local"},
        "firstSeen": now, "lastSeen": now, "providers": [{"id": ids["provider"]}],
    })
    create("scanConfigs", "scanConfig", {
        "name": f"nightly {tag}", "scheduled": {"cronLine": "0 3 * * *"}, "scanTemplate": template,
    })
    create("scans", "scan", {
        "name": f"scan {tag}", "scanConfig": {"id": ids["scanConfig"]}, "assetIDs": [ids["asset"]],
        "startTime": now, **template,
    })
    create("assetScans", "assetScan", {
        "asset": {"id": ids["asset"]}, "scan": {"id": ids["scan"]},
        "scanFamiliesConfig": template["assetScanTemplate"]["scanFamiliesConfig"],
    })
    create("findings", "finding", {
        "findingInfo": {"objectType": "Package", "name": f"requests-{tag}", "version": "2.31.0",
                        "purl": f"pkg:pypi/requests-{tag}@2.31.0"},
        "firstSeen": now, "lastSeen": now, "lastSeenBy": {"id": ids["assetScan"]},
    })
    create("assetFindings", "assetFinding", {
        "asset": {"id": ids["asset"]}, "finding": {"id": ids["finding"]}, "firstSeen": now, "lastSeen": now,
    })
    create("scanEstimations", "scanEstimation", {"assetIDs": [ids["asset"]], "scanTemplate": template})
    create("assetScanEstimations", "assetScanEstimation", {
        "asset": {"id": ids["asset"]}, "scanEstimation": {"id": ids["scanEstimation"]},
    })
    return ids


class Record:
    """What one operation's examples did: how many, which statuses, which failed and why."""

    def __init__(self):
        self.total = 0
        self.passed = 0
        self.statuses = collections.Counter()
        self.failures = {}  # distinct failure -> its first few reports

    def add(self, status, failure_keys=(), report=None):
        self.total += 1
        self.statuses[status] += 1
        if failure_keys:
            reports = self.failures.setdefault(tuple(failure_keys), [])
            if len(reports) < REPORTS_PER_FAILURE and report not in reports:
                reports.append(report)
        else:
            self.passed += 1


def _collection(operation):
    return operation.path.strip("/").split("/")[0]


def _seeded_queries(operation, ids):
    """Valid OData queries for a GET, aimed at the seeded objects."""
    own, relationships = COLLECTIONS[_collection(operation)]
    expands = [{"$expand": name} for name in relationships]
    if relationships:
        expands.append({"$expand": ",".join(relationships)})
    if len(operation.path_parameters):
        return [{}, {"$select": "id,revision"}, *expands]
    return [
        {},
        {"$count": "true"},
        {"$top": "2", "$skip": "1", "$count": "true"},
        {"$filter": f"id eq '{ids[own]}'", "$count": "true"},
        {"$select": "id,revision", "$orderby": "id desc", "$top": "3"},
        {"$filter": f"id eq '{HOSTILE}'", "$count": "true"},
        *[{"$filter": f"id eq '{ids[own]}'", **expand} for expand in expands],
    ]


def _aim_at_seeded(case, ids):
    """Point a generated write at the seeded objects so it can succeed or conflict."""
    body = case.body
    if not isinstance(body, dict):
        return
    body = dict(body)
    if case.method == "POST":
        body.pop("id", None)
    elif "id" in body and case.path_parameters:
        body["id"] = next(iter(case.path_parameters.values()))
    for name, target in BODY_RELATIONSHIPS.items():
        if isinstance(body.get(name), dict):
            body[name] = {**body[name], "id": ids[target]}
    case.body = body
    case.headers.pop("If-Match", None)


def _explore(strategy, examine):
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn=strategy)
    def run(drawn):
        examine(*drawn)

    run()


def _report(case, response, group):
    body = response.text if len(response.text) < 1500 else response.text[:1500] + "..."
    return (
        f"{case.method} {case.formatted_path}  query={case.query!r}\n"
        f"  request: {case.as_curl_command(headers=AUTH)}\n"
        f"  response: {response.status_code} {', '.join(response.headers.get('content-type', []))}\n  {body}\n"
        + "\n".join(f"  - {failure.title}: {failure.message}" for failure in group.exceptions)
    )


@pytest.mark.parametrize("mode", ["generated", "seeded"])
@pytest.mark.parametrize("operation_id", OPERATION_IDS)
def test_operation_conforms_to_upstream(operation_id, mode, live_api, session, request):
    base, tally = live_api
    operation = SCHEMA.find_operation_by_id(operation_id)
    if mode == "seeded" and _collection(operation) not in COLLECTIONS:
        pytest.skip("nothing to seed for this operation")
    checks = [check for check in CHECKS if check.__name__ not in EXEMPT.get(operation_id, ())]
    record = tally[(operation_id, mode)] = Record()

    if mode == "seeded":
        ids = request.getfixturevalue("seeded")
        path_parameters = {parameter.name: ids[PATH_PARAMS[parameter.name]]
                           for parameter in operation.path_parameters}
        cases = operation.as_strategy(path_parameters=path_parameters)
        queries = _seeded_queries(operation, ids) if operation.method.upper() == "GET" else [None]
        strategy = st.tuples(cases, st.sampled_from(queries))
    else:
        ids = None
        cases = operation.as_strategy()
        if len(operation.path_parameters):
            hostile = {parameter.name: HOSTILE for parameter in operation.path_parameters}
            cases = st.one_of(cases, operation.as_strategy(path_parameters=hostile))
        strategy = st.tuples(cases, st.just(None))

    def examine(case, query):
        if query is not None:
            case.query = dict(query)
        if ids is not None:
            _aim_at_seeded(case, ids)
        try:
            response = case.call(base_url=base, session=session, headers=AUTH, timeout=60)
        except requests.RequestException as error:
            record.add("error", [f"request failed: {type(error).__name__}"], f"{case!r}: {error}")
            return
        try:
            case.validate_response(response, checks=checks, headers=AUTH)
        except FailureGroup as group:
            keys = sorted({f"{response.status_code} {failure.title}" for failure in group.exceptions})
            record.add(response.status_code, keys, _report(case, response, group))
        else:
            record.add(response.status_code)

    _explore(strategy, examine)
    statuses = ", ".join(f"{code}: {count}" for code, count in sorted(record.statuses.items(), key=str))
    print(f"{operation_id} [{mode}]: {record.passed}/{record.total} examples passed ({statuses})")
    assert record.total > 0
    if record.failures:
        details = "\n\n".join(f"[{'; '.join(keys)}]\n" + "\n".join(reports)
                                for keys, reports in record.failures.items())
        pytest.fail(
            f"{operation_id} [{mode}]: {record.total - record.passed} of {record.total} examples broke "
            f"upstream's contract ({len(record.failures)} distinct):\n\n{details}",
            pytrace=False,
        )
