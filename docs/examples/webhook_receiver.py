#!/usr/bin/env python3
"""Receive Kết Nối referral webhooks, verified the Standard Webhooks way.

Kết Nối announces each new referral and each change of a referral's status
to the organisation's webhook URL with a POST whose body is JSON:

  {"type": "referral.status_changed", "timestamp": "...",
   "data": {"referral_id": "...", "status": "accepted", "at": "..."}}

and three headers (https://www.standardwebhooks.com/):

  webhook-id         the delivery's id: the same on every retry and replay
  webhook-timestamp  when this attempt was sent, in unix seconds
  webhook-signature  "v1," + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}"));
                     possibly several, separated by spaces

The secret is the `webhook_secret` shown once when the webhook URL was set
(`PUT /v1/organizations/{id}/referral-endpoint`): `whsec_` followed by the
key in standard base64.

A receiver must:

  1. check the signature over the body exactly as received (before any
     JSON parsing), comparing in constant time;
  2. refuse a timestamp more than 5 minutes from its own clock (a replayed
     old request);
  3. answer 2xx quickly once it has stored the event (anything else, or no
     answer within 10 s, is retried: after 5 s, 30 s, 2 min, 10 min, 30 min,
     1 h, 2 h, 4 h and 8 h);
  4. de-duplicate by webhook-id: delivery is at-least-once, so the same id
     can arrive more than once, always with the same body.

This example does 1 and 2, answers 204 to a verified delivery (401 to
anything else), and appends each verified delivery to a file as one JSON
line {"id", "timestamp", "body"}; de-duplicating (4) is left to whoever
reads the file. Python's standard library only. Usage:

  KETNOI_WEBHOOK_SECRET=whsec_... webhook_receiver.py deliveries.jsonl --port 8000

It prints "listening on PORT" once ready (--port 0 picks a free port).
--status and --delay-ms make it answer verified deliveries with another
status, or slowly, to watch the retries.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 5 * 60
SECRET_PREFIX = "whsec_"


def decode_secret(secret: str) -> bytes:
    if secret.startswith(SECRET_PREFIX):
        secret = secret[len(SECRET_PREFIX):]
    return base64.b64decode(secret, validate=True)


def verify(key: bytes, headers, body: bytes, now: float) -> bool:
    """Whether the request is signed with `key` and recent (step 1 and 2)."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > TOLERANCE_SECONDS:
        return False
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for versioned in signatures.split(" "):
        version, _, signature = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", help="file to append verified deliveries to (JSON lines)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--secret-env",
        default="KETNOI_WEBHOOK_SECRET",
        help="environment variable holding the whsec_ secret",
    )
    parser.add_argument(
        "--status", type=int, default=204, help="answer to a verified delivery"
    )
    parser.add_argument(
        "--delay-ms", type=int, default=0, help="wait before answering a verified delivery"
    )
    args = parser.parse_args()
    secret = os.environ.get(args.secret_env)
    if not secret:
        sys.exit(f"set {args.secret_env} to the webhook secret (whsec_...)")
    key = decode_secret(secret)
    lock = threading.Lock()
    log = open(args.log, "a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            if not verify(key, self.headers, body, time.time()):
                self.answer(401)
                return
            line = {
                "id": self.headers["webhook-id"],
                "timestamp": int(self.headers["webhook-timestamp"]),
                "body": body.decode("utf-8"),
                "received": time.time(),
            }
            # Stored before answering: a sender that dies before reading
            # the answer sends the same id again (at-least-once).
            with lock:
                log.write(json.dumps(line) + "\n")
                log.flush()
            if args.delay_ms:
                time.sleep(args.delay_ms / 1000)
            self.answer(args.status)

        def answer(self, status: int) -> None:
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender went away; it will try again

        def log_message(self, format: str, *values) -> None:
            pass  # quiet: the deliveries are in the log file

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
