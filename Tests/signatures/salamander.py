#!/usr/bin/env python3
"""One ChaCha20-Poly1305 ciphertext that opens, with a valid tag, under two keys (the
"invisible salamanders" of non-committing AEADs; Len, Grubbs and Ristenpart, "Partitioning
Oracle Attacks", USENIX Security 2021). Written from RFC 8439 alone, with Python's
`cryptography` for the ChaCha20 block function.

Reads the associated data (hex) on standard input; prints JSON: key1, key2, ciphertext (nonce,
ciphertext and tag, as the bus's SealedBox holds them), all hex."""
import json
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

P = (1 << 130) - 5


def keystream(key, nonce, counter, length):
    cipher = Cipher(algorithms.ChaCha20(key, struct.pack("<I", counter) + nonce), mode=None)
    return cipher.encryptor().update(bytes(length))


def poly_key(key, nonce):
    block = keystream(key, nonce, 0, 32)
    r = int.from_bytes(block[:16], "little") & 0x0ffffffc0ffffffc0ffffffc0fffffff
    return r, int.from_bytes(block[16:], "little")


def blocks(aad, ciphertext):
    """The Poly1305 input of RFC 8439 2.8 as numbers, each 16-byte block with its 2^128 bit."""
    def padded(data):
        return data + bytes(-len(data) % 16)
    data = padded(aad) + padded(ciphertext) + struct.pack("<QQ", len(aad), len(ciphertext))
    return [int.from_bytes(data[i:i + 16], "little") + (1 << 128) for i in range(0, len(data), 16)]


def accumulate(numbers, r):
    acc = 0
    for n in numbers:
        acc = (acc + n) * r % P
    return acc


def main():
    aad = bytes.fromhex(sys.stdin.read().strip())
    count = 4                                  # ciphertext blocks; the last one is solved for
    while True:
        key1, key2, nonce = os.urandom(32), os.urandom(32), os.urandom(12)
        (r1, s1), (r2, s2) = poly_key(key1, nonce), poly_key(key2, nonce)
        ciphertext = bytearray(os.urandom(16 * count))
        numbers = blocks(aad, bytes(ciphertext))
        free = (len(aad) + 15) // 16 + count - 1     # index of the solved block
        power = len(numbers) - free                  # its coefficient is r^power
        numbers[free] = 0
        a1, a2 = accumulate(numbers, r1), accumulate(numbers, r2)
        slope = (pow(r1, power, P) - pow(r2, power, P)) % P
        target = (s2 - s1) % (1 << 128)
        for shift in range(-4, 4):
            wanted = target + shift * (1 << 128)
            x = ((wanted - (a1 - a2)) * pow(slope, -1, P) - (1 << 128)) % P
            if x >= 1 << 128:
                continue
            ciphertext[16 * (count - 1):] = x.to_bytes(16, "little")
            final = blocks(aad, bytes(ciphertext))
            tag1 = (accumulate(final, r1) + s1) % (1 << 128)
            tag2 = (accumulate(final, r2) + s2) % (1 << 128)
            if tag1 == tag2:
                print(json.dumps({"key1": key1.hex(), "key2": key2.hex(),
                                  "ciphertext": (nonce + bytes(ciphertext) + tag1.to_bytes(16, "little")).hex()}))
                return


if __name__ == "__main__":
    main()
