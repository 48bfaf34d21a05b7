#!/usr/bin/env python3
"""Seal and open Kết Nối referral hand-offs in Python, with PyNaCl.

A referral's hand-off (the person's contact details and a note) is sealed
by the caseworker's app to the receiving organisation's X25519 public key
with libsodium's sealed box (crypto_box_seal). The server stores only the
sealed box and shows it only to that organisation, whose secret key opens
it. This script does what `ketnoi referral seal|open` does, in the same
formats, so an app written in Python interoperates with it:

  - keys: 32 bytes in standard base64 with padding; the secret key file
    (from `ketnoi referral keygen`) holds it on one line;
  - sealed boxes: standard base64 with padding, as the API's `handoff`.

Needs PyNaCl (Debian/Ubuntu: apt-get install python3-nacl; or pip install
pynacl). Usage:

  echo -n "Chị Lan, 0912 345 678" | referral_handoff.py seal --public-key B64 > handoff.b64
  referral_handoff.py open --secret-key-file referral-secret.key < handoff.b64
"""

import argparse
import base64
import sys

from nacl.public import PrivateKey, PublicKey, SealedBox


def decode_key(text: str) -> bytes:
    # Strict standard base64 (validate=True refuses stray characters);
    # PyNaCl itself refuses a key that is not 32 bytes.
    return base64.b64decode(text.strip(), validate=True)


def seal(public_key_b64: str) -> None:
    # The plaintext is standard input as is (1 byte to 8 KiB for the API).
    plaintext = sys.stdin.buffer.read()
    sealed = SealedBox(PublicKey(decode_key(public_key_b64))).encrypt(plaintext)
    print(base64.b64encode(sealed).decode("ascii"))


def open_(secret_key_file: str) -> None:
    with open(secret_key_file, encoding="ascii") as file:
        secret = PrivateKey(decode_key(file.read()))
    sealed = base64.b64decode(sys.stdin.read().strip(), validate=True)
    # Raises nacl.exceptions.CryptoError for another key or a changed box.
    sys.stdout.buffer.write(SealedBox(secret).decrypt(sealed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sealing = commands.add_parser("seal", help="seal standard input, print base64")
    sealing.add_argument("--public-key", required=True, help="standard base64")
    opening = commands.add_parser("open", help="open base64 from standard input")
    opening.add_argument("--secret-key-file", required=True)
    args = parser.parse_args()
    if args.command == "seal":
        seal(args.public_key)
    else:
        open_(args.secret_key_file)


if __name__ == "__main__":
    main()
