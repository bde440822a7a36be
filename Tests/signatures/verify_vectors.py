#!/usr/bin/env python3
"""Checks CTBus publication signatures from Schemas/PROTOCOL.md 7.2 and 5.5 alone, with none of the
project's code: Python's `cryptography` (Ed25519) and hashlib (SHA-256).

Reads a JSON list of vectors on standard input. Each vector: envelope, payload (base64), the
disclosures (salt and value base64, path, index), signature (base64), public_key and key_id as
the registry and a signature name them (base64url without padding; 16 hex digits), and
"expect": true when the signature must verify, false when it must not. A vector of "kind"
"revocation" carries message_id, revoked_by, reason, seconds and nanos instead of the envelope,
payload and disclosures (PROTOCOL.md 5.5). Prints one line per
vector that disagrees, then "ok N" when all N agree; exits 1 on any disagreement."""
import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from signed_bytes import b64url, disclosure_digest, key_id, revocation_bytes, signed_bytes


def b64(text):
    return base64.b64decode(text)


def verifies(vector):
    raw_key = b64url(vector["public_key"])
    if key_id(raw_key) != vector["key_id"]:
        return False
    if vector.get("kind") == "revocation":
        message = revocation_bytes(vector["message_id"], vector["revoked_by"], vector["reason"], vector["seconds"], vector["nanos"])
    else:
        digests = [disclosure_digest(b64(d["salt"]), d["path"], d["index"], b64(d["value"])) for d in vector["disclosures"]]
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
