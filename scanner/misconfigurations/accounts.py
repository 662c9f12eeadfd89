"""Account checks: /etc/passwd, /etc/shadow, /etc/group and /etc/gshadow, contents and modes."""

from scanner.misconfigurations.common import HIGH, MEDIUM, Check, at, mode_text
from scanner.walker import WholeFileVisitor

CATEGORY = "accounts"
UID_ZERO = Check("ACC-001", CATEGORY, HIGH, "An account other than root has user ID 0, so it is root under "
                 "another name (a common backdoor).", "Give the account its own UID, or remove it.")
EMPTY_PASSWORD = Check("ACC-002", CATEGORY, HIGH, "An account has an empty password: anyone may log in as it "
                       "wherever empty passwords are accepted.", "Set a password (`passwd NAME`) or lock the "
                       "account (`passwd -l NAME`).")
WRITABLE = Check("ACC-003", CATEGORY, HIGH, "An account database can be changed by users other than its owner, "
                 "who can then make themselves root.", "`chmod 644 /etc/passwd /etc/group`, "
                 "`chmod 640 /etc/shadow /etc/gshadow`.")
READABLE_HASHES = Check("ACC-004", CATEGORY, HIGH, "Password hashes can be read by every user, who can then crack "
                        "them offline.", "`chmod 640 /etc/shadow /etc/gshadow` (owner root, group shadow).")
WEAK_HASH = Check("ACC-005", CATEGORY, MEDIUM, "A password is stored with an obsolete hash (DES crypt or MD5) that "
                  "is fast to crack.", "Set the password again with a modern hash (yescrypt or SHA-512, see "
                  "ENCRYPT_METHOD in /etc/login.defs).")

DATABASES = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow")
HASH_FILES = ("/etc/shadow", "/etc/gshadow")


class AccountChecks(WholeFileVisitor):
    name = "misconfigurations:accounts"
    max_file_size = 16 * 1024**2

    def __init__(self):
        self.findings = []

    def wants(self, entry):
        if entry.path not in DATABASES:
            return False
        self._check_mode(entry)
        return entry.path in ("/etc/passwd", "/etc/shadow")

    def _check_mode(self, entry):
        mode = f"mode {mode_text(entry.mode)}"
        if entry.mode & 0o022:
            self.findings.append(WRITABLE.finding(entry.display_path, f"{entry.display_path} is writable by "
                                                  f"group or others ({mode})"))
        if entry.path in HASH_FILES and entry.mode & 0o004:
            self.findings.append(READABLE_HASHES.finding(entry.display_path, f"{entry.display_path} is "
                                                         f"readable by everyone ({mode})"))

    def handle(self, entry, data):
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            fields = line.split(":")
            if len(fields) < 2 or not fields[0] or line.startswith(("#", "+", "-")):  # NIS compat lines
                continue
            where = at(entry.display_path, number)
            if entry.path == "/etc/passwd":
                self._passwd(fields, where)
            else:
                self._shadow(fields, where)

    def _passwd(self, fields, where):
        name = fields[0]
        if len(fields) >= 3 and fields[2].strip() == "0" and name != "root":
            self.findings.append(UID_ZERO.finding(where, f"account {name} has UID 0"))
        if fields[1] == "":  # no 'x': the (empty) password is right here
            self.findings.append(EMPTY_PASSWORD.finding(where, f"account {name} has an empty password in "
                                                               "/etc/passwd"))

    def _shadow(self, fields, where):
        name, hashed = fields[0], fields[1]
        if hashed == "":
            self.findings.append(EMPTY_PASSWORD.finding(where, f"account {name} has an empty password"))
        elif hashed.startswith("$1$"):
            self.findings.append(WEAK_HASH.finding(where, f"account {name} has an MD5 password hash"))
        elif len(hashed) == 13 and not hashed.startswith(("!", "*", "$")):
            self.findings.append(WEAK_HASH.finding(where, f"account {name} has a DES password hash"))

    def results(self):
        return self.findings
