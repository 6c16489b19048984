#!/usr/bin/env python3
"""bench/registry.d/load.py BASE TOKEN URI DB SUBPROCESSORS AUDIT_RECORDS IDS_FILE
   bench/registry.d/load.py fresh BASE TOKEN N IDS_FILE

Brings the registry to SUBPROCESSORS subprocessors (created through the API, 16
at a time, so each is validated and audited like any client's; every fifth
inactive) and the audit trail to AUDIT_RECORDS records (the rest inserted
straight into the database as copies of a real record of other entities: history
that the request path must not read). Writes the subprocessor ids to IDS_FILE.
With "fresh": creates N more (version 1 each, for a PATCH run) and writes their ids."""
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pymongo

fresh = sys.argv[1] == "fresh"
if fresh:
    base, token, n_fresh, ids_file = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
else:
    base, token, uri, dbname = sys.argv[1:5]
    want_sp, want_audit, ids_file = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]


def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def body(i):
    return {
        "legal_name": f"Bench Processor {i:06d} GmbH",
        "hq_country": ["DE", "FR", "IE", "NL", "US"][i % 5],
        "category": ["hosting", "erp_billing", "rmm", "email", "monitoring"][i % 5],
        "role": "subprocessor",
        "status": "proposed" if i % 5 == 4 else "active",
        "purpose": {"de": "Betrieb der Plattform", "en": "Operating the platform"},
        "data_categories": ["master_contact", "contract_service"],
        "data_subjects": ["customers"],
        "locations": [{"country": "DE", "region": "eu-central", "role": "hosting"}],
        "website": f"https://p{i}.example.com/",
    }


if fresh:
    stamp = time.time_ns()
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda i: call("POST", "/v1/subprocessors", body(stamp % 10**9 * 100 + i))["id"],
                             range(n_fresh)))
    with open(ids_file, "w") as f:
        f.write("".join(i + "\n" for i in made))
    sys.exit(0)

db = pymongo.MongoClient(uri)[dbname]
have = db.subprocessors.count_documents({})
t0 = time.monotonic()
with ThreadPoolExecutor(16) as pool:
    list(pool.map(lambda i: call("POST", "/v1/subprocessors", body(i)), range(have, want_sp)))
print(f"loaded {want_sp - have} subprocessors through the API in {time.monotonic() - t0:.1f} s", file=sys.stderr)

template = db.audit.find_one({"entity_type": "subprocessor"})
n = db.audit.count_documents({})
t0 = time.monotonic()
batch = []
for k in range(n, want_audit):
    rec = dict(template, _id=f"au_hist{k:09d}", entity_id=f"sp_hist{k:09d}", entity_version=1,
               at=f"2025-{1 + k % 12:02d}-{1 + k % 28:02d}T10:00:00Z")
    batch.append(rec)
    if len(batch) == 1000:
        db.audit.insert_many(batch, ordered=False)
        batch = []
if batch:
    db.audit.insert_many(batch, ordered=False)
print(f"audit trail at {db.audit.count_documents({})} records ({time.monotonic() - t0:.1f} s)", file=sys.stderr)

with open(ids_file, "w") as f:
    for d in db.subprocessors.find({}, {"_id": 1}):
        f.write(d["_id"] + "\n")
