"""Peewee models: the nine API objects, users, API tokens and failed sign-ins.

Each API object is stored the way the wire shows it, as one JSON document in
`data` (the full object, `id` and `revision` included), plus plain columns
that mirror what the database must constrain or find fast: relationships as
foreign keys, identity keys as unique columns. The store keeps both in step.
"""

import peewee

from app.db import JSONField, database


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Document(BaseModel):
    """An API object: its JSON document and the columns derived from it."""

    pk = peewee.AutoField()
    id = peewee.CharField(max_length=36, unique=True)
    revision = peewee.IntegerField(default=1)
    data = JSONField()

    #: API name of the object, as in `<Type>Exists` and `$ref`s.
    schema_name = None
    #: Relationship property -> foreign-key field name, for OData paths.
    relationships = {}


class Asset(Document):
    schema_name = "Asset"
    identity = peewee.CharField(max_length=512, null=True, unique=True)


class ScanConfig(Document):
    schema_name = "ScanConfig"
    name = peewee.CharField(max_length=512, unique=True)


class Scan(Document):
    schema_name = "Scan"
    relationships = {"scanConfig": "scan_config"}
    scan_config = peewee.ForeignKeyField(ScanConfig, field="id", null=True, backref="scans")
    #: The scan config's id while the scan runs (no endTime), else NULL: at
    #: most one running scan per config.
    running_config = peewee.CharField(max_length=36, null=True, unique=True)

    @classmethod
    def running_for(cls, scan_config_id):
        return cls.select(cls.id).where(cls.running_config == scan_config_id)


class AssetScan(Document):
    schema_name = "AssetScan"
    relationships = {"asset": "asset", "scan": "scan"}
    asset = peewee.ForeignKeyField(Asset, field="id", backref="asset_scans")
    scan = peewee.ForeignKeyField(Scan, field="id", null=True, backref="asset_scans")
    state = peewee.CharField(max_length=32, index=True)
    findings_processed = peewee.BooleanField(default=False)

    class Meta:
        indexes = ((("asset", "scan"), True),)

    @classmethod
    def awaiting_findings(cls):
        """Ids of finished asset scans whose results are not findings yet (anatomy §2.2 processor)."""
        return (cls.select(cls.id)
                .where(cls.state.in_(("Done", "Failed")), cls.findings_processed == False)  # noqa: E712
                .order_by(cls.pk))

    ACTIVE_STATES = ("Scheduled", "ReadyToScan", "InProgress", "Aborted")
    FINISHED_STATES = ("Done", "Failed")

    @classmethod
    def of_scan(cls, scan_id):
        return cls.select().where(cls.scan == scan_id)

    @classmethod
    def state_counts(cls, scan_id):
        """{state: number of the scan's asset scans in it}."""
        rows = (cls
                .select(cls.state, peewee.fn.COUNT(cls.pk))
                .where(cls.scan == scan_id)
                .group_by(cls.state)
                .tuples())
        return dict(rows)

    @classmethod
    def next_pending(cls, scan_id, limit):
        return cls.of_scan(scan_id).where(cls.state == "Pending").order_by(cls.pk).limit(limit)


class Finding(Document):
    schema_name = "Finding"
    relationships = {"lastSeenBy": "last_seen_by"}
    key = peewee.CharField(max_length=2048, unique=True)
    object_type = peewee.CharField(max_length=32, index=True)
    last_seen_by = peewee.ForeignKeyField(AssetScan, field="id", null=True, backref="findings")


class AssetFinding(Document):
    schema_name = "AssetFinding"
    relationships = {"asset": "asset", "finding": "finding"}
    asset = peewee.ForeignKeyField(Asset, field="id", backref="asset_findings")
    finding = peewee.ForeignKeyField(Finding, field="id", backref="asset_findings")

    class Meta:
        indexes = ((("asset", "finding"), True), (("finding",), False))


class ScanEstimation(Document):
    schema_name = "ScanEstimation"


class AssetScanEstimation(Document):
    schema_name = "AssetScanEstimation"
    relationships = {"asset": "asset", "scanEstimation": "scan_estimation"}
    asset = peewee.ForeignKeyField(Asset, field="id", backref="asset_scan_estimations")
    scan_estimation = peewee.ForeignKeyField(ScanEstimation, field="id", backref="asset_scan_estimations")

    class Meta:
        indexes = ((("asset", "scan_estimation"), True),)


class Provider(Document):
    schema_name = "Provider"


class User(BaseModel):
    """A person who signs in to the web UI."""

    username = peewee.CharField(max_length=150, unique=True)
    password_hash = peewee.CharField(max_length=255)
    role = peewee.CharField(max_length=16)
    created_at = peewee.DateTimeField()


class ApiToken(BaseModel):
    """A bearer token, stored as its SHA-256 hash; scanner tokens name their asset scan."""

    name = peewee.CharField(max_length=150)
    token_hash = peewee.CharField(max_length=64, unique=True)
    role = peewee.CharField(max_length=16)
    asset_scan = peewee.ForeignKeyField(AssetScan, field="id", null=True, on_delete="CASCADE", backref="tokens")
    created_at = peewee.DateTimeField()


class LoginFailure(BaseModel):
    """Consecutive failed sign-ins for a username as typed, known or not (app/login_throttle.py).

    Keyed by the text rather than a User, so an unknown name is counted and locked like a real one.
    """

    username = peewee.CharField(max_length=150, primary_key=True)
    count = peewee.IntegerField(default=0)
    #: Naive UTC; no password is checked for this name before then.
    locked_until = peewee.DateTimeField(null=True)
    last_attempt = peewee.DateTimeField(index=True)


DOCUMENT_MODELS = (
    Asset, ScanConfig, Scan, AssetScan, Finding, AssetFinding, ScanEstimation, AssetScanEstimation, Provider,
)
ALL_MODELS = DOCUMENT_MODELS + (User, ApiToken, LoginFailure)
MODELS_BY_SCHEMA = {model.schema_name: model for model in DOCUMENT_MODELS}
