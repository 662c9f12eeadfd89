"""The credential rules of the `secrets` engine: one bytes regex and one validator each.

A rule's regex is the exact definition of a candidate; the engine also compiles it into
hyperscan in prefilter mode (lookarounds and back-references relaxed, so hyperscan finds
a superset) and only runs Python's `re` around hyperscan's hits. A rule whose regex is
too big for hyperscan to compile quickly (the nested repeats of a PEM body) gives a
`trigger` instead: a pattern for the start of a match, ending within TRIGGER_REACH bytes
of the match's start. `keywords` are literals that every match contains
(case-insensitively): the engine's fallback looks for them when hyperscan is missing.
`max_len` bounds a match, which bounds the search window around a hit and the overlap
kept between chunks.

The secret is the first of the rule's `groups` that took part in the match; its span is
what a finding points at. A validator gets the secret's bytes and the match and says
whether it is a real credential (checksums, entropy, placeholders, pairing): a finding
must be a credential, not any long string.
"""

import base64
import binascii
import json
import math
import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    keywords: tuple  # lowercase bytes; every match contains one of them (case-insensitively)
    pattern: bytes
    max_len: int
    validate: Callable | None = None  # (secret: bytes, match) -> bool
    groups: tuple = (1,)  # the capture groups that can hold the secret; the first that took part wins
    trigger: bytes | None = None  # what hyperscan looks for instead of `pattern`: a match's first TRIGGER_REACH bytes
    anywhere: bool = True  # False: a guess from context, not run in third-party code trees (see skip.py)
    regex: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "regex", re.compile(self.pattern))

    def secret_span(self, match):
        """(start, end) of the secret in the match: the first of `groups` that took part."""
        for group in self.groups:
            if match.start(group) >= 0:
                return match.span(group)
        return match.span()


# Validators -------------------------------------------------------------------------

def entropy(data):
    """Shannon entropy of `data` in bits per byte."""
    if not data:
        return 0.0
    total = len(data)
    return -sum(n / total * math.log2(n / total) for n in Counter(data).values())


#: Substrings (lowercase) that mark a value as a placeholder, template or example.
PLACEHOLDERS = (
    b"changeme", b"change_me", b"change-me", b"example", b"xxxx", b"****", b"...", b"<", b">",
    b"${", b"{{", b"}}", b"%s", b"%(", b"$(", b"your", b"dummy", b"placeholder", b"redacted",
    b"sample", b"fake", b"secret", b"password", b"passwd", b"token", b"12345678", b"abcdefgh",
    b"qwerty", b"test", b"replace", b"todo", b"fixme", b"foobar", b"notreal", b"not_real",
)


def is_placeholder(value):
    lower = value.lower()
    if any(word in lower for word in PLACEHOLDERS):
        return True
    return len(set(lower)) <= 2  # 'aaaaaaaa', '0000', 'ababab'


def char_classes(value):
    """How many of lowercase, uppercase and digits appear in `value`."""
    return (any(97 <= b <= 122 for b in value) + any(65 <= b <= 90 for b in value)
            + any(48 <= b <= 57 for b in value))


def looks_random(secret, min_entropy, min_classes=2):
    return entropy(secret) >= min_entropy and char_classes(secret) >= min_classes and not is_placeholder(secret)


def random_looking(min_entropy, min_classes=2):
    """A rule's check that the whole secret looks random."""
    return lambda secret, match: looks_random(secret, min_entropy, min_classes)


_BASE62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def crc32_token(secret, match):
    """GitHub (ghp_ ...) and npm tokens: 30 random base62 characters, then their CRC32 in 6 base62 digits."""
    body, check = secret[4:-6], secret[-6:]
    value = 0
    for ch in check:
        value = value * 62 + _BASE62.index(ch)
    return value == binascii.crc32(body)


_AWS_SECRET_NEARBY = re.compile(rb"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
PAIRING_DISTANCE = 1024


def aws_key_id(secret, match):
    """A key ID is half a credential: reported only with a secret-looking key within PAIRING_DISTANCE bytes."""
    if b"EXAMPLE" in secret or entropy(secret[4:]) < 3.0:
        return False
    start, end = match.span()
    near = match.string[max(0, start - PAIRING_DISTANCE):end + PAIRING_DISTANCE]
    return any(aws_secret_key(candidate.group(), None) for candidate in _AWS_SECRET_NEARBY.finditer(near))


def aws_secret_key(secret, match):
    return (entropy(secret) >= 4.0 and char_classes(secret) == 3 and b"EXAMPLE" not in secret.upper()
            and not is_placeholder(secret))


#: Credentials published on purpose, found on countless hosts: the Azure Storage emulator's
#: account key; the OAuth client secrets of the Google Cloud SDK's installed-app clients and
#: the API keys it ships (gsutil's, crash reporting's); and the example tokens of the OAuth
#: RFCs (6749, 6750, 5849), which documentation and docstrings quote.
PUBLISHED = frozenset((
    b"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    b"ZmssLNjJy2998hD4CTg2ejr2",
    b"d-FL95Q19q7MQmFpd7hHD0Ty",
    b"AIzaSyDnacJHrKma0048b13sh8cgxNUwulubmJM",
    b"AIzaSyCUuWyME_r4XylltWNeydEjKSkgXkvpVyU",
    b"AIzaSyAp4DSI_Z3-mK-B8U0t7GE34n74OWDJmak",
    b"2YotnFZFEjr1zCsicMWpAA", b"tGzv3JOkF0XG5Qx2TlKWIA", b"SplxlOBeZQQYbYS6WxSbIA", b"mF_9.B5f-4.1JqM",
    b"0685bd9184jfhq22", b"ad180jjd733klru7", b"kd94hf93k423kf44", b"nnch734d00sl2jdk", b"pfkkdhi9sl3r4s00",
    b"hh5s93j4hdidpola", b"hdhd0244k9j7ao03", b"hfdp7dh39dks9884", b"dpf43f3p2l4k3l03",
))


_DOCTEST_PROMPT = re.compile(rb"[ \t]*>>>(?: |$)", re.MULTILINE)
DOCTEST_LINES = 6
#: How far before a match a prompt is looked for. Every candidate looks, so an unbounded look
#: back makes a long line full of candidates quadratic; a prompt further back goes unseen.
DOCTEST_REACH = 4096


def in_doctest(match):
    """Whether a `>>>` prompt starts the match's line or one of the DOCTEST_LINES lines above it.

    Docstrings show made-up credentials as an interactive session's input or output
    ('oauth_token_secret': 'lsdajfh923874' under `>>> session.fetch_token(url)`);
    configuration files have no prompts.
    """
    text, start = match.string, match.start()
    floor, end = max(0, start - DOCTEST_REACH), start
    for _ in range(DOCTEST_LINES + 1):  # the match's line first, then the lines above it
        newline = text.rfind(b"\n", floor, end)
        if newline < 0 and floor > 0:
            return False  # the line starts before the window
        # Read up to the match's first byte only: `>>>password=` is no prompt.
        if _DOCTEST_PROMPT.match(text, newline + 1, start + 1):
            return True
        if newline < 0:
            return False
        end = newline
    return False


def google_api_key(secret, match):
    return secret not in PUBLISHED and looks_random(secret[4:], 4.0)


def gitlab_token(secret, match):
    """The random part after the type prefix (`glpat-`, `glrt-`, ..., `GR1348941`) looks random."""
    body = secret[9:] if secret.startswith(b"GR1348941") else secret.partition(b"-")[2]
    return looks_random(body, 3.5)


def azure_key(secret, match):
    return secret not in PUBLISHED and entropy(secret) >= 4.5


def slack_token(secret, match):
    tail = secret.rsplit(b"-", 1)[-1]
    return len(tail) >= 16 and entropy(tail) >= 3.0 and not is_placeholder(tail)


def slack_webhook(secret, match):
    tail = secret.rsplit(b"/", 1)[-1]
    return entropy(tail) >= 3.5 and not is_placeholder(tail)


def _b64decode(data):
    data = re.sub(rb"[^A-Za-z0-9+/=_-]", b"", data).rstrip(b"=")
    data = data.replace(b"-", b"+").replace(b"_", b"/")
    return base64.b64decode(data + b"=" * (-len(data) % 4))


def _json_object(part):
    try:
        value = json.loads(_b64decode(part))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def jwt(secret, match):
    """Header and payload decode to JSON objects, the header names a real signing algorithm."""
    header, payload, signature = secret.split(b".")
    head, body = _json_object(header), _json_object(payload)
    if head is None or body is None or not isinstance(head.get("alg"), str):
        return False
    if not any(claim in body for claim in ("iss", "sub", "aud", "exp", "nbf", "iat", "jti")):
        return False  # a token carries registered claims; '{"some": "payload"}' is a README's
    # jwt.io's sample token is in countless READMEs and tests.
    return head["alg"].lower() != "none" and body.get("name") != "John Doe" and entropy(signature) >= 3.5


def private_key(secret, match):
    """The body is base64 of a key: DER (a SEQUENCE), openssh-key-v1, or legacy encrypted bytes."""
    text = secret.replace(b"\\r", b"").replace(b"\\n", b"\n")
    lines = [line for line in text.split(b"\n") if not line.startswith(b"-----")]
    encrypted = any(b"ENCRYPTED" in line for line in lines if b":" in line)
    body = b"".join(line.strip() for line in lines if b":" not in line)
    try:
        der = base64.b64decode(body, validate=True)
    except ValueError:
        return False
    if len(der) < 40:  # an Ed25519 PKCS#8 key is 48 bytes
        return False
    if b"OPENSSH" in text[:40]:
        return der.startswith(b"openssh-key-v1\0")
    return encrypted or der[0] == 0x30


#: Passwords (lowercase, percent-decoded) that documentation and tests put in URLs.
URL_PLACEHOLDERS = (b"pass", b"ssword", b"pwd", b"tiger", b"xyzzy", b"secret", b"1234")
#: A whole password that spells 'password': 'p@ssw0rd', 'pa$$word', urllib's test 'pa%3Fsword'.
#: Matched whole, not found inside: 'Swordfish2024!' is a password.
_PASSWORD_SPELLING = re.compile(rb"p[a@4]?[s$5?]{0,2}w[o0]?r?d")
DOC_USERS = (b"user", b"username", b"usr", b"login", b"name", b"foo", b"scott", b"jane", b"john", b"bob", b"alice")
DOC_HOSTS = (b"example.com", b"example.org", b"example.net", b".example", b".invalid", b".test", b"localhost.localdomain")


def url_password(secret, match):
    user, host = match.group("user").lower(), match.group("host").lower()
    decoded = urllib.parse.unquote_to_bytes(secret).lower()
    if is_placeholder(secret) or any(word in decoded for word in URL_PLACEHOLDERS) or len(decoded) < 4:
        return False  # 'user:password@', 'jane:p%40ssword@', 'scott:tiger@'
    if _PASSWORD_SPELLING.fullmatch(decoded):
        return False
    if decoded == urllib.parse.unquote_to_bytes(user).lower() or (user in DOC_USERS and len(secret) < 12):
        return False  # 'guest:guest@', 'user:hunter2@': defaults and documentation
    if secret.startswith((b"$", b"%", b"{", b"[", b"*")) or secret.isdigit():
        return False  # ${VAR}, %(pw)s, {password}, ***, port-like
    return not host.endswith(DOC_HOSTS) and not in_doctest(match)


_IDENTIFIER = re.compile(rb"^(?:[A-Za-z_][A-Za-z0-9_]*)(?:[.:-][A-Za-z_][A-Za-z0-9_]*)*$")
_UUID = re.compile(rb"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: Settings named like these hold request ids and page cursors, not credentials.
NOT_SECRET_NAMES = (b"nexttoken", b"continuationtoken", b"pagetoken", b"paginationtoken", b"pagingtoken",
                    b"requesttoken", b"idempotencytoken", b"changetoken", b"clienttoken", b"outputtoken",
                    b"inputtoken", b"resulttoken", b"actiontoken", b"purchasetoken", b"tokentype",
                    b"tokenurl", b"tokenendpoint", b"passwordhash", b"secretname", b"secretarn", b"secretid")


def generic_secret(secret, match):
    """A quoted or end-of-line value that looks random: not a name, path, template or placeholder."""
    name = match.group("name").lower().replace(b"_", b"").replace(b"-", b"").replace(b".", b"")
    if name.endswith(NOT_SECRET_NAMES) or _UUID.match(secret):
        return False  # ChangeToken: "<uuid>", NextToken: "<cursor>"
    if is_placeholder(secret) or entropy(secret) < 3.5 or char_classes(secret) < 2 or secret in PUBLISHED:
        return False
    if not any(48 <= b <= 57 for b in secret):
        return False  # names and words: 'ConfigurationError', 'AUTH_HEADER'
    if secret[:1] in b"$%{[(<@/\\" or b"://" in secret:
        return False  # variables, templates, paths and URLs
    if _IDENTIFIER.match(secret) and secret.count(b"_") + secret.count(b".") >= 1:
        return False
    return not in_doctest(match)


# Rules ------------------------------------------------------------------------------

TRIGGER_REACH = 128

_START = rb"(?<![A-Za-z0-9_])"
_END = rb"(?![A-Za-z0-9_])"
_B64_LINES = rb"(?:[ \t]*[A-Za-z0-9+/=]{1,100}[ \t]*\r?\n){1,400}"
_B64_ESCAPED = rb"(?:[A-Za-z0-9+/=]{1,100}(?:\\r)?\\n){1,400}"
_KEY_KINDS = rb"(?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?"
_VALUE = rb"[A-Za-z0-9+/=_.~!@#$%^&*-]{10,200}"  # what a generic secret may be made of
_GITLAB_ROUTABLE = rb"(?:\.[0-9a-z]{2}\.[0-9a-z]{7,10})?"  # a routable token's version and checksum

RULES = (
    Rule("aws-access-key-id", "AWS access key ID", (b"akia", b"asia", b"abia", b"acca"),
         rb"(?<![A-Za-z0-9])((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?![A-Za-z0-9])", 20, aws_key_id),
    Rule("aws-secret-access-key", "AWS secret access key",
         (b"secret", b"akia", b"asia"),
         rb"(?:(?i:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key|aws_?secret)[\"']?"
         rb"|(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z2-7]{16}[\"']?)"
         rb"[ \t]{0,4}(?::|=>|=|,|\t)[ \t]{0,4}[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", 120, aws_secret_key),
    Rule("gcp-service-account-key", "GCP service account private key", (b'"private_key"',),
         rb"\"private_key\"[ \t]{0,4}:[ \t]{0,4}\"(-----BEGIN (?:RSA )?PRIVATE KEY-----(?:\\r)?\\n"
         + _B64_ESCAPED + rb"-----END (?:RSA )?PRIVATE KEY-----(?:\\r)?(?:\\n)?)\"", 48000, private_key,
         trigger=rb"\"private_key\"[ \t]{0,4}:[ \t]{0,4}\"-----BEGIN (?:RSA )?PRIVATE KEY-----"),
    Rule("private-key", "Private key", (b"private key-----",),
         rb"(-----BEGIN (" + _KEY_KINDS + rb")PRIVATE KEY-----[ \t]*\r?\n"
         rb"(?:[A-Za-z-]{1,40}:[^\r\n]{0,200}\r?\n){0,4}(?:[ \t]*\r?\n)?" + _B64_LINES
         + rb"-----END \2PRIVATE KEY-----"
         rb"|-----BEGIN (" + _KEY_KINDS + rb")PRIVATE KEY-----(?:\\r)?\\n" + _B64_ESCAPED
         + rb"-----END \3PRIVATE KEY-----)", 48000, private_key,
         trigger=rb"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    Rule("gcp-api-key", "Google Cloud API key", (b"aiza",),
         rb"(?<![A-Za-z0-9_-])(AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])", 39, google_api_key),
    Rule("azure-storage-key", "Azure storage account key", (b"accountkey",),
         rb"(?i:AccountKey)[ \t]{0,2}=[ \t]{0,2}([A-Za-z0-9+/]{86}==)", 110, azure_key),
    Rule("azure-shared-access-key", "Azure shared access key (Service Bus, Event Hubs)", (b"sharedaccesskey",),
         rb"(?i:SharedAccessKey)[ \t]{0,2}=[ \t]{0,2}([A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)", 70, azure_key),
    Rule("azure-client-secret", "Azure AD client secret", (b"q~",),
         rb"(?<![A-Za-z0-9_~.-])([A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})(?![A-Za-z0-9_~.-])", 40,
         random_looking(3.5)),
    Rule("github-token", "GitHub token", (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"),
         _START + rb"(gh[pousr]_[A-Za-z0-9]{36})" + _END, 40, crc32_token),
    Rule("github-fine-grained-pat", "GitHub fine-grained personal access token", (b"github_pat_",),
         _START + rb"(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})" + _END, 93, random_looking(4.0, 3)),
    Rule("gitlab-pat", "GitLab personal access token", (b"glpat-",),
         rb"(?<![A-Za-z0-9_-])(glpat-[A-Za-z0-9_-]{20,300}" + _GITLAB_ROUTABLE + rb")(?![A-Za-z0-9_-])",
         330, gitlab_token),
    # The other prefixes of GitLab's token overview: OAuth application secret, deploy, runner
    # authentication and registration, CI/CD job, pipeline trigger, feed, incoming mail,
    # Kubernetes agent, workspace, SCIM and feature flags client tokens; and the legacy
    # runner registration token's GR1348941.
    Rule("gitlab-token", "GitLab token (deploy, runner, CI/CD job, trigger, feed, OAuth, agent, SCIM)",
         (b"gloas-", b"gldt-", b"glrt-", b"glrtr-", b"glcbt-", b"glptt-", b"glft-", b"glimt-", b"glagent-",
          b"glwt-", b"glsoat-", b"glffct-", b"gr1348941"),
         rb"(?<![A-Za-z0-9_-])((?:gl(?:oas|dt|rtr?|cbt|ptt|ft|imt|agent|wt|soat|ffct)-|GR1348941)"
         rb"[A-Za-z0-9_-]{20,300}" + _GITLAB_ROUTABLE + rb")(?![A-Za-z0-9_-])", 330, gitlab_token),
    Rule("slack-token", "Slack token", (b"xoxb-", b"xoxa-", b"xoxp-", b"xoxr-", b"xoxs-"),
         rb"(?<![A-Za-z0-9_-])(xox[baprs]-[0-9]{8,14}-[A-Za-z0-9-]{10,200})(?![A-Za-z0-9_-])", 220, slack_token),
    Rule("slack-webhook", "Slack incoming webhook URL", (b"hooks.slack.com",),
         rb"(https://hooks\.slack\.com/(?:services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{24}"
         rb"|(?:workflows|triggers)/T[A-Z0-9]{8,12}/[A-Za-z0-9]{8,20}/[0-9]{8,20}/[A-Za-z0-9]{24,40}))"
         rb"(?![A-Za-z0-9])", 200, slack_webhook),
    Rule("stripe-live-key", "Stripe live secret or restricted key", (b"sk_live_", b"rk_live_"),
         _START + rb"((?:sk|rk)_live_[A-Za-z0-9]{24,99})" + _END, 110, lambda s, m: looks_random(s[8:], 3.5)),
    Rule("npm-token", "npm access token", (b"npm_",),
         _START + rb"(npm_[A-Za-z0-9]{36})" + _END, 40, crc32_token),
    Rule("pypi-token", "PyPI upload token", (b"pypi-age",),
         rb"(?<![A-Za-z0-9_-])(pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,1000})(?![A-Za-z0-9_-])",
         1040, lambda s, m: entropy(s[26:]) >= 4.0),
    Rule("jwt", "JSON Web Token", (b"eyj",),
         rb"(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{8,2000}\.eyJ[A-Za-z0-9_-]{8,8000}\.[A-Za-z0-9_-]{16,2000})"
         rb"(?![A-Za-z0-9_.-])", 12010, jwt),
    Rule("url-password", "Password in a URL", (b"://",),
         rb"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,20}://(?P<user>[^\s:@/\"'<>`\\]{0,64}):"
         rb"([^\s:@/\"'<>`\\]{3,128})@(?P<host>[A-Za-z0-9][A-Za-z0-9.-]{0,253})", 480, url_password, (2,),
         anywhere=False),
    Rule("generic-secret", "Secret assigned to a password, secret, token or API key setting",
         (b"password", b"passwd", b"passphrase", b"pwd", b"secret", b"token", b"api_key", b"apikey",
          b"api-key", b"access_key", b"accesskey", b"access-key", b"auth_key", b"authkey", b"auth-key"),
         rb"(?i)(?<![A-Za-z0-9_.-])(?P<name>[A-Za-z0-9_.-]{0,40}?"
         rb"(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?key)"
         rb"(?:[_-]?key)?)"
         # name = "value", name: value (to the end of the line), 'name', 'value' (PHP define), <name>value<
         rb"(?:[\"']?[ \t]{0,4}(?:=|:=|:|=>)[ \t]{0,4}"
         rb"(?:([\"'])(" + _VALUE + rb")\2|(" + _VALUE + rb")(?=[ \t]{0,8}(?:\r?\n|$|\#)))"
         rb"|[\"'][ \t]{0,4},[ \t]{0,4}([\"'])(" + _VALUE + rb")\5"
         rb"|>(" + _VALUE + rb")</)", 320, generic_secret, (3, 4, 6, 7),
         anywhere=False),
)
