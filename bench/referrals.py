#!/usr/bin/env python3
"""Drives referral lifecycles through the API and times each request.

    bench/referrals.py ADDRESS CASEWORKER_KEY AGENCY_KEY SERVICE NEED HANDOFF COUNT CONNECTIONS

Each of CONNECTIONS threads (one keep-alive connection each) runs COUNT /
CONNECTIONS lifecycles: create (POST /v1/referrals with a sealed hand-off),
accept, then complete (person_withdrew) — each change with If-Match, as an
app does, so a read (GET) precedes it and is timed apart. Prints one line
per request kind: count, requests/s over the whole run, p50, p99 (ms).
"""

import http.client
import json
import statistics
import sys
import threading
import time


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    address, caseworker, agency, service, need, handoff = sys.argv[1:7]
    count, connections = int(sys.argv[7]), int(sys.argv[8])
    host, port = address.split(":")
    times = {"create": [], "read": [], "accept": [], "complete": []}
    lock = threading.Lock()
    failures = []

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)

        def call(kind, method, path, key, body=None, if_match=None):
            headers = {"authorization": f"Bearer {key}"}
            if body is not None:
                headers["content-type"] = "application/json"
            if if_match:
                headers["if-match"] = if_match
            started = time.perf_counter()
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=headers)
            response = conn.getresponse()
            data = response.read()
            elapsed = time.perf_counter() - started
            if response.status >= 300:
                failures.append(f"{method} {path}: {response.status} {data[:300]!r}")
                raise SystemExit(1)
            with lock:
                times[kind].append(elapsed)
            return response, json.loads(data)

        for _ in range(n):
            _, made = call("create", "POST", "/v1/referrals", caseworker,
                           {"service_id": service, "need": need, "consent": True,
                            "handoff": handoff})
            path = f"/v1/referrals/{made['id']}"
            for kind, change in [("accept", {"status": "accepted"}),
                                 ("complete", {"status": "completed",
                                               "reason": "person_withdrew"})]:
                read, _ = call("read", "GET", path, agency)
                call(kind, "POST", path + "/status", agency, change,
                     read.getheader("etag"))

    per = count // connections
    threads = [threading.Thread(target=worker, args=(per,)) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        sys.exit("bench: " + failures[0])
    for kind, values in times.items():
        print(f"{kind} {len(values)} {len(values) / wall:.1f} "
              f"{statistics.median(values) * 1000:.2f} {percentile(values, 99) * 1000:.2f}")


if __name__ == "__main__":
    main()
