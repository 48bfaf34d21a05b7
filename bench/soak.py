"""Soak load for bench/soak: several clients at once, each mixing
caseworker matches, public reads and agency writes with If-Match, for a
bounded time and number of requests. Prints one JSON object: counts by kind
and status, and every acknowledged write (service id, the token it wrote).

Usage: soak.py BASE_URL CASEWORKER_KEY AGENCIES_JSON DURATION MAX_REQUESTS CLIENTS
AGENCIES_JSON: [{"key": ..., "services": [id, ...]}, ...]
"""

import collections
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request

base, caseworker, agencies_json, duration, max_requests, clients = sys.argv[1:7]
agencies = json.loads(agencies_json)
duration, max_requests, clients = float(duration), int(max_requests), int(clients)

lock = threading.Lock()
statuses = collections.Counter()
acknowledged = []  # (service id, token)
sent = 0
deadline = time.monotonic() + duration

# Points drawn around the directory's provinces (Lào Cai, Hà Nội, Điện Biên…).
POINTS = [(22.3363, 103.8438), (21.0285, 105.8542), (21.3856, 103.0169), (22.4856, 103.9707),
          (10.7769, 106.7009), (20.8449, 106.6881)]
NEEDS = ["health", "mental_health", "legal_aid", "vocational_training", "employment", "education",
         "social_assistance", "child_protection", "shelter", "financial_support", "safe_migration",
         "hotline"]
READS = ["/v1/services?per_page=20", "/v1/services?q=tro%20giup%20phap%20ly",
         "/v1/services?category=shelter&province=15", "/hsds/services?per_page=10",
         "/hsds/service_at_locations?per_page=10", "/v1/organizations?per_page=20",
         "/v1/categories", "/hsds/taxonomy_terms"]


def call(method, path, key=None, body=None, headers=None):
    request = urllib.request.Request(base + path, method=method)
    if key:
        request.add_header("Authorization", "Bearer " + key)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data=data, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()
    except Exception as error:  # noqa: BLE001 - every failure is counted, none kills a client
        return f"no answer: {error.__class__.__name__}", {}, b""


def take_slot():
    global sent
    with lock:
        if sent >= max_requests or time.monotonic() >= deadline:
            return False
        sent += 1
        return True


def record(kind, status):
    with lock:
        statuses[f"{kind} {status}"] += 1


def client(number):
    rng = random.Random(number)
    agency = agencies[number % len(agencies)]
    writes = 0
    while take_slot():
        roll = rng.random()
        if roll < 0.5:
            lat, lon = rng.choice(POINTS)
            body = {"lat": lat + rng.uniform(-0.3, 0.3), "lon": lon + rng.uniform(-0.3, 0.3),
                    "needs": rng.sample(NEEDS, rng.randint(1, 3))}
            status, _, _ = call("POST", "/v1/matches", caseworker, body)
            record("match", status)
        elif roll < 0.8:
            status, _, _ = call("GET", rng.choice(READS))
            record("public read", status)
        else:
            service = rng.choice(agency["services"])
            status, headers, _ = call("GET", f"/v1/services/{service}", agency["key"])
            if status == 200 and not headers.get("ETag"):
                status = "200 without ETag"
            record("agency read", status)
            if status != 200:
                continue
            writes += 1
            token = f"soak {number}-{writes}-{rng.getrandbits(32):08x}"
            status, _, _ = call("PATCH", f"/v1/services/{service}", agency["key"],
                                {"description": token}, {"If-Match": headers["ETag"]})
            record("agency write", status)
            if status == 200:
                with lock:
                    acknowledged.append((service, token))


crashed = []
threading.excepthook = lambda args: crashed.append(repr(args.exc_value))
threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
started = time.monotonic()
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
elapsed = time.monotonic() - started
print(json.dumps({"elapsed_s": round(elapsed, 1), "requests": sum(statuses.values()),
                  "statuses": dict(sorted(statuses.items())), "acknowledged": acknowledged,
                  "crashed_clients": crashed}))
