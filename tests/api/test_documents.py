"""Stored documents (PDF): upload, byte-identical download with the sha256 as
ETag, conditional requests, size and media-type limits, and deletion guarded by
If-Match and by the agreements, TOM documents and TIAs that refer to a document
(service/api/documents.c, service/api/crud.c)."""

import hashlib
import socket

import pytest

from helpers import (RFC3339_UTC_RE, assert_problem, assert_status, assert_validation,
                     audit_entries, pdf_bytes, sp_body, unique_name, upload_pdf)

DOC_ID_PREFIX = "doc_"
UNKNOWN_DOC = "doc_00000000000000000000000000"


def _upload(api, data, filename=None):
    resp = upload_pdf(api, data, filename=filename)
    assert_status(resp, 201)
    return resp


def _etag(data):
    return '"' + hashlib.sha256(data).hexdigest() + '"'


def _sp(api):
    return api.create_sp(sp_body(legal_name=unique_name("Doc SP")))


# ---------------------------------------------------------------------------
# upload and download


def test_upload_small_pdf_and_download(admin, reader):
    data = pdf_bytes()
    assert data.startswith(b"%PDF-1.4")
    resp = _upload(admin, data, filename="AVV Odoo 2026.pdf")
    meta = resp.json()
    doc_id = meta["id"]
    assert doc_id.startswith(DOC_ID_PREFIX)
    assert resp.headers.get("Location") == f"/v1/documents/{doc_id}"
    assert resp.headers.get("ETag") == _etag(data)
    assert meta["size"] == len(data)
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["content_type"] == "application/pdf"
    assert meta["filename"] == "AVV Odoo 2026.pdf"
    assert meta["uploaded_by"] == "alice"
    assert meta["version"] == 1
    assert RFC3339_UTC_RE.match(meta["created_at"])

    # a reader downloads it byte-identical
    got = reader.get(f"/v1/documents/{doc_id}")
    assert_status(got, 200)
    assert got.content == data
    assert got.headers.get("Content-Type", "").split(";")[0] == "application/pdf"
    assert got.headers.get("ETag") == _etag(data)
    assert got.headers.get("Content-Length") == str(len(data))
    assert got.headers.get("Content-Disposition") == (
        'attachment; filename="AVV Odoo 2026.pdf"; filename*=UTF-8\'\'AVV%20Odoo%202026.pdf')

    # If-None-Match with the sha256 ETag -> 304 without a body
    nm = reader.get(f"/v1/documents/{doc_id}", headers={"If-None-Match": _etag(data)})
    assert nm.status_code == 304, nm.text[:200]
    assert nm.content == b""
    assert nm.headers.get("ETag") == _etag(data)
    # another ETag -> the full body
    other = reader.get(f"/v1/documents/{doc_id}", headers={"If-None-Match": '"1"'})
    assert_status(other, 200)
    assert other.content == data

    # HEAD: the headers of GET, no body
    head = reader.request("HEAD", f"/v1/documents/{doc_id}")
    assert_status(head, 200)
    assert head.content == b""
    assert head.headers.get("ETag") == _etag(data)
    assert head.headers.get("Content-Type", "").split(";")[0] == "application/pdf"
    assert head.headers.get("Content-Length") == str(len(data))


def test_upload_multi_mib_pdf(admin):
    data = pdf_bytes(size=6 * 1024 * 1024 + 12345)
    resp = _upload(admin, data)
    meta = resp.json()
    assert meta["size"] == len(data)
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert "filename" not in meta
    got = admin.get(f"/v1/documents/{meta['id']}", timeout=60)
    assert_status(got, 200)
    assert len(got.content) == len(data)
    assert hashlib.sha256(got.content).hexdigest() == meta["sha256"]
    assert got.content == data
    assert got.headers.get("ETag") == _etag(data)
    # without a filename the download gets a default name
    assert got.headers.get("Content-Disposition") == (
        'attachment; filename="document.pdf"; filename*=UTF-8\'\'document.pdf')


def test_same_bytes_twice_are_two_documents(admin):
    data = pdf_bytes()
    a = _upload(admin, data).json()
    b = _upload(admin, data).json()
    assert a["id"] != b["id"]
    assert a["sha256"] == b["sha256"]
    items, _ = admin.list_all("/v1/documents", sha256=a["sha256"])
    assert {a["id"], b["id"]} <= {it["id"] for it in items}


def test_list_by_sha256(admin, reader):
    data = pdf_bytes()
    meta = _upload(admin, data, filename="tom.pdf").json()
    items, _ = reader.list_all("/v1/documents", sha256=meta["sha256"])
    assert [it["id"] for it in items] == [meta["id"]]
    assert items[0] == meta
    # the full list contains it too
    items, _ = admin.list_all("/v1/documents")
    assert meta["id"] in [it["id"] for it in items]
    # a sha256 nobody uploaded
    items, _ = admin.list_all("/v1/documents", sha256="0" * 64)
    assert items == []
    assert_problem(admin.get("/v1/documents", params={"sha256": "abc"}), 400, "malformed-request")
    assert_problem(admin.get("/v1/documents", params={"filename": "tom.pdf"}),
                   400, "malformed-request")


def test_download_unknown_document(admin):
    assert_problem(admin.get(f"/v1/documents/{UNKNOWN_DOC}"), 404, "not-found")


# ---------------------------------------------------------------------------
# media type, size and filename


@pytest.mark.parametrize("content_type", ["application/octet-stream", "application/json",
                                          "text/plain", None])
def test_wrong_content_type_is_415(admin, content_type):
    resp = admin.request("POST", "/v1/documents", data=pdf_bytes(), content_type=content_type)
    assert_problem(resp, 415, "unsupported-media-type")


def test_content_type_with_parameter_is_accepted(admin):
    data = pdf_bytes()
    resp = admin.request("POST", "/v1/documents", data=data,
                         content_type="application/pdf; charset=binary")
    assert_status(resp, 201)
    assert resp.json()["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("body", [b"", b"%PDF", b"PK\x03\x04 a zip file", b"<html>%PDF-1.4",
                                  b" %PDF-1.4\n"])
def test_body_that_is_not_a_pdf_is_415(admin, body):
    assert_problem(upload_pdf(admin, body), 415, "unsupported-media-type")


@pytest.mark.parametrize("filename", ["a/b.pdf", "quote\".pdf", "back\\slash.pdf", "x" * 201,
                                      "tab\there.pdf"])
def test_bad_filename_is_400(admin, filename):
    assert_problem(upload_pdf(admin, pdf_bytes(), filename=filename), 400, "malformed-request")


def test_unknown_query_parameter_on_upload(admin):
    resp = admin.request("POST", "/v1/documents", data=pdf_bytes(), content_type="application/pdf",
                         params={"name": "x.pdf"})
    assert_problem(resp, 400, "malformed-request")


def test_unicode_filename(admin):
    data = pdf_bytes()
    meta = _upload(admin, data, filename="Auftragsverarbeitung – Müller.pdf").json()
    assert meta["filename"] == "Auftragsverarbeitung – Müller.pdf"
    got = admin.get(f"/v1/documents/{meta['id']}")
    assert_status(got, 200)
    disp = got.raw.headers.get("Content-Disposition")
    assert disp is not None and disp.startswith("attachment")


def test_roles(server, admin, editor, reader):
    data = pdf_bytes()
    assert_problem(upload_pdf(reader, data), 403, "forbidden")
    assert_problem(upload_pdf(server.anon(), data), 401, "unauthorized")
    meta = _upload(editor, data).json()
    assert meta["uploaded_by"] == "eddie"
    assert_problem(server.anon().get(f"/v1/documents/{meta['id']}"), 401, "unauthorized")
    assert_problem(editor.delete(f"/v1/documents/{meta['id']}", if_match=_etag(data)),
                   403, "forbidden")
    assert_status(admin.delete(f"/v1/documents/{meta['id']}", if_match=_etag(data)), 204)


def _raw_post(port, headers, body, read_timeout=15):
    """POST over a raw socket; the body may be refused part-way (413 before the
    whole body is read). Returns (status, header block, response body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        head = "POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode())
        try:
            for off in range(0, len(body), 65536):
                s.sendall(body[off:off + 65536])
        except OSError:
            pass  # the server answered and closed early
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
        raw = b"".join(chunks)
    finally:
        s.close()
    header, _, rest = raw.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1]) if header else None
    return status, header.decode("latin-1"), rest


def test_body_over_the_document_limit_is_413(make_server):
    srv = make_server(extra_env={"SUBREG_MAX_DOCUMENT_BYTES": "2000000"})
    api = srv.api(roles=["editor"], sub="eddie")
    # within the limit (and above the general 1 MiB body limit): accepted
    ok = pdf_bytes(size=1_900_000)
    resp = upload_pdf(api, ok)
    assert_status(resp, 201)
    assert resp.json()["size"] == len(ok)

    big = pdf_bytes(size=2_500_000)
    # Content-Length over the limit: refused before the body is read
    status, header, body = _raw_post(srv.port, {
        "Authorization": f"Bearer {api.token}", "Content-Type": "application/pdf",
        "Content-Length": str(len(big))}, big)
    assert status == 413, header
    assert "application/problem+json" in header.lower()
    assert b"/problems/payload-too-large" in body
    # and through an ordinary client
    try:
        resp = upload_pdf(api, big)
    except Exception as exc:  # pragma: no cover - connection closed while sending
        pytest.fail(f"upload of {len(big)} bytes: no 413 response ({exc!r})")
    assert_problem(resp, 413, "payload-too-large")
    # chunked transfer encoding: refused once the limit is passed
    def gen():
        for off in range(0, len(big), 100_000):
            yield big[off:off + 100_000]
    resp = api.http.post(srv.url + "/v1/documents", data=gen(), timeout=30, headers={
        "Authorization": f"Bearer {api.token}", "Content-Type": "application/pdf"})
    assert_problem(resp, 413, "payload-too-large")
    # nothing was stored
    items, _ = api.list_all("/v1/documents", sha256=hashlib.sha256(big).hexdigest())
    assert items == []
    # the service is still fine
    assert_status(upload_pdf(api, pdf_bytes()), 201)


# ---------------------------------------------------------------------------
# delete and references


def test_delete_needs_if_match_with_the_sha256(admin):
    data = pdf_bytes()
    meta = _upload(admin, data).json()
    path = f"/v1/documents/{meta['id']}"
    assert_problem(admin.delete(path), 428, "precondition-required")
    assert_problem(admin.delete(path, if_match='"1"'), 412, "precondition-failed")
    assert_problem(admin.delete(path, if_match='"' + "0" * 64 + '"'), 412, "precondition-failed")
    assert_status(admin.get(path), 200)
    assert_status(admin.delete(path, if_match=_etag(data)), 204)
    assert_problem(admin.get(path), 404, "not-found")
    assert_problem(admin.delete(path, if_match=_etag(data)), 404, "not-found")
    items, _ = admin.list_all("/v1/documents", sha256=meta["sha256"])
    assert meta["id"] not in [it["id"] for it in items]


def test_upload_and_delete_are_audited(server):
    api = server.api(roles=["admin"], sub="doc-auditor")
    data = pdf_bytes()
    meta = _upload(api, data).json()
    assert_status(api.delete(f"/v1/documents/{meta['id']}", if_match=_etag(data)), 204)
    entries = audit_entries(api, meta["id"], 2)
    assert [e["action"] for e in entries] == ["create", "delete"]
    assert all(e["entity_type"] == "document" and e["actor"] == "doc-auditor" for e in entries)
    assert entries[0]["after"]["sha256"] == meta["sha256"]


def test_document_referenced_by_agreement(admin):
    data = pdf_bytes()
    meta = _upload(admin, data, filename="signed-dpa.pdf").json()
    doc_id = meta["id"]
    sp = _sp(admin)
    resp = admin.post("/v1/agreements", {
        "subprocessor_id": sp["id"], "type": "dpa", "title": "AVV", "status": "active",
        "signed_on": "2026-01-10", "authorisation": "specific", "document_id": doc_id})
    assert_status(resp, 201)
    ag = resp.json()
    assert ag["document_id"] == doc_id

    body = assert_problem(admin.delete(f"/v1/documents/{doc_id}", if_match=_etag(data)),
                          409, "conflict")
    assert "agreements" in body["detail"], body
    # still downloadable
    assert admin.get(f"/v1/documents/{doc_id}").content == data

    # clear the reference with a merge patch null
    resp = admin.patch(f"/v1/agreements/{ag['id']}", {"document_id": None}, if_match=1)
    assert_status(resp, 200)
    assert "document_id" not in resp.json()
    assert_status(admin.delete(f"/v1/documents/{doc_id}", if_match=_etag(data)), 204)
    assert_problem(admin.get(f"/v1/documents/{doc_id}"), 404, "not-found")
    # the deleted document cannot be referenced again
    body = assert_problem(admin.patch(f"/v1/agreements/{ag['id']}", {"document_id": doc_id},
                                      if_match=2), 422, "unprocessable-entity")
    assert [e["pointer"] for e in body["errors"]] == ["/document_id"], body


def test_document_referenced_by_tia(admin):
    data = pdf_bytes()
    doc_id = _upload(admin, data, filename="tia.pdf").json()["id"]
    sp = _sp(admin)
    resp = admin.post("/v1/transfers", {
        "subprocessor_id": sp["id"], "destination_country": "US", "basis": "scc_2021",
        "scc_module": 3, "tia": {"performed_on": "2026-01-05", "risk": "medium",
                                 "document_id": doc_id}})
    assert_status(resp, 201)
    tr = resp.json()
    body = assert_problem(admin.delete(f"/v1/documents/{doc_id}", if_match=_etag(data)),
                          409, "conflict")
    assert "transfers" in body["detail"], body
    assert "tia.document_id" in body["detail"], body
    resp = admin.patch(f"/v1/transfers/{tr['id']}", {"tia": {"document_id": None}}, if_match=1)
    assert_status(resp, 200)
    assert resp.json()["tia"] == {"performed_on": "2026-01-05", "risk": "medium"}
    assert_status(admin.delete(f"/v1/documents/{doc_id}", if_match=_etag(data)), 204)


def test_document_referenced_by_tom_document(admin):
    data = pdf_bytes()
    doc_id = _upload(admin, data).json()["id"]
    resp = admin.post("/v1/tom-documents", {
        "owner": "self", "title": unique_name("TOM"), "version_label": "3",
        "effective_on": "2026-01-01", "document_id": doc_id})
    assert_status(resp, 201)
    tom = resp.json()
    body = assert_problem(admin.delete(f"/v1/documents/{doc_id}", if_match=_etag(data)),
                          409, "conflict")
    assert "tom_documents" in body["detail"], body
    assert_status(admin.delete(f"/v1/tom-documents/{tom['id']}", if_match=1), 204)
    assert_status(admin.delete(f"/v1/documents/{doc_id}", if_match=_etag(data)), 204)


def test_document_referenced_twice_names_both(admin):
    data = pdf_bytes()
    doc_id = _upload(admin, data).json()["id"]
    sp = _sp(admin)
    assert_status(admin.post("/v1/agreements", {
        "subprocessor_id": sp["id"], "type": "msa", "title": "MSA", "document_id": doc_id}), 201)
    assert_status(admin.post("/v1/transfers", {
        "subprocessor_id": sp["id"], "destination_country": "IN", "basis": "scc_2021",
        "scc_module": 3, "tia": {"performed_on": "2026-01-05", "risk": "low",
                                 "document_id": doc_id}}), 201)
    body = assert_problem(admin.delete(f"/v1/documents/{doc_id}", if_match=_etag(data)),
                          409, "conflict")
    assert "agreements" in body["detail"] and "transfers" in body["detail"], body


def test_unknown_document_id_is_422(admin):
    sp = _sp(admin)
    resp = admin.post("/v1/agreements", {"subprocessor_id": sp["id"], "type": "nda",
                                         "title": "NDA", "document_id": UNKNOWN_DOC})
    body = assert_problem(resp, 422, "unprocessable-entity")
    assert [e["pointer"] for e in body["errors"]] == ["/document_id"], body
    # a malformed id is a validation error, not a lookup
    resp = admin.post("/v1/agreements", {"subprocessor_id": sp["id"], "type": "nda",
                                         "title": "NDA", "document_id": "../etc/passwd"})
    assert_validation(resp, "/document_id")
    resp = admin.post("/v1/tom-documents", {"owner": "self", "title": "T", "version_label": "1",
                                            "effective_on": "2026-01-01",
                                            "document_id": UNKNOWN_DOC})
    body = assert_problem(resp, 422, "unprocessable-entity")
    assert [e["pointer"] for e in body["errors"]] == ["/document_id"], body


def test_non_ascii_filename_round_trip(admin):
    # RFC 6266: browsers take filename*, older clients the ASCII fallback
    data = pdf_bytes()
    name = "AVV Müller „2026“.pdf"
    doc = _upload(admin, data, filename=name).json()
    assert doc["filename"] == name
    got = admin.get(f"/v1/documents/{doc['id']}")
    assert got.headers["Content-Disposition"] == (
        "attachment; filename=\"AVV M_ller _2026_.pdf\"; "
        "filename*=UTF-8''AVV%20M%C3%BCller%20%E2%80%9E2026%E2%80%9C.pdf")
    import urllib.parse
    star = got.headers["Content-Disposition"].split("filename*=UTF-8''", 1)[1]
    assert urllib.parse.unquote(star) == name
