"""Export and restore (service/api/export.c): GET /v1/export gives the whole
registry and its reference data as one JSON document; `subreg restore FILE`
takes it back into an empty database, after which every answer about the
registry is what it was, byte for byte (bodies and ETags), the stored PDFs
included."""
import datetime as dt
import json
import subprocess

import pymongo
import pytest

from helpers import (assert_problem, assert_status, pdf_bytes, sp_body, unique_name, upload_pdf,
                     wait_public_ready)
from test_registry import agreement_body, customer_body, tom_body, transfer_body

REGISTRY = ["/v1/subprocessors", "/v1/agreements", "/v1/transfers", "/v1/tom-documents", "/v1/customers",
            "/v1/documents", "/v1/publications", "/v1/objections", "/v1/reference/countries",
            "/v1/reference/adequacy-decisions", "/v1/reference/scc-sets"]


def _populate(api):
    """A registry with every kind of document: changed several times, a stored
    PDF, a publication with an objection, reference data an admin edited."""
    sp = api.create_sp(sp_body(legal_name=unique_name("Exported")))
    sp = api.patch_sp(sp["id"], {"notes": "second version", "status": "active"}, sp["version"])
    country = api.get("/v1/reference/countries/IS").json()  # reference data an admin edited
    assert_status(api.patch("/v1/reference/countries/IS", {"name": {"de": "Island (geändert)", "en": "Iceland"}},
                            if_match=country["version"]), 200)
    other = api.create_sp(sp_body(legal_name=unique_name("Exported too"), hq_country="US",
                                  locations=[{"country": "US", "role": "hosting"}]))
    pdf = pdf_bytes(size=300_000, seed=7)  # more than one stored chunk
    resp = upload_pdf(api, pdf, filename="DPA Exported.pdf")
    assert_status(resp, 201)
    doc_id = resp.json()["id"]
    assert_status(api.post("/v1/agreements", agreement_body(sp["id"], document_id=doc_id)), 201)
    assert_status(api.post("/v1/transfers", transfer_body(other["id"])), 201)
    assert_status(api.post("/v1/tom-documents", tom_body(sp["id"])), 201)
    customer = api.post("/v1/customers", customer_body(notice_days=30, objection_days=14))
    assert_status(customer, 201)
    pub = api.post("/v1/publications", {"summary": {"de": "Export", "en": "Export"}})
    assert_status(pub, 201)
    ob = api.post(f"/v1/publications/{pub.json()['number']}/objections",
                  {"customer_id": customer.json()["id"], "reason": "Test",
                   "received_on": dt.date.today().isoformat()})
    assert_status(ob, 201)
    return doc_id, pdf


def _snapshot(api, paths):
    """Every list page's items and every document's GET (body and ETag)."""
    out = {}
    for path in paths:
        if path == "/v1/publications":  # one page, no cursor
            resp = api.get(path)
            assert_status(resp, 200)
            items = resp.json()["items"]
        else:
            items, _ = api.list_all(path)
        out[path] = items
        for item in items:
            key = item.get("id", item.get("number"))
            got = api.get(f"{path}/{key}")
            assert_status(got, 200)
            out[f"{path}/{key}"] = (got.content, got.headers.get("ETag"))
    return out


def _restore(srv, path, db_name, stdin=None):
    env = srv.env({"SUBREG_MONGODB_DB": db_name})
    return subprocess.run([srv.binary, "restore", str(path)], env=env, capture_output=True, text=True,
                          timeout=120, input=stdin)


def test_export_restores_byte_for_byte(make_server, tmp_path):
    src = make_server()
    api = src.api(roles=["admin"])
    doc_id, pdf = _populate(api)
    wait_public_ready(src)
    paths = REGISTRY
    before = _snapshot(api, paths)
    public_before = {f: api.get("/public/v1/subprocessors", params={"format": f} if f else None).content
                     for f in (None, "csv")}

    resp = api.get("/v1/export")
    assert_status(resp, 200)
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "attachment" in resp.headers.get("Content-Disposition", "")
    export = resp.json()
    assert export["format"] == "subreg-export" and export["format_version"] == 1
    assert doc_id in export["document_content"]
    assert any(d.get("_seed_hash") for d in export["collections"]["ref_countries"]), \
        "internal members travel with the documents"
    path = tmp_path / "export.json"
    path.write_bytes(resp.content)

    res = _restore(src, path, "subreg_restored")
    assert res.returncode == 0, res.stderr
    dst = make_server(share_db_with=src, extra_env={"SUBREG_MONGODB_DB": "subreg_restored"})
    copy = dst.api(roles=["admin"])
    wait_public_ready(dst)
    after = _snapshot(copy, paths)
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] == before[key], key
    for f in (None, "csv"):
        got = copy.get("/public/v1/subprocessors", params={"format": f} if f else None).content
        assert got == public_before[f], f
    got = copy.get(f"/v1/documents/{doc_id}")
    assert_status(got, 200)
    assert got.content == pdf
    # the export of the restored registry is the same export
    again = copy.get("/v1/export").json()
    assert again["collections"] == export["collections"]
    assert again["document_content"] == export["document_content"]
    # the trail of the restored registry starts with one record per document
    audit, _ = copy.list_all("/v1/audit", actor="subreg-restore")
    sps = export["collections"]["subprocessors"]
    restored = {(a["entity_type"], a["entity_id"], a["entity_version"]) for a in audit}
    assert {("subprocessor", s["id"], s["version"]) for s in sps} <= restored
    assert all(a["action"] == "restore" for a in audit)
    # and it goes on: a change of a restored document is its next version
    sp = sps[0]
    resp = copy.patch(f"/v1/subprocessors/{sp['id']}", {"notes": "after restore"}, if_match=sp["version"])
    assert_status(resp, 200)
    assert resp.json()["version"] == sp["version"] + 1


def test_restore_refuses_a_database_that_is_not_empty(server, admin, tmp_path):
    export = admin.get("/v1/export")
    assert_status(export, 200)
    path = tmp_path / "export.json"
    path.write_bytes(export.content)
    db = pymongo.MongoClient(server.db.uri)["subreg_test"]
    count = db.subprocessors.count_documents({})
    res = _restore(server, path, "subreg_test")
    assert res.returncode == 1, res
    assert "not empty" in res.stderr
    assert db.subprocessors.count_documents({}) == count


@pytest.mark.parametrize("content,message", [
    ("not json", "not valid JSON"),
    ('{"format": "something-else"}', "not a subreg export"),
    ('{"format": "subreg-export", "format_version": 2, "collections": {}}', "format_version"),
    ('{"format": "subreg-export", "format_version": 1, "collections": {"webhooks": []}}', "unknown collection"),
    ('{"format": "subreg-export", "format_version": 1, "collections": {"subprocessors": [{"x": 1}]}}',
     "string id"),
    ('{"format": "subreg-export", "format_version": 1, "collections": {"subprocessors": [{"id": "sp_1"}]}}',
     "has no version"),
    ('{"format": "subreg-export", "format_version": 1, "collections": {"documents": [{"id": "doc_1", '
     '"version": 1}]}, "document_content": {"doc_1": "not base64!"}}', "not base64url"),
    ('{"format": "subreg-export", "format_version": 1, "collections": {"documents": [{"id": "doc_1", '
     '"version": 1}]}, "document_content": {}}', "has no content"),
])
def test_restore_refuses_a_bad_file_and_writes_nothing(server, tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    db_name = "subreg_bad_" + unique_name("x").split()[-1].lower()[:8]
    res = _restore(server, path, db_name)
    assert res.returncode == 2, res
    assert message in res.stderr
    client = pymongo.MongoClient(server.db.uri)
    assert db_name not in client.list_database_names()


def test_restore_twice_and_from_stdin(server, admin, make_server):
    """A restore that finished is not run again over itself; stdin works."""
    export = admin.get("/v1/export").text
    res = _restore(server, "-", "subreg_stdin", stdin=export)
    assert res.returncode == 0, res.stderr
    again = _restore(server, "-", "subreg_stdin", stdin=export)
    assert again.returncode == 1 and "already holds a restore" in again.stderr, again


def test_export_is_for_admins(server, editor, reader):
    assert_problem(editor.get("/v1/export"), 403, "forbidden")
    assert_problem(reader.get("/v1/export"), 403, "forbidden")
