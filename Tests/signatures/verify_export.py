#!/usr/bin/env python3
"""Verifies the lines of `ctbus journal export` with none of the project's code: Python's
`cryptography` (Ed25519), hashlib (SHA-256) and the exact bytes of Schemas/PROTOCOL.md 7.2.

Usage: verify_export.py REGISTRY.json < export.jsonl

For each line: the originator's signingKey from the registry (the public key is all it needs),
the key id, the signature over the signed bytes, each disclosure's digest among the signed ones,
and the message id and originator the export shows against the signed envelope bytes (read with a
few lines of protobuf wire format). What it proves is the proof (the signed envelope and payload
bytes); the "message" JSON beside it is CTBus's rendering of them, which this script does not
decode. A line without a proof (journaled before signatures) cannot be verified and fails. Prints
"ok LINE MESSAGE-ID" or "FAIL LINE MESSAGE-ID: why" per line, and exits 1 when any line fails."""
import base64
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def prefixed(data):
    return struct.pack(">I", len(data)) + data


def disclosure_digest(d):
    encoded = (b"CTBus-Disclosure-v1\x00" + prefixed(b64url(d["salt"])) + prefixed(d["path"].encode("utf-8"))
               + struct.pack(">I", d["index"]) + prefixed(b64url(d["value"])))
    return hashlib.sha256(encoded).digest()


def signed_bytes(envelope, payload, digests):
    ordered = sorted(digests)
    return (b"CTBus-Publication-v1\x00" + prefixed(envelope) + prefixed(payload)
            + struct.pack(">I", len(ordered)) + b"".join(ordered))


def varint(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def string_fields(data):
    """The length-delimited fields of a protobuf message: {field number: last value}."""
    fields, at = {}, 0
    while at < len(data):
        key, at = varint(data, at)
        kind = key & 7
        if kind == 0:
            _, at = varint(data, at)
        elif kind == 1:
            at += 8
        elif kind == 5:
            at += 4
        elif kind == 2:
            length, at = varint(data, at)
            fields[key >> 3] = data[at:at + length]
            at += length
        else:
            raise ValueError("unexpected wire type %d" % kind)
    return fields


def check(line, keys):
    message, proof = line["message"], line["proof"]
    if proof is None:
        return "no proof (journaled before signatures)"
    key_text = keys.get(proof["originator"])
    if key_text is None:
        return "originator %s is not in the registry" % proof["originator"]
    raw_key = b64url(key_text)
    if hashlib.sha256(raw_key).digest()[:8].hex() != proof["keyId"]:
        return "signed with key %s, not the registry's key of %s" % (proof["keyId"], proof["originator"])
    envelope, payload = b64url(proof["envelope"]), b64url(proof["payload"])
    digests = [b64url(d) for d in proof["digests"]]
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(b64url(proof["signature"]), signed_bytes(envelope, payload, digests))
    except InvalidSignature:
        return "the signature does not verify"
    for disclosure in proof["disclosures"]:
        if disclosure_digest(disclosure) not in digests:
            return "disclosure %s matches no signed digest" % disclosure["path"]
    fields = string_fields(envelope)  # Envelope: 1 message_id, 4 originator
    if fields.get(1, b"").decode() != message["envelope"]["message_id"]:
        return "the exported message id is not the signed one"
    if fields.get(4, b"").decode() != proof["originator"] or message["envelope"].get("originator") != proof["originator"]:
        return "the exported originator is not the signed one"
    return None


def main():
    registry = json.load(open(sys.argv[1]))
    keys = {node["id"]: node["signingKey"] for node in registry["nodes"]}
    failed = 0
    for number, text in enumerate(sys.stdin, start=1):
        if not text.strip():
            continue
        line = json.loads(text)
        message_id = line["message"]["envelope"]["message_id"]
        try:
            problem = check(line, keys)
        except (ValueError, KeyError, IndexError, UnicodeDecodeError) as error:
            problem = "unreadable: %r" % error
        if problem:
            failed += 1
            print("FAIL %d %s: %s" % (number, message_id, problem))
        else:
            print("ok %d %s" % (number, message_id))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
