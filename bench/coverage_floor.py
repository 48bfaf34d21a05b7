"""Prints a pgbench script line: a coverage statement (read from stdin, as
bench/sql.rs prints it) with its bind parameters as literals.

    python3 bench/coverage_floor.py CATEGORY BAND < statement.sql

BAND is 1 for the band bench/coverage asks for (a girl under 18 being
identified), 0 for none. $2 (provinces) and $10 (wards) are NULL: every
ward of the country.
"""
import re
import sys

category, band = sys.argv[1], sys.argv[2] == "1"
values = {
    "1": f"'{category}'::text",
    "2": "NULL::text[]",
    "3": "100000::float8",
    "4": "0" if band else "NULL",
    "5": "17" if band else "NULL",
    "6": "'female'" if band else "NULL",
    "7": "'being_identified'" if band else "NULL",
    "8": "NULL",
    "9": "NULL",
    "10": "NULL::text[]",
}
sql = re.sub(r"\$(\d+)", lambda m: values[m.group(1)], sys.stdin.read())
print(" ".join(sql.split()) + ";")
