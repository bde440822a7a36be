#!/usr/bin/env python3
"""Checks CTBus publication signatures from docs/design/end-to-end.md alone, with none of the
project's code: Python's `cryptography` (Ed25519) and hashlib (SHA-256).

Reads a JSON list of vectors on standard input. Each vector: envelope, payload (base64), the
disclosures (salt and value base64, path, index), signature (base64), public_key and key_id as
the registry and a signature name them (base64url without padding; 16 hex digits), and
"expect": true when the signature must verify, false when it must not. Prints one line per
vector that disagrees, then "ok N" when all N agree; exits 1 on any disagreement."""
import base64
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def b64(text):
    return base64.b64decode(text)


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def prefixed(data):
    return struct.pack(">I", len(data)) + data


def disclosure_digest(d):
    encoded = (b"CTBus-Disclosure-v1\x00" + prefixed(b64(d["salt"])) + prefixed(d["path"].encode("utf-8"))
               + struct.pack(">I", d["index"]) + prefixed(b64(d["value"])))
    return hashlib.sha256(encoded).digest()


def signed_bytes(envelope, payload, digests):
    ordered = sorted(digests)
    return (b"CTBus-Publication-v1\x00" + prefixed(envelope) + prefixed(payload)
            + struct.pack(">I", len(ordered)) + b"".join(ordered))


def verifies(vector):
    raw_key = b64url(vector["public_key"])
    if hashlib.sha256(raw_key).digest()[:8].hex() != vector["key_id"]:
        return False
    digests = [disclosure_digest(d) for d in vector["disclosures"]]
    message = signed_bytes(b64(vector["envelope"]), b64(vector["payload"]), digests)
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(b64(vector["signature"]), message)
        return True
    except InvalidSignature:
        return False


def main():
    vectors = json.load(sys.stdin)
    wrong = [v["name"] for v in vectors if verifies(v) != v["expect"]]
    for name in wrong:
        print(f"disagrees: {name}")
    if wrong:
        sys.exit(1)
    print(f"ok {len(vectors)}")


if __name__ == "__main__":
    main()
