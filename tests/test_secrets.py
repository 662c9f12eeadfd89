"""The secrets family's own engine: every rule at exact positions, chunk boundaries, noise.

Keys and tokens are made here (random but well-formed: GitHub/npm checksums, real
private keys from `cryptography`, JWTs signed in the test), planted in a tree, and found
through the one shared walk: `walk(root, scanner.visitors())`, then `scanner.finish()`.
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import random
import shutil
import string
import time
from pathlib import Path

import pytest

from app.validation import schema_validator
from scanner.secrets import RULES, SecretsScanner
from scanner.secrets.rules import entropy
from scanner.walker import walk

RNG = random.Random(20240601)
ALNUM = string.ascii_letters + string.digits
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
#: Where this interpreter's packages are, whatever the venv's name or Python version (pytest is one).
SITE_PACKAGES = Path(pytest.__file__).parent.parent
#: GitLab's token prefixes besides glpat- (docs.gitlab.com, security/tokens: "Token prefixes").
GITLAB_PREFIXES = ("gloas-", "gldt-", "glrt-", "glrtr-", "glcbt-", "glptt-", "glft-", "glimt-", "glagent-", "glwt-",
                   "glsoat-", "glffct-")


# --- making credentials -----------------------------------------------------------------

def rand(alphabet, n):
    return "".join(RNG.choice(alphabet) for _ in range(n))


def checksummed(prefix):
    """A GitHub/npm style token: 30 random base62 characters and their CRC32 in 6 base62 digits."""
    body = rand(ALNUM, 30)
    value, digits = binascii.crc32(body.encode()), ""
    for _ in range(6):
        value, digit = divmod(value, 62)
        digits = BASE62[digit] + digits
    return prefix + body + digits


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(header, payload):
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
    signature = hmac.new(b"k" * 32, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


@pytest.fixture(scope="module")
def keys():
    """Real private keys in every PEM flavour and OpenSSH's format, made by `cryptography`."""
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

    def pem(key, fmt, encryption=None):
        return key.private_bytes(serialization.Encoding.PEM, fmt,
                                 encryption or serialization.NoEncryption()).decode()

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    trad, pkcs8 = serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8
    password = serialization.BestAvailableEncryption(b"correct horse")
    return {
        "rsa": pem(rsa_key, trad),
        "rsa-legacy-encrypted": pem(rsa_key, trad, password),
        "ec": pem(ec.generate_private_key(ec.SECP256R1()), trad),
        "dsa": pem(dsa.generate_private_key(key_size=2048), trad),
        "pkcs8": pem(ed25519.Ed25519PrivateKey.generate(), pkcs8),
        "encrypted-pkcs8": pem(rsa_key, pkcs8, password),
        "openssh": pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH),
        "gcp": pem(rsa_key, pkcs8),
    }


# --- a planted tree ---------------------------------------------------------------------

class Tree:
    """Files with secrets at known places; `expected` is what the scanner must report."""

    def __init__(self, root):
        self.root = root
        self.expected = set()  # (rule id, path, startLine, startColumn, endLine, endColumn)
        self.secrets = []      # which must never show up in the output, not even in part

    def write(self, path, text, planted=(), newline="\n", binary_prefix=b""):
        """Write `text` (its lines joined by `newline`); planted: [(rule id, secret)] it contains."""
        data = binary_prefix + text.replace("\n", newline).encode()
        full = os.path.join(self.root, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(data)
        for rule, secret in planted:
            encoded = secret.replace("\n", newline).encode()
            offset = data.index(encoded)
            last = offset + len(encoded) - len(secret[-1].encode())  # where the last character starts
            self.expected.add((rule, path, *position(data, offset), *position(data, last)))
            self.secrets.append(secret)
        return data


def position(data, offset):
    """(line, column) of data[offset], 1-based, columns in characters: the reference the engine must match."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, len(data[line_start:offset].decode("utf-8")) + 1


def scan(root, settings=None, chunk_size=1024**2, use_hyperscan=True):
    scanner = SecretsScanner(root, settings or {}, use_hyperscan=use_hyperscan)
    stats = walk(root, scanner.visitors(), chunk_size=chunk_size)
    assert "visitor-error" not in stats.skipped, stats.examples
    return scanner.finish()


def found(result):
    return {(s["description"].rsplit("(", 1)[1].rstrip(")"), s["filePath"], s["startLine"], s["startColumn"],
             s["endLine"], s["endColumn"]) for s in result.results}


@pytest.fixture(scope="module")
def planted(tmp_path_factory, keys):
    tree = Tree(str(tmp_path_factory.mktemp("planted")))
    key_id = "AKIA" + rand("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    aws_secret = rand(ALNUM + "/+", 37) + "a1Z"
    # CRLF line endings, an unquoted value, a key ID paired with its secret.
    tree.write("/srv/app/.env", "# deploy settings\nAWS_ACCESS_KEY_ID=" + key_id + "\nAWS_SECRET_ACCESS_KEY="
               + aws_secret + "\nDB_PASSWORD=" + (db_password := rand(ALNUM, 18) + "7q") + "\n",
               [("aws-access-key-id", key_id), ("aws-secret-access-key", aws_secret), ("generic-secret", db_password)],
               newline="\r\n")
    # A credentials CSV: key ID and secret side by side.
    csv_id, csv_secret = "AKIA" + rand("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16), rand(ALNUM, 39) + "/"
    tree.write("/home/deploy/credentials.csv", "User name,Access key ID,Secret access key\ndeploy," + csv_id + ","
               + csv_secret + "\n", [("aws-access-key-id", csv_id), ("aws-secret-access-key", csv_secret)])
    gcp_key = keys["gcp"].replace("\n", "\\n")
    tree.write("/srv/app/service-account.json", json.dumps({
        "type": "service_account", "project_id": "demo-project", "private_key_id": rand("0123456789abcdef", 40),
        "private_key": keys["gcp"], "client_email": "svc@demo-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token"}, indent=2) + "\n", [("gcp-service-account-key", gcp_key)])
    storage_key = rand(ALNUM + "+/", 86) + "=="
    client_secret = "aB3" + "8Q~" + rand(ALNUM + "_~.-", 34)
    bus_key = rand(ALNUM, 42) + "A="
    tree.write("/srv/app/appsettings.json", "{\n  \"Storage\": \"DefaultEndpointsProtocol=https;AccountName=demo;"
               "AccountKey=" + storage_key + ";EndpointSuffix=core.windows.net\",\n  \"Bus\": \"Endpoint=sb://demo."
               "servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=" + bus_key + "\",\n"
               "  \"AzureAd\": {\"ClientCredential\": \"" + client_secret + "\"}\n}\n",
               [("azure-storage-key", storage_key), ("azure-shared-access-key", bus_key),
                ("azure-client-secret", client_secret)])
    tokens = {
        "github-token": [checksummed(prefix) for prefix in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")],
        "github-fine-grained-pat": ["github_pat_" + rand(ALNUM, 22) + "_" + rand(ALNUM, 59)],
        "gitlab-pat": ["glpat-" + rand(ALNUM + "_-", 20),
                       "glpat-" + rand(ALNUM + "_-", 27) + "." + rand("0123456789abcdefghijklmnopqrstuvwxyz", 2) + "."
                       + rand("0123456789abcdefghijklmnopqrstuvwxyz", 7)],  # routable: version and checksum
        "gitlab-token": [prefix + rand(ALNUM + "_-", 20) for prefix in GITLAB_PREFIXES]
                        + ["glptt-" + rand("0123456789abcdef", 40), "glagent-" + rand(ALNUM + "_-", 50),
                           "gloas-" + rand(ALNUM + "_-", 64), "glcbt-64_" + rand(ALNUM + "_-", 20),
                           "GR1348941" + rand(ALNUM + "_-", 20)],
        "gcp-api-key": ["AIza" + rand(ALNUM + "_-", 35)],
        "slack-token": ["xoxb-" + rand(string.digits, 12) + "-" + rand(string.digits, 13) + "-" + rand(ALNUM, 24)],
        "slack-webhook": ["https://hooks.slack.com/services/T" + rand(string.ascii_uppercase + string.digits, 9)
                          + "/B" + rand(string.ascii_uppercase + string.digits, 9) + "/" + rand(ALNUM, 24)],
        "stripe-live-key": ["sk_live_" + rand(ALNUM, 24), "rk_live_" + rand(ALNUM, 30)],
        "npm-token": [checksummed("npm_")],
        "pypi-token": ["pypi-AgEIcHlwaS5vcmc" + rand(ALNUM + "_-", 80)],
    }
    lines, planted_tokens = ["# tokens", ""], []
    for rule, values in tokens.items():
        for value in values:
            lines.append(f"export {rule.upper().replace('-', '_')}_VALUE='{value}'")
            planted_tokens.append((rule, value))
    tree.write("/home/deploy/.bashrc", "\n".join(lines) + "\n", planted_tokens)
    token = make_jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "svc-backup", "iat": 1700000000, "exp": 1900000000})
    tree.write("/srv/app/settings.py", "import os\n\nSESSION_TOKEN = \"" + token + "\"\nAPI_KEY = \""
               + (api_key := rand(ALNUM, 22) + "4") + "\"\n",
               [("jwt", token), ("generic-secret", api_key)])
    for name in ("rsa", "rsa-legacy-encrypted", "ec", "dsa", "pkcs8", "encrypted-pkcs8"):
        tree.write(f"/etc/ssl/private/{name}.key", keys[name], [("private-key", keys[name].rstrip("\n"))])
    tree.write("/home/deploy/.ssh/id_ed25519", keys["openssh"], [("private-key", keys["openssh"].rstrip("\n"))])
    url_password = rand(ALNUM, 11) + "!"
    tree.write("/srv/app/config.yaml", "database:\n  url: postgres://appuser:" + url_password
               + "@db.internal.corp:5432/app\n", [("url-password", url_password)])
    # Where people keep credentials: PHP, XML and Java configuration, git, npm and pip credentials.
    php, xml, props = (rand(ALNUM, 16) + "9" for _ in range(3))
    tree.write("/var/www/html/wp-config.php", "<?php\ndefine('DB_NAME', 'wordpress');\ndefine('DB_PASSWORD', '"
               + php + "');\n", [("generic-secret", php)])
    tree.write("/root/.m2/settings.xml", "<settings><servers><server>\n  <id>releases</id>\n  <password>" + xml
               + "</password>\n</server></servers></settings>\n", [("generic-secret", xml)])
    tree.write("/opt/app/application.properties", "spring.datasource.url=jdbc:postgresql://db/app\n"
               "spring.datasource.password=" + props + "\n", [("generic-secret", props)])
    git_token, npm_token, pypi_token = checksummed("ghp_"), checksummed("npm_"), "pypi-AgEIcHlwaS5vcmc" + rand(ALNUM, 64)
    tree.write("/home/deploy/.git-credentials", "https://deploy:" + git_token + "@github.com\n",
               [("github-token", git_token)])  # one finding: the token rule wins over the URL rule
    tree.write("/home/deploy/.npmrc", "//registry.npmjs.org/:_authToken=" + npm_token + "\n", [("npm-token", npm_token)])
    tree.write("/home/deploy/.pypirc", "[pypi]\nusername = __token__\npassword = " + pypi_token + "\n",
               [("pypi-token", pypi_token)])
    tree.secrets += [php, xml, props, git_token, npm_token, pypi_token]
    # One finding each: the format rules win over the generic `apiKey:` and `token =` guesses.
    gcp_key, runner_token = "AIza" + rand(ALNUM + "_-", 35), "glrt-t1_" + rand(ALNUM + "_-", 20)
    tree.write("/srv/app/static/firebase.js", "const firebaseConfig = {\n  apiKey: \"" + gcp_key
               + "\",\n  projectId: \"demo-project\",\n};\n", [("gcp-api-key", gcp_key)])
    tree.write("/etc/gitlab-runner/config.toml", "concurrent = 4\n\n[[runners]]\n  name = \"build\"\n"
               "  url = \"https://gitlab.internal.corp\"\n  token = \"" + runner_token + "\"\n",
               [("gitlab-token", runner_token)])
    tree.secrets += [gcp_key, runner_token]
    # Characters before a secret are counted as characters, not bytes: 'ï', 'é' and '—' are 2, 2 and 3 bytes.
    utf8_token = checksummed("ghp_")
    data = tree.write("/srv/app/notes.txt", "first line\nnaïve café — token " + utf8_token + " end\n",
                      [("github-token", utf8_token)])
    assert position(data, data.index(utf8_token.encode())) == (2, 20)
    # A 300 kB line (more than one chunk) with a secret in the middle and one at its end.
    middle, tail = checksummed("ghp_"), "sk_live_" + rand(ALNUM, 32)
    tree.write("/srv/app/static/bundle.js", "var a=" + "x;" * 100000 + "t='" + middle + "';" + "y;" * 50000
               + "k='" + tail + "'\n", [("github-token", middle), ("stripe-live-key", tail)])
    tree.secrets += [value for values in tokens.values() for value in values]
    return tree


# --- what must not be found -------------------------------------------------------------

def bad_checksum():
    token = checksummed("ghp_")
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def gcp_near_misses():
    body = rand(ALNUM + "_-", 34)
    return ("short = 'AIza" + body + "'\n"                         # one character too few
            "long = 'AIza" + body + "xy'\n"                        # one too many
            "inside = 'xAIza" + body + "z'\n"                      # part of a longer word
            "a = 'AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX'\n"
            "b = 'AIza" + "Sy-your-google-api-key-here".ljust(35, "0") + "'\n"
            "c = 'AIza" + "SyDUMMY_API_KEY_FOR_TESTS".ljust(35, "0") + "'\n"
            "d = 'AIzaSyDnacJHrKma0048b13sh8cgxNUwulubmJM'\n")    # gsutil's own, shipped in the Cloud SDK


def gitlab_near_misses():
    return ("a = glpat-xxxxxxxxxxxxxxxxxxxx\nb = glrt-" + rand(ALNUM, 19) + "\n"   # placeholder; too short
            "c = gldt-aaaaaaaaaaaaaaaaaaaaaaaa\nd = glptt-0000000000000000000000000000000000000000\n"
            "e = glrt-REPLACE_WITH_YOUR_RUNNER_TOKEN\nf = my-glft-" + rand(ALNUM, 20) + "\n"
            "g = glxyz-" + rand(ALNUM, 20) + "\nh = GR1348941_your_registration_token\n")


NEGATIVES = {
    "gcp-near-misses": gcp_near_misses(),
    "gitlab-near-misses": gitlab_near_misses(),
    # Docstrings: made-up credentials under a `>>>` prompt, the OAuth RFCs' example tokens.
    "doctest-output": ">>> session.fetch_request_token(request_token_url)\n{\n    'oauth_token': 'kq93mdl20fj3k',\n"
                      "    'oauth_token_secret': 'pwq0dkx82mf74',\n}\n>>> engine = connect('postgres://svc:"
                      "Rk83fj2LqT@db.internal.corp/app')\n",
    "rfc-examples": "HTTP/1.1 200 OK\n\n{\"access_token\":\"2YotnFZFEjr1zCsicMWpAA\",\n"
                    " \"refresh_token\":\"tGzv3JOkF0XG5Qx2TlKWIA\"}\n"
                    "Authorization: OAuth oauth_consumer_key=\"0685bd9184jfhq22\", oauth_token=\"ad180jjd733klru7\"\n",
    "aws-docs": "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    "aws-key-id-alone": "key = AKIA" + "QWERTYUIOPASDFGH" + "\n",
    "github-bad-checksum": "token: " + bad_checksum() + "\n",
    "github-placeholder": "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    "url-placeholders": "a = 'postgres://user:password@localhost/db'\nb = 'https://${USER}:${PASS}@host.example/'\n"
                        "c = 'redis://:changeme@cache:6379'\nd = 'postgresql://scott:tiger@localhost/test'\n"
                        "e = 'amqp://guest:guest@127.0.0.1:5672'\nf = 'https://bob:{password}@example.com'\n"
                        "g = 'mysql://root:%s@db/app' % pw\nh = 'ftp://anonymous:<password>@ftp.example.org'\n"
                        "i = 'a uri like dotenv://:key_1234@dotenvx.com/vault/.env.vault'\n"
                        "j = 'http://%3Fam:pa%3Fsword@google.com'\nk = 'https://user:pa%3Fsword@host/'\n"
                        "l = 'mysql://admin:pa$$word@db.internal.corp/'\nm = 'https://deploy:p4ssw0rd@db.internal.corp/'\n",
    "generic-placeholders": "password = \"changeme\"\napi_key = \"<your-api-key>\"\ntoken = \"${TOKEN}\"\n"
                            "secret = \"%s\"\npassword = \"xxxxxxxxxxxxxxxx\"\napi_key = \"EXAMPLE_KEY_123456\"\n"
                            "SECRET_KEY = \"{{ secret_key }}\"\npassword: ************\n"
                            "token = \"YOUR_TOKEN_HERE_1234\"\nclient_secret = \"dummy-secret-value-42\"\n",
    "generic-not-values": "token = tokens[0]\npassword = get_password(user)\nsecret = os.environ['SECRET']\n"
                          "tokenizer_class = \"GPT2TokenizerFast\"\nsecret_name = \"prod/db/Password1\"\n"
                          "ChangeToken: \"abcd12f2-46da-4fdb-b8d5-fbd4c466928f\"\n"
                          "NextToken: \"1w41l63U0xa8q7smH50vCxyTQqdxo69O3EmK28Bi5PcROI4wI/EyIJg==\"\n"
                          "api_key = settings.API_KEY_2\npassword_field = 'password1'\n",
    "pem-truncated": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n...\n-----END RSA PRIVATE KEY-----\n",
    "pem-header-only": "if line.startswith('-----BEGIN OPENSSH PRIVATE KEY-----'):\n    pass\n",
    "jwt-io-sample": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0Ijox"
                     "NTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c\n",
    "jwt-alg-none": make_jwt({"alg": "none"}, {"sub": "x", "iat": 1}) + "\n",
    "jwt-no-claims": make_jwt({"alg": "HS256", "typ": "JWT"}, {"some": "payload"}) + "\n",
    "azurite": "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==\n",
    "slack-placeholder": "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\n",
    "long-strings": "sha = 'da39a3ee5e6b4b0d3255bfef95601890afd80709'\n"
                    "data = '" + base64.b64encode(bytes(range(256))).decode() + "'\n",
}


@pytest.mark.parametrize("name", sorted(NEGATIVES))
def test_placeholders_and_lookalikes_are_not_findings(tmp_path, name):
    Tree(str(tmp_path)).write(f"/srv/app/{name}.txt", NEGATIVES[name])
    assert scan(str(tmp_path)).results == []


def test_a_password_is_not_a_placeholder_for_containing_a_word_of_one(tmp_path):
    """Placeholder spellings of 'password' are matched whole: 'Swordfish2024!' is no 'pa%3Fsword'."""
    tree = Tree(str(tmp_path))
    tree.write("/srv/app/db.yaml", "url: https://bob:Swordfish2024!@db.internal.corp/\n",
               [("url-password", "Swordfish2024!")])
    assert found(scan(str(tmp_path))) == tree.expected


# --- the planted tree -------------------------------------------------------------------

def test_every_rule_is_found_at_exact_positions(planted):
    assert found(scan(planted.root)) == planted.expected
    assert {rule for rule, *_ in planted.expected} == {rule.id for rule in RULES}  # every rule is planted


def test_small_chunks_and_the_keyword_fallback_find_the_same(planted):
    assert found(scan(planted.root, chunk_size=4096)) == planted.expected
    assert found(scan(planted.root, chunk_size=4096, use_hyperscan=False)) == planted.expected


def test_exact_positions_by_hand(planted):
    by_path = {}
    for rule, path, *where in planted.expected:
        by_path.setdefault(path, []).append((rule, *where))
    # '# deploy settings' CRLF 'AWS_ACCESS_KEY_ID=' + 20 characters, then the secret after 22 characters.
    assert ("aws-access-key-id", 2, 19, 2, 38) in by_path["/srv/app/.env"]
    assert ("aws-secret-access-key", 3, 23, 3, 62) in by_path["/srv/app/.env"]
    # Two-byte and three-byte characters count as one column each.
    assert by_path["/srv/app/notes.txt"] == [("github-token", 2, 20, 2, 59)]
    # '  apiKey: "' is 11 characters; the key is 39.
    assert by_path["/srv/app/static/firebase.js"] == [("gcp-api-key", 2, 12, 2, 50)]
    assert by_path["/etc/gitlab-runner/config.toml"] == [("gitlab-token", 6, 12, 6, 39)]
    # The long line: 6 + 200000 + 3 characters before the token.
    assert ("github-token", 1, 200010, 1, 200049) in by_path["/srv/app/static/bundle.js"]
    # A PEM key spans its lines, from the B of BEGIN to the last dash of END.
    (rule, start_line, start_column, end_line, end_column), = by_path["/etc/ssl/private/rsa.key"]
    assert (rule, start_line, start_column, end_column) == ("private-key", 1, 1, 29)
    assert end_line == 27


def test_results_validate_and_never_hold_the_secret(planted):
    validator = schema_validator("Secret")
    result = scan(planted.root)
    for item in result.results:
        validator.validate(item)
        assert set(item) == {"description", "filePath", "startLine", "endLine", "startColumn", "endColumn",
                             "fingerprint"}
    output = json.dumps(result.results) + json.dumps(result.notes)
    for secret in planted.secrets:
        middle = secret[len(secret) // 2 - 10:len(secret) // 2 + 10]  # random, past any fixed prefix
        for i in range(len(middle) - 7):
            assert middle[i:i + 8] not in output


def test_fingerprints(tmp_path):
    token = checksummed("ghp_")
    tree = Tree(str(tmp_path))
    tree.write("/a/one.txt", token + "\n" + token + "\n")
    tree.write("/a/two.txt", token + "\n")
    results = scan(str(tmp_path)).results
    prints = {(s["filePath"], s["startLine"]): s["fingerprint"] for s in results}
    assert len(prints) == 3
    # The same secret in the same file: same fingerprint (its identity adds the columns); in another file: another.
    assert prints[("/a/one.txt", 1)] == prints[("/a/one.txt", 2)] != prints[("/a/two.txt", 1)]
    assert all(len(value) == 32 and token[4:12] not in value for value in prints.values())
    # Stable across scans; a deployment's own key gives other fingerprints.
    assert [s["fingerprint"] for s in scan(str(tmp_path)).results] == [s["fingerprint"] for s in results]
    keyed = scan(str(tmp_path), {"fingerprint_key": "site-key"}).results
    assert not {s["fingerprint"] for s in keyed} & set(prints.values())


# --- chunk boundaries ------------------------------------------------------------------

def test_dense_secrets_across_every_chunk_boundary(tmp_path):
    """Thousands of secrets in a 1 MB file: some straddle every chunk and buffer boundary."""
    tree = Tree(str(tmp_path))
    parts, planted = [], []
    for i in range(4000):
        token = checksummed("ghp_") if i % 2 else "sk_live_" + rand(ALNUM, 24 + i % 40)
        rule = "github-token" if i % 2 else "stripe-live-key"
        filler = "é" * (i % 7) + " " * RNG.randrange(1, 150)
        parts.append(filler + token + ("\n" if i % 3 == 0 else ";"))
        planted.append((rule, token))
    tree.write("/data/dense.txt", "".join(parts), planted)
    settings = {"max_findings_per_file": 10000}
    for chunk_size in (4096, 65536 + 7, 1024**2):
        assert found(scan(str(tmp_path), settings, chunk_size=chunk_size)) == tree.expected
    assert found(scan(str(tmp_path), settings, chunk_size=65536 + 7, use_hyperscan=False)) == tree.expected


def test_private_keys_back_to_back_across_chunk_boundaries(tmp_path, keys):
    """Half a megabyte of keys, one after another: every buffer boundary falls inside a multi-line match."""
    tree = Tree(str(tmp_path))
    flavours = [keys[name] for name in ("rsa", "rsa-legacy-encrypted", "ec", "dsa", "pkcs8", "encrypted-pkcs8",
                                        "openssh")]
    text = "".join(f"# key {i}\n" + flavours[i % len(flavours)] for i in range(300))
    data = tree.write("/root/keys.txt", text)
    start = 0
    for i in range(300):  # the same key text recurs, so find each occurrence in turn
        key = flavours[i % len(flavours)].rstrip("\n").encode()
        start = data.index(key, start)
        tree.expected.add(("private-key", "/root/keys.txt", *position(data, start),
                           *position(data, start + len(key) - 1)))
        start += len(key)
    settings = {"max_findings_per_file": 1000}
    for chunk_size in (4096, 65536 + 7, 1024**2):
        assert found(scan(str(tmp_path), settings, chunk_size=chunk_size)) == tree.expected


# --- what is skipped --------------------------------------------------------------------

def test_binary_files_are_skipped(tmp_path):
    token = checksummed("ghp_")
    tree = Tree(str(tmp_path))
    tree.write("/bin/tool", "\0\1\2 " + token + "\n")                       # NUL byte early on
    tree.write("/bin/elf", token + "\n", binary_prefix=b"\x7fELF")          # ELF magic, no NUL
    tree.write("/img/logo.png", token + "\n")                               # binary by extension
    tree.write("/backup/dump.gz", token + "\n")
    result = scan(str(tmp_path))
    assert result.results == []
    assert any("binary 2" in note and "binary-extension 2" in note for note in result.notes)


def test_noise_paths_and_package_trees(tmp_path):
    token = checksummed("ghp_")
    generic = "api_key = \"" + rand(ALNUM, 24) + "7\"\n"
    tree = Tree(str(tmp_path))
    tree.write("/usr/share/doc/tool/README", token + "\n")
    tree.write("/usr/lib/python3/dist-packages/lib/tests/fixture.py", token + "\n")
    tree.write("/usr/lib/google-cloud-sdk/third_party/urllib3/dummyserver/certs/server.key", token + "\n")
    tree.write("/etc/ssh/ssh_host_ed25519_key", token + "\n")
    # Inside third-party code only format rules run: the token is found, the generic guess is not.
    tree.write("/usr/lib/python3/dist-packages/lib/client.py", generic + "T = '" + token + "'\n",
               [("github-token", token)])
    tree.write("/opt/app/config.py", generic)
    assert {rule for rule, *_ in found(scan(str(tmp_path)))} == {"github-token", "generic-secret"}
    assert found(scan(str(tmp_path))) >= tree.expected
    # With the noise list off, everything is scanned.
    assert len(scan(str(tmp_path), {"skip_noise_paths": False}).results) == 7


def test_hostile_names_and_huge_files(tmp_path):
    token = checksummed("ghp_")
    names = os.fsencode(str(tmp_path)) + b"/names"
    os.makedirs(names)
    with open(names + b"/\xff\xfe-new\nline.txt", "wb") as handle:  # undecodable, with a newline
        handle.write(token.encode() + b"\n")
    with open(tmp_path / "sparse", "wb") as handle:
        handle.truncate(65 * 1024**2)  # past the default 64 MiB limit: skipped unread, and said so
    result = scan(str(tmp_path))
    assert [s["filePath"] for s in result.results] == ["/names/\\xff\\xfe-new\\nline.txt"]
    assert any("too-large 1" in note for note in result.notes)


def test_findings_per_file_are_capped(tmp_path):
    Tree(str(tmp_path)).write("/flood.txt", "".join(checksummed("ghp_") + "\n" for _ in range(150)))
    result = scan(str(tmp_path))
    assert len(result.results) == 100
    assert any("/flood.txt" in note for note in result.notes)


def best_scan_time(root, runs=2):
    """The fastest of `runs` scans of `root`, in seconds: the least disturbed by a busy machine."""
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        scan(root)
        timings.append(time.perf_counter() - began)
    return min(timings)


def test_a_megabyte_line_of_candidates_takes_as_long_as_its_lines(tmp_path):
    """A hostile 1 MiB line of `password="..."`: each candidate's look back for a `>>>` prompt is bounded.

    The baseline is the same assignments one per line. Looking back over the whole line made
    the one-line file quadratic: 2 minutes against half a second.
    """
    rng = random.Random(1)
    values = ["".join(rng.choice(ALNUM) for _ in range(15)) + "7" for _ in range(1000)]
    assignments = [f'password="{values[i % len(values)]}";' for i in range(40000)]
    one_line = Tree(str(tmp_path / "one-line")).write("/srv/app/bundle.js", " ".join(assignments))
    Tree(str(tmp_path / "lines")).write("/srv/app/bundle.js", "\n".join(assignments))
    assert len(one_line) > 1024**2 and one_line.count(b"\n") == 0
    assert len(scan(str(tmp_path / "one-line")).results) == 100  # every candidate is a finding, up to the cap
    baseline = best_scan_time(str(tmp_path / "lines"))
    assert best_scan_time(str(tmp_path / "one-line")) < 4 * baseline + 0.5


def test_a_prompt_hides_its_line_and_the_six_below(tmp_path):
    """Candidates on a long `>>>` line and up to six lines below it are a doctest's; the seventh is not."""
    tree = Tree(str(tmp_path))
    values = [rand(ALNUM, 15) + "7" for _ in range(102)]
    reported = values[101]
    tree.write("/srv/app/doc.py", ">>> " + " ".join(f'password="{value}";' for value in values[:100]) + "\n"
               + "\n" * 5 + f'password="{values[100]}"\npassword="{reported}"\n', [("generic-secret", reported)])
    assert found(scan(str(tmp_path))) == tree.expected


def test_entropy():
    assert entropy(b"aaaa") == 0
    assert entropy(b"abcd") == 2


# --- noise on real trees ----------------------------------------------------------------

def assert_no_findings(root, prefix=""):
    result = scan(root, {"path_prefix": prefix})
    assert result.results == [], "\n".join(f"{s['description']} {s['filePath']}:{s['startLine']}"
                                           for s in result.results)


def test_no_findings_in_the_venv_site_packages():
    assert_no_findings(str(SITE_PACKAGES))


def link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:  # another filesystem
        shutil.copy2(source, target)


def test_no_findings_in_ordinary_source_as_first_party_code(tmp_path):
    """Site-packages moved to where an application lives: every rule runs, the guessing ones too.

    The other noise tests scan third-party trees, where the generic-assignment and URL
    password rules are off; here the same tens of megabytes of ordinary Python (tests and
    docstrings included) sit at /srv/app, and two planted canaries prove those rules ran.
    """
    tree = Tree(str(tmp_path))
    shutil.copytree(SITE_PACKAGES, tmp_path / "srv" / "app", symlinks=True, copy_function=link_or_copy)
    password, api_key = rand(ALNUM, 14) + "5", rand(ALNUM, 22) + "8"
    tree.write("/srv/app/zz_canary/settings.py", "DATABASE_URL = 'postgres://app:" + password
               + "@db.internal.corp/app'\nAPI_KEY = '" + api_key + "'\n",
               [("url-password", password), ("generic-secret", api_key)])
    result = scan(str(tmp_path))
    assert found(result) == tree.expected, "\n".join(f"{s['description']} {s['filePath']}:{s['startLine']}"
                                                     for s in result.results)
    scanned = int(result.notes[0].split()[1])
    assert scanned > 30 * 1024**2, result.notes  # a large body of source really was read


def test_no_findings_in_a_debian_root(bookworm_root):
    assert_no_findings(str(bookworm_root))


@pytest.mark.skipif(not os.path.isdir("/usr/share"), reason="no /usr/share")
def test_no_findings_in_usr_share():
    assert_no_findings("/usr/share", "/usr/share")
