#!/usr/bin/env python3
"""One round of the memory benchmark's workload against a running subreg
(standard library only, one keep-alive connection, like a client would).

    memory-workload.py BASE_URL TOKEN ROUND PUBLIC_REQUESTS [PUBLISH]

Per round: 40 subprocessors created, read, listed, patched (If-Match), an
agreement and a transfer for each of the first ten, the audit, findings and
expiring report read, a publication made (events go to the webhook sink), the
public list fetched PUBLIC_REQUESTS times in JSON (200 and 304) and once in
CSV, Atom and HTML, then everything created deleted again, so the database
ends each round as it began (heap growth between rounds is then not data).
Prints the number of requests sent. With SOAK_LATENCY_FILE set, appends one line
per request to that file: the wall-clock second it ended and its latency in ms.
"""
import http.client
import json
import os
import sys
import time
import urllib.parse

base, token, rnd, public_n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
publish = len(sys.argv) > 5 and sys.argv[5] == "1"
lat_file = open(os.environ["SOAK_LATENCY_FILE"], "a") if os.environ.get("SOAK_LATENCY_FILE") else None
url = urllib.parse.urlsplit(base)
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
sent = 0


def call(method, path, body=None, headers=None, auth=True, want=(200, 201, 204, 304)):
    global sent
    h = dict(headers or {})
    if auth:
        h["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/merge-patch+json" if method == "PATCH" else "application/json"
    t0 = time.perf_counter()
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    payload = r.read()
    if lat_file:
        lat_file.write(f"{time.time():.3f} {(time.perf_counter() - t0) * 1000:.3f}\n")
    sent += 1
    if r.status not in want:
        sys.exit(f"{method} {path}: {r.status} {payload[:300]!r}")
    return r, (json.loads(payload) if payload and r.getheader("Content-Type", "").endswith("json") else payload)


def sp(i):
    return {
        "legal_name": f"Memory {rnd}-{i} GmbH",
        "hq_country": "DE",
        "category": "hosting",
        "purpose": {"de": "Hosting der Kundendaten", "en": "Hosting of customer data"},
        "data_categories": ["master_contact", "contract_service"],
        "data_subjects": ["customers"],
        "locations": [{"country": "US", "region": "us-east", "role": "hosting"}],
        "certifications": [{"name": "ISO/IEC 27001", "issuer": "TÜV", "valid_until": "2027-06-30"}],
    }


created = []
for i in range(40):
    r, doc = call("POST", "/v1/subprocessors", sp(i))
    created.append(doc)
for doc in created:
    call("GET", "/v1/subprocessors/" + doc["id"])
cursor = None
while True:
    r, page = call("GET", "/v1/subprocessors?limit=15" + (f"&cursor={cursor}" if cursor else ""))
    cursor = page.get("next_cursor")
    if not cursor:
        break
for n, doc in enumerate(created):
    r, doc2 = call("PATCH", "/v1/subprocessors/" + doc["id"], {"trading_name": f"Mem {rnd}-{n}"},
                   headers={"If-Match": f'"{doc["version"]}"'})
    created[n] = doc2
linked = []
for doc in created[:10]:
    r, ag = call("POST", "/v1/agreements", {
        "subprocessor_id": doc["id"], "type": "msa", "title": f"MSA {doc['id']}",
        "effective_on": "2026-01-01", "expires_on": "2028-12-31", "reference": "MSA-2026-001"})
    r, tr = call("POST", "/v1/transfers", {
        "subprocessor_id": doc["id"], "destination_country": "US", "basis": "scc_2021",
        "scc_module": 3, "contract_signed_on": "2025-03-01",
        "scc_options": {"docking_clause": True, "clause9_option": "general", "clause9_notice_days": 30,
                        "governing_law": "IE", "forum": "IE"},
        "tia": {"performed_on": "2026-01-05", "next_review_on": "2027-01-05", "risk": "medium",
                "supplementary_measures": ["encryption at rest"]}})
    linked.append(("/v1/agreements/", ag))
    linked.append(("/v1/transfers/", tr))
call("GET", "/v1/audit?limit=100")
call("GET", "/v1/compliance/findings")
call("GET", "/v1/reports/expiring?within_days=365")
if publish:
    call("POST", "/v1/publications", {"summary": {"de": f"Runde {rnd}", "en": f"Round {rnd}"}, "override_notice": True,
                                      "override_reason": {"de": "Messung", "en": "Benchmark"}})

r, _ = call("GET", "/public/v1/subprocessors", auth=False)
etag = r.getheader("ETag")
for k in range(public_n):
    if k % 2:
        call("GET", "/public/v1/subprocessors", auth=False, headers={"If-None-Match": etag})
    else:
        call("GET", "/public/v1/subprocessors", auth=False)
for path in ("/public/v1/subprocessors?format=csv", "/public/v1/subprocessors/feed.atom", "/subprocessors"):
    call("GET", path, auth=False)

for path, doc in linked + [("/v1/subprocessors/", d) for d in created]:
    call("DELETE", path + doc["id"], headers={"If-Match": f'"{doc["version"]}"'})
if lat_file:
    lat_file.close()
print(sent)
