"""The bytes of Schemas/PROTOCOL.md 7.2 and 5.5, written from the spec alone (none of CTBus's code),
shared by verify_vectors.py and verify_export.py: disclosure digests, signed bytes of a publication
and of a revocation, and key ids."""
import base64
import hashlib
import struct


def b64url(text):
    """Bytes from unpadded base64url (RFC 4648 section 5), as keys and exports write them."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def prefixed(data):
    return struct.pack(">I", len(data)) + data


def disclosure_digest(salt, path, index, value):
    """SHA-256 of a disclosure: domain, then salt, path, index and value, lengths in front."""
    encoded = (b"CTBus-Disclosure-v1\x00" + prefixed(salt) + prefixed(path.encode("utf-8"))
               + struct.pack(">I", index) + prefixed(value))
    return hashlib.sha256(encoded).digest()


def signed_bytes(envelope, payload, digests):
    ordered = sorted(digests)
    return (b"CTBus-Publication-v1\x00" + prefixed(envelope) + prefixed(payload)
            + struct.pack(">I", len(ordered)) + b"".join(ordered))


def revocation_bytes(message_id, revoked_by, reason, seconds, nanos):
    """What an originator signs to revoke a message (PROTOCOL.md 5.5)."""
    return (b"CTBus-Revocation-v1\x00" + prefixed(message_id.encode("utf-8")) + prefixed(revoked_by.encode("utf-8"))
            + prefixed(reason.encode("utf-8")) + struct.pack(">qI", seconds, nanos))


def batch_shape_ok(batch_id, leaf_count, index, blinder, path):
    """PROTOCOL.md 7.2, batch signatures: checked before anything is hashed."""
    height = 0 if leaf_count == 1 else (leaf_count - 1).bit_length()
    return (1 <= leaf_count <= 65536 and index < leaf_count and len(path) == height
            and len(batch_id) == 32 and len(blinder) == 32 and all(len(p) == 32 for p in path))


def batch_root(content, batch_id, leaf_count, index, blinder, path):
    """The root a batch path of the right shape leads to from a publication's content, the
    SHA-256 of its signed bytes (PROTOCOL.md 7.2, batch signatures)."""
    x = hashlib.sha256(b"\x00" + batch_id + struct.pack(">I", index) + blinder + content).digest()
    for level, sibling in enumerate(path):
        left, right = (sibling, x) if (index >> level) & 1 else (x, sibling)
        x = hashlib.sha256(b"\x01" + batch_id + bytes([level + 1]) + struct.pack(">I", index >> (level + 1)) + left + right).digest()
    return x


def batch_root_message(raw_key, batch_id, leaf_count, root):
    """What a publisher signs for a batch: context, key, batch id, leaf count, root."""
    return (b"CTBus-BatchRoot-v1\x00" + hashlib.sha256(raw_key).digest() + batch_id
            + struct.pack(">I", leaf_count) + root)


def key_id(raw_key):
    """The first 8 bytes of the SHA-256 of a 32-byte public key, lower-case hex."""
    return hashlib.sha256(raw_key).digest()[:8].hex()
