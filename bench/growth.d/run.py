#!/usr/bin/env python3
"""bench/growth.d/run.py BASE TOKEN URI DB SIZES AUDIT_SIZES — the body of bench/growth.

Grows one registry through the API to each size in SIZES (subprocessors; each with
an active DPA, every fifth also hosted in the US with an SCC transfer, every tenth
with a DPA that expires within 60 days) and times, at each size, single requests
one after another (median and max of up to --reps, at most --seconds per
operation): the compliance findings, the expiring report, filtered list pages
(first and a deep cursor page), a publication (snapshot build and diff of every
listed subprocessor after one change) and the public list that results (full
body, and the conditional GET that answers 304). Then grows the audit trail by
direct inserts (copies of a real record, time-ordered ids like the service's) to
each size in AUDIT_SIZES and times /v1/audit pages filtered by entity, by actor
and by time (`since` recent and old), ascending and descending.

Prints Markdown tables and the growth factor per tenfold."""
import argparse
import datetime as dt
import json
import math
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pymongo
import requests

ap = argparse.ArgumentParser()
ap.add_argument("base")
ap.add_argument("token")
ap.add_argument("uri")
ap.add_argument("db")
ap.add_argument("sizes")
ap.add_argument("audit_sizes")
ap.add_argument("--reps", type=int, default=15)
ap.add_argument("--seconds", type=float, default=6.0)
a = ap.parse_args()
sizes = [int(x) for x in a.sizes.split(",") if x]
audit_sizes = [int(x) for x in a.audit_sizes.split(",") if x]
db = pymongo.MongoClient(a.uri)[a.db]
H = {"Authorization": "Bearer " + a.token, "Content-Type": "application/json"}
local = __import__("threading").local()


def session():
    s = getattr(local, "s", None)
    if s is None:
        s = local.s = requests.Session()
        s.headers.update(H)
    return s


def call(method, path, body=None, expect=None, headers=None):
    r = session().request(method, a.base + path, data=json.dumps(body) if body is not None else None,
                          headers=headers, timeout=120)
    if expect and r.status_code not in expect:
        sys.exit(f"{method} {path}: {r.status_code} {r.text[:300]}")
    return r


def today(days=0):
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


def make_one(i):
    us = i % 5 == 0
    sp = call("POST", "/v1/subprocessors", {
        "legal_name": f"Growth Processor {i:06d} GmbH",
        "hq_country": "US" if us else ["DE", "FR", "IE", "NL"][i % 4],
        "category": ["hosting", "erp_billing", "rmm", "email", "monitoring"][i % 5],
        "role": "subprocessor",
        "status": "active",
        "purpose": {"de": "Betrieb der Plattform", "en": "Operating the platform"},
        "data_categories": ["master_contact", "contract_service"],
        "data_subjects": ["customers"],
        "locations": [{"country": "US" if us else "DE", "region": "r1", "role": "hosting"}],
        "website": f"https://p{i}.example.com/",
        "next_review_on": today(30 + i % 400),
    }, expect=(201,)).json()
    call("POST", "/v1/agreements", {
        "subprocessor_id": sp["id"], "type": "dpa", "title": f"AVV {i}", "status": "active",
        "signed_on": "2025-01-02", "expires_on": today(20 + i % 40) if i % 10 == 0 else today(800)},
        expect=(201,))
    if us:
        call("POST", "/v1/transfers", {
            "subprocessor_id": sp["id"], "destination_country": "US", "basis": "scc_2021",
            "scc_module": 3, "tia": {"performed_on": "2026-01-01", "risk": "low",
                                     "next_review_on": today(100 + i % 300)}}, expect=(201,))
    return sp["id"]


def grow(n):
    have = db.subprocessors.count_documents({})
    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(make_one, range(have, n)))
    return n - have, time.monotonic() - t0


def timed(fn):
    """median and max ms of up to --reps calls, at most --seconds in all"""
    times = []
    t_end = time.monotonic() + a.seconds
    while len(times) < a.reps and (not times or time.monotonic() < t_end):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times), len(times)


def get(path, expect=(200,), headers=None):
    return lambda: call("GET", path, expect=expect, headers=headers)


results = {}  # (table, op) -> {size: median_ms}
notes = {}


def record(table, op, size, fn, extra=None):
    med, mx, n = timed(fn)
    results.setdefault(table, {}).setdefault(op, {})[size] = (med, mx, n, extra)
    print(f"  {op:<55} {size:>8}: {med:9.2f} ms median, {mx:9.2f} max ({n} runs){'  ' + extra if extra else ''}",
          file=sys.stderr, flush=True)


pub_seq = [0]


def publish_once():
    """one change to a listed subprocessor, then time only the publication"""
    sp = db.subprocessors.find_one({"status": "active"}, {"_id": 1})
    pub_seq[0] += 1
    r = call("GET", f"/v1/subprocessors/{sp['_id']}", expect=(200,))
    call("PATCH", f"/v1/subprocessors/{sp['_id']}", {"trading_name": f"Renamed {pub_seq[0]}"},
         expect=(200,), headers={"If-Match": r.headers["ETag"], "Content-Type": "application/merge-patch+json"})
    t0 = time.perf_counter()
    call("POST", "/v1/publications", {"summary": {"de": "Änderung", "en": "Change"}, "override_notice": True,
                                      "override_reason": {"de": "Messung", "en": "Benchmark"}},
         expect=(201,))
    return (time.perf_counter() - t0) * 1000


for size in sizes:
    made, secs = grow(size)
    print(f"registry at {size} subprocessors (+{made} through the API in {secs:.0f} s)", file=sys.stderr)
    record("registry", "GET /v1/compliance/findings", size, get("/v1/compliance/findings"),
           f"{len(call('GET', '/v1/compliance/findings').json()['items'])} findings")
    record("registry", "GET /v1/compliance/findings?subprocessor_id=…", size,
           get("/v1/compliance/findings?subprocessor_id=" + db.subprocessors.find_one({}, {"_id": 1})["_id"]))
    record("registry", "GET /v1/reports/expiring?within_days=90", size, get("/v1/reports/expiring?within_days=90"),
           f"{len(call('GET', '/v1/reports/expiring?within_days=90').json()['items'])} dates")
    record("registry", "GET /v1/subprocessors?status=active&category=rmm&limit=50", size,
           get("/v1/subprocessors?status=active&category=rmm&limit=50"))
    record("registry", "GET /v1/subprocessors?hq_country=US&limit=50", size,
           get("/v1/subprocessors?hq_country=US&limit=50"))
    # a deep page: follow cursors to the middle of the collection once, then time that page
    path, hops = "/v1/subprocessors?limit=50", size // 100
    for _ in range(hops):
        nxt = call("GET", path).json().get("next_cursor")
        if not nxt:
            break
        path = "/v1/subprocessors?limit=50&cursor=" + nxt
    record("registry", "GET /v1/subprocessors?cursor=… (page in the middle)", size, get(path))
    record("registry", "GET /v1/agreements?status=active&limit=50", size, get("/v1/agreements?status=active&limit=50"))
    record("registry", "GET /v1/transfers?country=US&limit=50", size,
           get("/v1/transfers?country=US&limit=50"))
    pubs = [publish_once() for _ in range(3)]
    results.setdefault("registry", {}).setdefault("POST /v1/publications (snapshot and diff)", {})[size] = (
        statistics.median(pubs), max(pubs), len(pubs), None)
    print(f"  POST /v1/publications: {statistics.median(pubs):.1f} ms", file=sys.stderr)
    # the public list switches when the scheduler records the version as effective
    want = db.subprocessors.count_documents({"status": "active"})
    t_end = time.monotonic() + 30
    while time.monotonic() < t_end:
        body = requests.get(a.base + "/public/v1/subprocessors", timeout=60).json()
        if len(body["items"]) == want and any(i.get("trading_name") == f"Renamed {pub_seq[0]}" for i in body["items"]):
            break
        time.sleep(0.3)
    pub = requests.get(a.base + "/public/v1/subprocessors", timeout=60)
    kb = len(pub.content) / 1024
    etag = pub.headers.get("ETag")
    record("registry", "GET /public/v1/subprocessors (JSON, whole list)", size,
           lambda: requests.get(a.base + "/public/v1/subprocessors", timeout=60), f"{kb:.0f} KiB")
    record("registry", "GET /public/v1/subprocessors (If-None-Match → 304)", size,
           lambda: requests.get(a.base + "/public/v1/subprocessors", headers={"If-None-Match": etag}, timeout=60))
    record("registry", "GET /public/v1/subprocessors?format=csv", size,
           lambda: requests.get(a.base + "/public/v1/subprocessors", headers={"Accept": "text/csv"}, timeout=60))
    notes[size] = kb

# The audit trail, by direct inserts of copies of a real record.
template = db.audit.find_one({"entity_type": "subprocessor", "action": "create"})
some_sp = template["entity_id"]
actor = template["actor"]
base_ms = int(time.time() * 1000) - 400 * 86400 * 1000


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def hist_id(ms, k):
    """an id as service/util/util.c new_id makes them: 48 bits of milliseconds, 80 of
    randomness (here the record number), 26 base-32 digits"""
    v = (ms << 80) | k
    return "au_" + "".join(CROCKFORD[(v >> (5 * i)) & 31] for i in range(25, -1, -1))


for n_audit in audit_sizes:
    have = db.audit.count_documents({})
    t0 = time.monotonic()
    batch = []
    for k in range(have, n_audit):
        ms = base_ms + k * 20  # 10^6 records over about 5.5 hours, 400 days ago
        at = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        batch.append(dict(template, _id=hist_id(ms, k), entity_id=f"sp_hist{k % 50000:07d}", entity_version=1 + k // 50000,
                          actor=f"hist-actor-{k % 7}", at=at))
        if len(batch) == 2000:
            db.audit.insert_many(batch, ordered=False)
            batch = []
    if batch:
        db.audit.insert_many(batch, ordered=False)
    total = db.audit.count_documents({})
    print(f"audit trail at {total} records (+{total - have} in {time.monotonic() - t0:.0f} s)", file=sys.stderr)
    recent = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    record("audit", "GET /v1/audit?limit=50 (oldest first)", n_audit, get("/v1/audit?limit=50"))
    record("audit", "GET /v1/audit?order=desc&limit=50 (newest first)", n_audit, get("/v1/audit?order=desc&limit=50"))
    record("audit", "GET /v1/audit?entity_type=subprocessor&entity_id=… (a live entity)", n_audit,
           get(f"/v1/audit?entity_type=subprocessor&entity_id={some_sp}&limit=50"))
    record("audit", "GET /v1/audit?entity_id=… (a historical entity)", n_audit,
           get("/v1/audit?entity_id=sp_hist0000042&limit=50"))
    record("audit", "GET /v1/audit?actor=…&limit=50", n_audit, get(f"/v1/audit?actor={actor}&limit=50"))
    record("audit", "GET /v1/audit?since=<1 h ago>&limit=50", n_audit, get(f"/v1/audit?since={recent}&limit=50"))
    record("audit", "GET /v1/audit?since=<1 h ago>&order=desc&limit=50", n_audit,
           get(f"/v1/audit?since={recent}&order=desc&limit=50"))
    record("audit", "GET /v1/audit?since=2025-…&limit=50 (old: most records match)", n_audit,
           get("/v1/audit?since=2025-06-01T00:00:00Z&limit=50"))

for table, ops in results.items():
    cols = sizes if table == "registry" else audit_sizes
    print()
    print(f"| {'operation' if table == 'registry' else 'audit query'} | " + " | ".join(
        f"{c:,} {'subprocessors' if table == 'registry' else 'records'}" for c in cols) + " | growth per tenfold |")
    print("|---|" + "---|" * len(cols) + "---|")
    for op, by in ops.items():
        cells = []
        for c in cols:
            if c in by:
                med, mx, n, extra = by[c]
                cells.append(f"{med:.1f} (max {mx:.1f})" + (f", {extra}" if extra else ""))
            else:
                cells.append("—")
        have = [c for c in cols if c in by]
        if len(have) >= 2:
            f = (by[have[-1]][0] / max(by[have[0]][0], 0.01)) ** (1 / math.log10(have[-1] / have[0]))
            growth = f"×{f:.2f}"
        else:
            growth = "—"
        print(f"| {op} | " + " | ".join(cells) + f" | {growth} |")
print()
print("Times in ms (median of single requests one after another, max in brackets); growth per tenfold = "
      "(last / first) ^ (1 / decades).")
