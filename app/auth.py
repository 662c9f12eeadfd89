"""API authentication: bearer tokens, stored hashed, each with a role.

Roles: `admin` and `operator` read and write every object, `viewer` only reads,
and a `scanner` token (minted per asset scan) may read its own asset scan and
merge-patch its results and status: nothing else.
"""

import datetime
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from app.errors import Forbidden, Unauthorized
from app.models import ApiToken

ROLES = ("admin", "operator", "viewer")
SCANNER_ROLE = "scanner"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: What a scanner may write on its asset scan: its status, stats and family results.
SCANNER_WRITABLE = frozenset({
    "status", "stats", "summary", "sbom", "vulnerabilities", "malware", "rootkits", "secrets",
    "misconfigurations", "exploits", "infoFinder", "plugins",
})
TOKEN_PREFIX = "vmc_"
MAX_TOKEN_NAME_LENGTH = ApiToken.name.max_length


class Principal:
    """Who is calling: a role, and for a scanner the one asset scan it works on."""

    def __init__(self, name, role, asset_scan_id=None):
        self.name = name
        self.role = role
        self.asset_scan_id = asset_scan_id


def _hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def create_token(name, role, asset_scan_id=None):
    """Store a new token and return its secret, which is shown only this once."""
    name = (name or "").strip()
    if not name:
        raise ValueError("the token needs a name, e.g. what script uses it")
    if len(name) > MAX_TOKEN_NAME_LENGTH:
        raise ValueError(f"the token name must have at most {MAX_TOKEN_NAME_LENGTH} characters")
    if not name.isprintable():  # control characters would forge lines in logs and listings
        raise ValueError("the token name may hold only printable characters")
    if role not in ROLES + (SCANNER_ROLE,):
        raise ValueError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    if (role == SCANNER_ROLE) != (asset_scan_id is not None):
        raise ValueError("a scanner token needs an asset scan, and only a scanner token may have one")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.create(name=name, token_hash=_hash(secret), role=role, asset_scan=asset_scan_id, created_at=_now())
    return secret


def people_tokens():
    """The tokens people made (scanner tokens come and go with their asset scans), oldest first."""
    return list(ApiToken.select().where(ApiToken.role != SCANNER_ROLE).order_by(ApiToken.created_at, ApiToken.id))


def revoke_token(token_id):
    """Delete a token people made; raise LookupError when there is none with that id."""
    deleted = ApiToken.delete().where(ApiToken.id == token_id, ApiToken.role != SCANNER_ROLE).execute()
    if not deleted:
        raise LookupError("no API token has that id")


def mint_scanner_token(asset_scan_id):
    """A token that lets the scanner of one asset scan report on it."""
    return create_token(f"scanner {asset_scan_id}", SCANNER_ROLE, asset_scan_id)


def authenticate(header, admin_token):
    """Return the Principal for an `Authorization` header value, or raise Unauthorized."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal("VMCLARITY_ADMIN_TOKEN", "admin")
    row = ApiToken.get_or_none(ApiToken.token_hash == _hash(token))
    if row is None:
        raise Unauthorized("invalid or revoked token")
    return Principal(row.name, row.role, row.asset_scan_id)


def authorize(principal, method, collection, object_id, body):
    """Raise Forbidden unless `principal` may make this request."""
    if principal.role in ("admin", "operator"):
        return
    if principal.role == "viewer":
        if method not in READ_METHODS:
            raise Forbidden("the viewer role may only read")
        return
    _authorize_scanner(principal, method, collection, object_id, body)


def _authorize_scanner(principal, method, collection, object_id, body):
    if collection != "assetScans" or object_id != principal.asset_scan_id:
        raise Forbidden("a scanner token may only use its own asset scan")
    if method in READ_METHODS:
        return
    if method != "PATCH":
        raise Forbidden("a scanner token may only read or PATCH its asset scan")
    extra = sorted(set(body) - SCANNER_WRITABLE) if isinstance(body, dict) else []
    if extra:
        raise Forbidden(f"a scanner token may not change {', '.join(extra)}")


def first_admin_token(data_dir):
    """Return the installation's first admin token, creating it on first use.

    Kept in `<data dir>/admin-token` (mode 0600) so `vmclarity up` can show it
    again; the database holds only its hash.
    """
    path = Path(data_dir) / "admin-token"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = create_token("first admin", "admin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret
