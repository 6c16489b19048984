#!/usr/bin/env python3
"""bench/imports.d/run.py WAY BASE TOKEN ROWS CONNS — the time (seconds, printed)
to put ROWS new subprocessors into an empty registry: `import` as one CSV
through POST /v1/imports; `one-by-one` as ROWS POST /v1/subprocessors from one
client; `parallel` the same from CONNS clients. The rows are the same in each
way; every answer is checked (a failed write stops the run)."""
import concurrent.futures
import csv
import io
import sys
import time

import requests

way, base, token, rows, conns = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
auth = {"Authorization": f"Bearer {token}"}


def body(i):
    return {"legal_name": f"Bench Import {i:05d} GmbH", "hq_country": "DE", "category": "hosting",
            "purpose": {"de": f"Betrieb {i}", "en": f"Operation {i}"},
            "data_categories": ["master_contact"], "data_subjects": ["customers"],
            "locations": [{"country": "DE", "region": "eu-central", "role": "hosting"}]}


def as_csv():
    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow(["Firma", "Sitzland", "Kategorie", "Zweck (de)", "Zweck (en)", "Datenkategorien", "Betroffene",
                "Orte der Verarbeitung"])
    for i in range(rows):
        b = body(i)
        w.writerow([b["legal_name"], "DE", "hosting", b["purpose"]["de"], b["purpose"]["en"], "master_contact",
                    "customers", "DE (eu-central): hosting"])
    return out.getvalue().encode()


def create(session, i):
    r = session.post(base + "/v1/subprocessors", json=body(i), headers=auth, timeout=60)
    assert r.status_code == 201, r.text


if way == "import":
    data = as_csv()
    t0 = time.monotonic()
    r = requests.post(base + "/v1/imports", data=data, timeout=600,
                      headers=dict(auth, **{"Content-Type": "text/csv"}))
    took = time.monotonic() - t0
    assert r.status_code == 200 and r.json()["created"] == rows, r.text[:500]
elif way == "one-by-one":
    s = requests.Session()
    t0 = time.monotonic()
    for i in range(rows):
        create(s, i)
    took = time.monotonic() - t0
else:
    sessions = [requests.Session() for _ in range(conns)]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(conns) as pool:
        list(pool.map(lambda i: create(sessions[i % conns], i), range(rows)))
    took = time.monotonic() - t0
print(f"{took:.3f}")
