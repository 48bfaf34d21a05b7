#!/usr/bin/env python3
"""Writes N match requests as tab-separated values, reproducibly (fixed
seed): a point near one of the synthetic directory's centres (the same
weights and spreads as generate.sql, so most requests come from the big
cities), 1 to 3 distinct needs, and a profile with each field present or
not.

Columns: lon, lat, needs, radius_m, age, gender, victim_status, languages,
documents. Arrays are PostgreSQL array literals ({a,b}); a missing value is
the empty string (NULL for psql's COPY with NULL '').
"""

import math
import random
import sys

CENTRES = [  # lat, lon, weight, spread (degrees) — as in generate.sql
    (21.0285, 105.8542, 0.23, 0.12), (10.7769, 106.7009, 0.23, 0.12),
    (20.8449, 106.6881, 0.04, 0.10), (16.0544, 108.2022, 0.04, 0.08),
    (10.0452, 105.7469, 0.03, 0.10), (18.6796, 105.6813, 0.03, 0.15),
    (19.8067, 105.7852, 0.03, 0.15), (21.5942, 105.8482, 0.03, 0.15),
    (20.9500, 107.0800, 0.03, 0.15), (12.2388, 109.1967, 0.03, 0.12),
    (11.9404, 108.4583, 0.02, 0.12), (16.4637, 107.5909, 0.02, 0.10),
    (13.9833, 108.0000, 0.02, 0.20), (12.6667, 108.0500, 0.02, 0.20),
    (10.3759, 105.4185, 0.02, 0.15), (22.4856, 103.9707, 0.015, 0.30),
    (21.7229, 104.9113, 0.015, 0.25), (21.3856, 103.0169, 0.01, 0.30),
    (22.3964, 103.4580, 0.008, 0.30), (21.8236, 105.2140, 0.01, 0.25),
    (22.8233, 104.9836, 0.008, 0.30), (21.3256, 103.9188, 0.01, 0.30),
    (22.6657, 106.2570, 0.008, 0.25), (21.8537, 106.7615, 0.008, 0.25),
    (15.1205, 108.7923, 0.02, 0.15), (10.9574, 106.8427, 0.03, 0.12),
    (21.1861, 106.0763, 0.02, 0.10), (9.1769, 105.1524, 0.015, 0.15),
]
CATEGORIES = ["health", "mental_health", "legal_aid", "vocational_training", "employment",
              "education", "social_assistance", "child_protection", "shelter",
              "financial_support", "safe_migration", "hotline"]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rng = random.Random(20261128)
    weights = [c[2] for c in CENTRES]
    out = sys.stdout
    for _ in range(count):
        lat, lon, _, spread = rng.choices(CENTRES, weights)[0]
        lat += rng.gauss(0, spread)
        lon += rng.gauss(0, spread)
        needs = rng.sample(CATEGORIES, rng.choice([1, 2, 3]))
        age = str(rng.randint(10, 60)) if rng.random() < 0.7 else ""
        gender = rng.choice(["female", "male"]) if rng.random() < 0.7 else ""
        status = rng.choice(["identified", "being_identified"]) if rng.random() < 0.5 else ""
        languages = "{vi}" if rng.random() < 0.6 else ("{vi,hnj}" if rng.random() < 0.5 else "")
        documents = "{national_id}" if rng.random() < 0.3 else ""
        out.write("\t".join([f"{lon:.5f}", f"{lat:.5f}", "{" + ",".join(needs) + "}", "50000",
                             age, gender, status, languages, documents]) + "\n")


if __name__ == "__main__":
    main()
