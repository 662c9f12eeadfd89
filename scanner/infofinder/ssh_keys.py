"""SSH keys read from files, fingerprinted the way `ssh-keygen -l` shows them.

A key's fingerprint is the SHA256 of its wire-format blob, base64 without padding; we
compute it here rather than running ssh-keygen once per key. `Key.describe(comment)`
gives ssh-keygen's line: "256 SHA256:... alice@host (ED25519)". For a certificate the
fingerprint is the certified key's, and the type is e.g. ED25519-CERT, as ssh-keygen.

Private keys: OpenSSH keys carry their public key unencrypted in the header, so even an
encrypted one can be fingerprinted (its comment is encrypted, though). PEM/PKCS#8 keys
need the `cryptography` package, and an encrypted PEM key cannot be read at all.
"""

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

# Wire name -> (ssh-keygen's type name, number of public fields in the blob after the name).
PLAIN_TYPES = {
    "ssh-rsa": ("RSA", 2),
    "ssh-dss": ("DSA", 4),
    "ecdsa-sha2-nistp256": ("ECDSA", 2),
    "ecdsa-sha2-nistp384": ("ECDSA", 2),
    "ecdsa-sha2-nistp521": ("ECDSA", 2),
    "ssh-ed25519": ("ED25519", 1),
    "sk-ecdsa-sha2-nistp256@openssh.com": ("ECDSA-SK", 3),
    "sk-ssh-ed25519@openssh.com": ("ED25519-SK", 2),
}
CERT_SUFFIX = "-cert-v01@openssh.com"
CERT_TYPES = {(name.removesuffix("@openssh.com") + CERT_SUFFIX): name for name in PLAIN_TYPES}
KEY_TYPES = set(PLAIN_TYPES) | set(CERT_TYPES)

# Fields after the key type in the private section of an OpenSSH key: s = string, b = byte.
PRIVATE_FIELDS = {"ssh-rsa": "ssssss", "ssh-dss": "sssss", "ssh-ed25519": "ss",
                  "ecdsa-sha2-nistp256": "sss", "ecdsa-sha2-nistp384": "sss", "ecdsa-sha2-nistp521": "sss",
                  "sk-ecdsa-sha2-nistp256@openssh.com": "sssbss", "sk-ssh-ed25519@openssh.com": "ssbss"}

PRIVATE_HEADER = re.compile(rb"\s*-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----")
OPENSSH_MAGIC = b"openssh-key-v1\0"


class Encrypted(ValueError):
    """A private key whose public half cannot be read without the passphrase."""


@dataclass(frozen=True)
class Key:
    blob: bytes      # the plain public key blob (for a certificate: the certified key)
    type_name: str   # ssh-keygen's name: RSA, ED25519, ECDSA-CERT, ...
    bits: int

    @property
    def fingerprint(self):
        return "SHA256:" + base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")

    def describe(self, comment):
        """ssh-keygen -l's line for this key."""
        return f"{self.bits} {self.fingerprint} {comment or 'no comment'} ({self.type_name})"


class _Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, size):
        if size < 0 or self.at + size > len(self.data):
            raise ValueError("truncated key data")
        chunk = self.data[self.at:self.at + size]
        self.at += size
        return chunk

    def uint32(self):
        return struct.unpack(">I", self.take(4))[0]

    def string(self):
        return self.take(self.uint32())

    def done(self):
        return self.at == len(self.data)


def _pack(field):
    return struct.pack(">I", len(field)) + field


def parse_blob(blob):
    """The Key of a wire-format public key or certificate blob; ValueError if it is not one."""
    reader = _Reader(blob)
    name = reader.string().decode("ascii", "replace")
    if name in PLAIN_TYPES:
        type_name, count = PLAIN_TYPES[name]
        fields = [reader.string() for _ in range(count)]
        if not reader.done():
            raise ValueError("trailing data after the key")
        return Key(blob, type_name, _bits(name, fields))
    if name in CERT_TYPES:
        base = CERT_TYPES[name]
        type_name, count = PLAIN_TYPES[base]
        reader.string()  # the certificate's nonce
        fields = [reader.string() for _ in range(count)]
        plain = _pack(base.encode()) + b"".join(_pack(field) for field in fields)
        return Key(plain, type_name + "-CERT", _bits(base, fields))
    raise ValueError(f"unknown key type {name[:60]!r}")


def _bits(name, fields):
    if name == "ssh-rsa":
        return int.from_bytes(fields[1], "big").bit_length()  # the modulus n
    if name == "ssh-dss":
        return int.from_bytes(fields[0], "big").bit_length()  # the prime p
    if name.startswith("ecdsa-sha2-nistp"):
        return int(name.removeprefix("ecdsa-sha2-nistp"))
    return 256  # ed25519 and the security-key types


def parse_public(text):
    """(Key, comment) from "type base64 [comment]"; ValueError if malformed."""
    parts = text.split(None, 2)
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise ValueError("not a public key line")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("key is not valid base64") from None
    if _Reader(blob).string() != parts[0].encode():  # ssh-keygen refuses a name that lies about the blob
        raise ValueError("key type does not match its blob")
    return parse_blob(blob), (parts[2].strip() if len(parts) > 2 else "")


def parse_authorized_key(line):
    """(Key, comment) from an authorized_keys line, options skipped; None for blank and comment lines."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    first = line.split(None, 1)[0]
    if first not in KEY_TYPES:
        line = _skip_options(line)
    return parse_public(line)


def _skip_options(line):
    """The rest of the line after the leading options, which end at whitespace outside double quotes."""
    quoted = escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            return line[index:].strip()
    raise ValueError("options with no key after them")


def parse_known_host(line):
    """(Key, "[@marker ]hostnames") from a known_hosts line; None for blank and comment lines."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    marker = ""
    if line.startswith("@"):
        marker, _, line = line.partition(" ")
        if marker not in ("@cert-authority", "@revoked"):
            raise ValueError(f"unknown marker {marker[:40]!r}")
        marker += " "
        line = line.strip()
    hosts, _, rest = line.partition(" ")
    key, _ = parse_public(rest.strip())  # known_hosts shows the hosts, not a trailing comment
    return key, marker + hosts


def is_private_key(data):
    return PRIVATE_HEADER.match(data) is not None


def parse_private(data):
    """(Key, comment or None) of a private key file; Encrypted or ValueError when unreadable."""
    match = PRIVATE_HEADER.match(data)
    if match is None:
        raise ValueError("not a private key")
    label = match.group(1).decode()
    end = data.find(b"-----END ", match.end())
    body = data[match.end():end if end >= 0 else len(data)]
    if label == "OPENSSH ":
        return _parse_openssh(body)
    return _parse_pem(data[match.start():], label, body)


def _parse_openssh(body):
    try:
        raw = base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("OpenSSH key is not valid base64") from None
    if not raw.startswith(OPENSSH_MAGIC):
        raise ValueError("not an openssh-key-v1 key")
    reader = _Reader(raw[len(OPENSSH_MAGIC):])
    cipher = reader.string()
    reader.string()  # kdf name
    reader.string()  # kdf options
    if reader.uint32() < 1:
        raise ValueError("OpenSSH key file holds no key")
    key = parse_blob(reader.string())
    comment = _openssh_comment(reader.string()) if cipher == b"none" else None
    return key, comment


def _openssh_comment(private):
    """The comment stored after an unencrypted key's private fields, or None if we cannot reach it."""
    reader = _Reader(private)
    try:
        reader.take(8)  # two check integers
        spec = PRIVATE_FIELDS.get(reader.string().decode("ascii", "replace"))
        if spec is None:  # a certificate or an unknown type: leave the comment out
            return None
        for kind in spec:
            reader.take(1) if kind == "b" else reader.string()
        return reader.string().decode("utf-8", "replace")
    except ValueError:
        return None


def _parse_pem(block, label, body):
    if label == "ENCRYPTED " or b"ENCRYPTED" in body[:200]:  # PKCS#8 encrypted, or Proc-Type: 4,ENCRYPTED
        raise Encrypted("the key is encrypted")
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise ValueError("PEM private keys need the cryptography package") from None
    try:
        private = serialization.load_pem_private_key(block, password=None)
        line = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                 serialization.PublicFormat.OpenSSH)
    except TypeError:
        raise Encrypted("the key is encrypted") from None
    except Exception as error:  # noqa: BLE001 - cryptography raises several kinds for bad or unsupported keys
        raise ValueError(f"unreadable PEM key: {type(error).__name__}") from None
    key, _ = parse_public(line.decode())
    return key, None
