"""Registry contract resources: agreements, transfers, TOM documents, customers.

Lifecycle (create/get/list/filter/merge patch/conditional writes/delete), the
schema and domain rules with their exact pointers (service/domain/registry.c),
status transitions, defaults, referential integrity and the audit trail."""

import re

import pytest

from helpers import (RFC3339_UTC_RE, assert_problem, assert_status, assert_validation,
                     audit_entries, ids_of, override, sp_body, unique_name)

UNKNOWN_SP = "sp_00000000000000000000000000"


def new_sp(api, **overrides):
    return api.create_sp(sp_body(legal_name=unique_name("Registry SP"), **overrides))


# ---------------------------------------------------------------------------
# one description per resource, for the shared lifecycle and audit tests


def agreement_body(sp_id, **kw):
    body = {
        "subprocessor_id": sp_id,
        "type": "msa",
        "title": unique_name("Master services agreement"),
        "effective_on": "2026-01-01",
        "expires_on": "2028-12-31",
        "reference": "MSA-2026-001",
    }
    body.update(kw)
    return body


def transfer_body(sp_id, **kw):
    body = {
        "subprocessor_id": sp_id,
        "destination_country": "US",
        "basis": "scc_2021",
        "scc_module": 3,
        "scc_options": {"docking_clause": True, "clause9_option": "general",
                        "clause9_notice_days": 30, "governing_law": "IE", "forum": "IE"},
        "contract_signed_on": "2025-03-01",
        "tia": {"performed_on": "2025-03-01", "next_review_on": "2026-03-01", "risk": "low",
                "supplementary_measures": ["encryption at rest", "pseudonymisation"]},
    }
    body.update(kw)
    return body


def tom_body(sp_id, **kw):
    body = {
        "owner": "subprocessor",
        "subprocessor_id": sp_id,
        "title": unique_name("TOM"),
        "version_label": "2026.1",
        "effective_on": "2026-01-01",
        "next_review_on": "2027-01-01",
        "measures": {"pseudonymisation_encryption": ["TLS 1.2+ in transit", "AES-256 at rest"],
                     "regular_testing": ["annual penetration test"]},
    }
    body.update(kw)
    return body


def customer_body(sp_id=None, **kw):
    body = {
        "name": unique_name("Kunde"),
        "customer_number": "K-10001",
        "country": "DE",
        "contacts": [{"name": "Datenschutz", "email": "dsb@kunde.example", "role": "privacy",
                      "language": "de"}],
    }
    body.update(kw)
    return body


RESOURCES = {
    "agreements": {
        "path": "/v1/agreements", "prefix": "ag_", "entity_type": "agreement",
        "body": agreement_body,
        "filters": lambda sp_id, doc: {"subprocessor_id": sp_id, "type": "msa", "status": "draft"},
        "miss_filters": lambda sp_id, doc: {"subprocessor_id": sp_id, "type": "nda"},
        "bad_filter": {"status": "bogus"},
        "patch": {"notes": "renegotiated", "reference": None},
    },
    "transfers": {
        "path": "/v1/transfers", "prefix": "tr_", "entity_type": "transfer",
        "body": transfer_body,
        "filters": lambda sp_id, doc: {"subprocessor_id": sp_id, "country": "US",
                                       "basis": "scc_2021", "regime": "eu"},
        "miss_filters": lambda sp_id, doc: {"subprocessor_id": sp_id, "regime": "uk"},
        "bad_filter": {"country": "us"},
        "patch": {"notes": "reviewed", "tia": {"risk": "medium", "supplementary_measures": None}},
    },
    "tom-documents": {
        "path": "/v1/tom-documents", "prefix": "tom_", "entity_type": "tom_document",
        "body": tom_body,
        "filters": lambda sp_id, doc: {"subprocessor_id": sp_id, "owner": "subprocessor",
                                       "status": "draft"},
        "miss_filters": lambda sp_id, doc: {"subprocessor_id": sp_id, "status": "active"},
        "bad_filter": {"owner": "nobody"},
        "patch": {"status": "active", "version_label": "2026.2"},
    },
    "customers": {
        "path": "/v1/customers", "prefix": "cu_", "entity_type": "customer",
        "body": lambda sp_id, **kw: customer_body(status="inactive", authorisation="specific", **kw),
        "filters": lambda sp_id, doc: {"status": "inactive", "authorisation": "specific"},
        "miss_filters": lambda sp_id, doc: {"status": "active"},
        "bad_filter": {"authorisation": "any"},
        "patch": {"notes": "moved", "customer_number": None},
    },
}


def _create(api, spec, sp_id, **kw):
    resp = api.post(spec["path"], spec["body"](sp_id, **kw))
    assert_status(resp, 201)
    return resp


# ---------------------------------------------------------------------------
# cursor pagination, the same mechanism for every resource


@pytest.mark.parametrize("name", list(RESOURCES))
def test_cursor_pagination(admin, name):
    spec = RESOURCES[name]
    sp = new_sp(admin)
    made = [_create(admin, spec, sp["id"]).json()["id"] for _ in range(5)]
    # customers have no subprocessor: their own filters (shared with other tests)
    params = spec["filters"](sp["id"], None) if name == "customers" else {"subprocessor_id": sp["id"]}
    seen, cursor, pages = [], None, 0
    while True:
        q = dict(params, limit=2)
        if cursor:
            q["cursor"] = cursor
        resp = admin.get(spec["path"], params=q)
        assert_status(resp, 200)
        page = resp.json()
        assert 1 <= len(page["items"]) <= 2, page  # never an empty last page
        seen += ids_of(page["items"])
        pages += 1
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)), seen  # stable id order, no repeats
    assert [i for i in seen if i in made] == made
    if name != "customers":
        assert seen == made and pages == 3
    assert_problem(admin.get(spec["path"], params={"cursor": "not-a-cursor"}), 400, "malformed-request")


# ---------------------------------------------------------------------------
# lifecycle


@pytest.mark.parametrize("name", list(RESOURCES))
def test_lifecycle(admin, name):
    spec = RESOURCES[name]
    path = spec["path"]
    sp_id = new_sp(admin)["id"]
    body = spec["body"](sp_id)

    resp = admin.post(path, body)
    assert_status(resp, 201)
    doc = resp.json()
    rid = doc["id"]
    assert re.match("^" + spec["prefix"] + r"[0-9A-HJKMNP-TV-Z]{26}$", rid), rid
    assert resp.headers.get("Location") == f"{path}/{rid}"
    assert resp.headers.get("ETag") == '"1"'
    assert doc["version"] == 1
    assert RFC3339_UTC_RE.match(doc["created_at"]) and RFC3339_UTC_RE.match(doc["updated_at"])
    for key, value in body.items():
        assert doc[key] == value, f"{key}: sent {value!r}, got {doc.get(key)!r}"

    # get
    got = admin.get(f"{path}/{rid}")
    assert_status(got, 200)
    assert got.headers.get("ETag") == '"1"'
    assert got.json() == doc
    # If-None-Match on the current version
    assert admin.get(f"{path}/{rid}", headers={"If-None-Match": '"1"'}).status_code == 304

    # list contains it; filters select it; a non-matching filter does not
    items, _ = admin.list_all(path, **spec["filters"](sp_id, doc))
    assert rid in ids_of(items)
    assert [it for it in items if it["id"] == rid][0] == doc
    items, _ = admin.list_all(path, **spec["miss_filters"](sp_id, doc))
    assert rid not in ids_of(items)
    assert_problem(admin.get(path, params=spec["bad_filter"]), 400, "malformed-request")
    assert_problem(admin.get(path, params={"colour": "blue"}), 400, "malformed-request")

    # PATCH: If-Match required, stale refused, merge applied
    assert_problem(admin.patch(f"{path}/{rid}", spec["patch"]), 428, "precondition-required")
    assert_problem(admin.patch(f"{path}/{rid}", spec["patch"], if_match='"7"'),
                   412, "precondition-failed")
    assert_problem(admin.request("PATCH", f"{path}/{rid}", json_body=spec["patch"],
                                 content_type="application/json", if_match=1),
                   415, "unsupported-media-type")
    resp = admin.patch(f"{path}/{rid}", spec["patch"], if_match=1)
    assert_status(resp, 200)
    assert resp.headers.get("ETag") == '"2"'
    patched = resp.json()
    assert patched["version"] == 2
    assert patched["created_at"] == doc["created_at"]
    for key, value in spec["patch"].items():
        if value is None:
            assert key not in patched, f"{key} should have been removed: {patched}"
        elif isinstance(value, dict):
            for k2, v2 in value.items():
                if v2 is None:
                    assert k2 not in patched[key]
                else:
                    assert patched[key][k2] == v2
            # untouched nested members stay
            for k2, v2 in doc[key].items():
                if k2 not in value:
                    assert patched[key][k2] == v2
        else:
            assert patched[key] == value
    assert admin.get(f"{path}/{rid}").json() == patched
    # the old ETag is stale now
    assert_problem(admin.patch(f"{path}/{rid}", {"notes": "again"}, if_match=1),
                   412, "precondition-failed")

    # DELETE: admin only, If-Match required and current
    assert_problem(admin.delete(f"{path}/{rid}"), 428, "precondition-required")
    assert_problem(admin.delete(f"{path}/{rid}", if_match=1), 412, "precondition-failed")
    assert_status(admin.delete(f"{path}/{rid}", if_match=2), 204)
    assert_problem(admin.get(f"{path}/{rid}"), 404, "not-found")
    assert_problem(admin.patch(f"{path}/{rid}", {"notes": "x"}, if_match=2), 404, "not-found")
    assert_problem(admin.delete(f"{path}/{rid}", if_match=2), 404, "not-found")
    items, _ = admin.list_all(path, **spec["filters"](sp_id, doc))
    assert rid not in ids_of(items)


@pytest.mark.parametrize("name", list(RESOURCES))
def test_roles(server, admin, editor, reader, name):
    spec = RESOURCES[name]
    path = spec["path"]
    sp_id = new_sp(admin)["id"]
    assert_problem(reader.post(path, spec["body"](sp_id)), 403, "forbidden")
    assert_problem(server.anon().get(path), 401, "unauthorized")
    resp = editor.post(path, spec["body"](sp_id))
    assert_status(resp, 201)
    rid = resp.json()["id"]
    assert_status(reader.get(f"{path}/{rid}"), 200)
    assert_status(reader.get(path, params={"limit": 1}), 200)
    assert_problem(reader.patch(f"{path}/{rid}", {"notes": "r"}, if_match=1), 403, "forbidden")
    assert_status(editor.patch(f"{path}/{rid}", {"notes": "e"}, if_match=1), 200)
    assert_problem(editor.delete(f"{path}/{rid}", if_match=2), 403, "forbidden")
    assert_status(admin.delete(f"{path}/{rid}", if_match=2), 204)


@pytest.mark.parametrize("name", list(RESOURCES))
def test_audit_trail(server, name):
    spec = RESOURCES[name]
    sub = f"reg-auditor-{name}"
    api = server.api(roles=["admin"], sub=sub)
    sp_id = new_sp(api)["id"]
    resp = _create(api, spec, sp_id)
    rid = resp.json()["id"]
    assert_status(api.patch(f"{spec['path']}/{rid}", {"notes": "audited change"}, if_match=1), 200)
    assert_status(api.delete(f"{spec['path']}/{rid}", if_match=2), 204)
    entries = audit_entries(api, rid, 3)
    assert [e["action"] for e in entries] == ["create", "update", "delete"], entries
    for e in entries:
        assert e["entity_type"] == spec["entity_type"], e
        assert e["entity_id"] == rid
        assert e["actor"] == sub
    assert entries[0]["before"] is None and entries[0]["after"]["id"] == rid
    assert entries[1]["before"]["version"] == 1 and entries[1]["after"]["version"] == 2
    assert entries[1]["after"]["notes"] == "audited change"
    assert entries[2]["after"] is None and entries[2]["before"]["version"] == 2
    # the entity_type filter agrees
    typed = audit_entries(api, rid, 3, entity_type=spec["entity_type"])
    assert [e["id"] for e in typed] == [e["id"] for e in entries]
    other = api.list_all("/v1/audit", entity_id=rid, entity_type="subprocessor")[0]
    assert other == []


@pytest.mark.parametrize("name", list(RESOURCES))
def test_create_refuses_server_fields_and_unknown_fields(admin, name):
    spec = RESOURCES[name]
    sp_id = new_sp(admin)["id"]
    body = spec["body"](sp_id)
    body["colour"] = "blue"
    body["version"] = 3
    assert_validation(admin.post(spec["path"], body), "/colour", "/version")
    resp = _create(admin, spec, sp_id)
    rid = resp.json()["id"]
    assert_validation(admin.patch(f"{spec['path']}/{rid}", {"colour": "blue"}, if_match=1), "/colour")
    assert_validation(admin.patch(f"{spec['path']}/{rid}", {"id": "x"}, if_match=1), "/id")


@pytest.mark.parametrize("name", list(RESOURCES))
def test_idempotency_key(admin, name):
    spec = RESOURCES[name]
    sp_id = new_sp(admin)["id"]
    body = spec["body"](sp_id)
    key = unique_name("idem").replace(" ", "-")
    r1 = admin.post(spec["path"], body, headers={"Idempotency-Key": key})
    assert_status(r1, 201)
    r2 = admin.post(spec["path"], body, headers={"Idempotency-Key": key})
    assert_status(r2, 201)
    assert r2.json() == r1.json()
    assert r2.headers.get("Location") == r1.headers.get("Location")
    other = dict(body, notes="different")
    assert_problem(admin.post(spec["path"], other, headers={"Idempotency-Key": key}),
                   422, "unprocessable-entity")


# ---------------------------------------------------------------------------
# agreements


def test_agreement_defaults_and_required(admin):
    sp_id = new_sp(admin)["id"]
    resp = admin.post("/v1/agreements", {"subprocessor_id": sp_id, "type": "nda", "title": "NDA"})
    assert_status(resp, 201)
    assert resp.json()["status"] == "draft"
    assert_validation(admin.post("/v1/agreements", {}), "/subprocessor_id", "/type", "/title")


@pytest.mark.parametrize("overrides,pointer", [
    ({"status": "active"}, "/signed_on"),
    ({"effective_on": "2027-01-01", "expires_on": "2026-12-31"}, "/expires_on"),
    ({"signed_on": "2026-05-01", "expires_on": "2026-04-30"}, "/expires_on"),
    ({"status": "superseded", "signed_on": "2024-01-01"}, "/superseded_by"),
    ({"type": "dpa", "authorisation": "general"}, "/notice_days"),
    ({"type": "contract"}, "/type"),
    ({"status": "pending"}, "/status"),
    ({"authorisation": "blanket"}, "/authorisation"),
    ({"signed_on": "2026-02-30"}, "/signed_on"),
    ({"expires_on": "31.12.2027"}, "/expires_on"),
    ({"notice_days": 366}, "/notice_days"),
    ({"objection_days": -1}, "/objection_days"),
    ({"title": ""}, "/title"),
    ({"subprocessor_id": "not an id!"}, "/subprocessor_id"),
    ({"surprise": True}, "/surprise"),
])
def test_agreement_validation(admin, overrides, pointer):
    sp_id = new_sp(admin)["id"] if pointer != "/subprocessor_id" else UNKNOWN_SP
    body = agreement_body(sp_id, **overrides)
    assert_validation(admin.post("/v1/agreements", body), pointer)


def test_agreement_dpa_rules_satisfied(admin):
    sp_id = new_sp(admin)["id"]
    body = agreement_body(sp_id, type="dpa", status="active", signed_on="2025-12-01",
                          authorisation="general", notice_days=30, objection_days=14)
    resp = admin.post("/v1/agreements", body)
    assert_status(resp, 201)
    ag = resp.json()
    # removing signed_on from an active agreement breaks Art. 28(9)
    assert_validation(admin.patch(f"/v1/agreements/{ag['id']}", {"signed_on": None}, if_match=1),
                      "/signed_on")
    # removing notice_days from a general-authorisation DPA breaks Art. 28(2)
    assert_validation(admin.patch(f"/v1/agreements/{ag['id']}", {"notice_days": None}, if_match=1),
                      "/notice_days")
    # the failed patches changed nothing
    assert admin.get(f"/v1/agreements/{ag['id']}").json()["version"] == 1


def test_agreement_status_transitions(admin):
    sp_id = new_sp(admin)["id"]
    ag = admin.post("/v1/agreements", agreement_body(sp_id)).json()
    path = f"/v1/agreements/{ag['id']}"
    # draft -> expired is not a transition
    body = assert_problem(admin.patch(path, {"status": "expired"}, if_match=1),
                          422, "unprocessable-entity")
    assert "draft" in body["detail"] and "expired" in body["detail"]
    other = admin.post("/v1/agreements", agreement_body(sp_id)).json()
    assert_problem(admin.patch(path, {"status": "superseded", "superseded_by": other["id"]},
                               if_match=1), 422, "unprocessable-entity")
    admin.delete(f"/v1/agreements/{other['id']}", if_match=1)
    # draft -> active (signed)
    r = admin.patch(path, {"status": "active", "signed_on": "2026-01-01"}, if_match=1)
    assert_status(r, 200)
    # active -> draft is refused
    assert_problem(admin.patch(path, {"status": "draft"}, if_match=2), 422, "unprocessable-entity")
    # active -> expired -> active
    assert_status(admin.patch(path, {"status": "expired"}, if_match=2), 200)
    assert_problem(admin.patch(path, {"status": "terminated"}, if_match=3),
                   422, "unprocessable-entity")
    assert_status(admin.patch(path, {"status": "active"}, if_match=3), 200)
    # active -> superseded needs superseded_by (400 first), then the successor must exist (422)
    assert_validation(admin.patch(path, {"status": "superseded"}, if_match=4), "/superseded_by")
    r = admin.patch(path, {"status": "superseded", "superseded_by": "ag_00000000000000000000000000"},
                    if_match=4)
    body = assert_problem(r, 422, "unprocessable-entity")
    assert [e["pointer"] for e in body.get("errors", [])] == ["/superseded_by"], body
    succ = admin.post("/v1/agreements", agreement_body(sp_id, title="successor")).json()
    r = admin.patch(path, {"status": "superseded", "superseded_by": succ["id"]}, if_match=4)
    assert_status(r, 200)
    assert r.json()["status"] == "superseded"
    # superseded is final
    assert_problem(admin.patch(path, {"status": "active"}, if_match=5), 422, "unprocessable-entity")
    # the version did not move on the refused changes
    assert admin.get(path).json()["version"] == 5


def test_agreement_unknown_subprocessor(admin):
    resp = admin.post("/v1/agreements", agreement_body(UNKNOWN_SP))
    body = assert_problem(resp, 422, "unprocessable-entity")
    assert [e["pointer"] for e in body["errors"]] == ["/subprocessor_id"], body
    # also on PATCH
    sp_id = new_sp(admin)["id"]
    ag = admin.post("/v1/agreements", agreement_body(sp_id)).json()
    resp = admin.patch(f"/v1/agreements/{ag['id']}", {"subprocessor_id": UNKNOWN_SP}, if_match=1)
    body = assert_problem(resp, 422, "unprocessable-entity")
    assert [e["pointer"] for e in body["errors"]] == ["/subprocessor_id"], body


# ---------------------------------------------------------------------------
# transfers


def test_transfer_defaults(admin):
    sp_id = new_sp(admin)["id"]
    resp = admin.post("/v1/transfers", {"subprocessor_id": sp_id, "destination_country": "JP",
                                        "basis": "adequacy"})
    assert_status(resp, 201)
    tr = resp.json()
    assert tr["regime"] == "eu"
    assert "scc_module" not in tr and "tia" not in tr
    assert_validation(admin.post("/v1/transfers", {}), "/subprocessor_id",
                      "/destination_country", "/basis")


@pytest.mark.parametrize("overrides,pointer", [
    ({"basis": "scc_2021", "scc_module": None}, "/scc_module"),
    ({"basis": "ch_scc", "scc_module": None}, "/scc_module"),
    ({"basis": "uk_addendum", "scc_module": None, "regime": "uk"}, "/scc_module"),
    ({"basis": "adequacy", "scc_module": 2}, "/scc_module"),
    ({"basis": "art49", "scc_module": None}, "/art49_derogation"),
    ({"basis": "bcr", "scc_module": None}, "/bcr_reference"),
    ({"valid_from": "2026-06-01", "valid_until": "2026-05-31"}, "/valid_until"),
    ({"tia": {"performed_on": "2026-01-10", "next_review_on": "2026-01-09", "risk": "low"}},
     "/tia/next_review_on"),
    ({"tia": {"performed_on": "2026-01-10"}}, "/tia/risk"),
    ({"tia": {"risk": "low"}}, "/tia/performed_on"),
    ({"tia": {"performed_on": "2026-01-10", "risk": "extreme"}}, "/tia/risk"),
    ({"tia": {"performed_on": "2026-01-10", "risk": "low", "owner": "x"}}, "/tia/owner"),
    ({"scc_module": 5}, "/scc_module"),
    ({"basis": "privacy_shield"}, "/basis"),
    ({"regime": "us"}, "/regime"),
    ({"art49_derogation": "h", "basis": "art49", "scc_module": None}, "/art49_derogation"),
    ({"destination_country": "XX"}, "/destination_country"),
    ({"destination_country": "us"}, "/destination_country"),
    ({"contract_signed_on": "2026-13-01"}, "/contract_signed_on"),
    # signed on clauses that did not exist yet (the day before they apply)
    ({"contract_signed_on": "2021-06-26"}, "/contract_signed_on"),
    ({"basis": "uk_idta", "regime": "uk", "scc_module": None, "scc_options": None,
      "contract_signed_on": "2022-03-20"}, "/contract_signed_on"),
    ({"scc_options": {"governing_law": "EU"}}, "/scc_options/governing_law"),
    ({"scc_options": {"clause9_notice_days": 400}}, "/scc_options/clause9_notice_days"),
    ({"scc_options": {"module": 2}}, "/scc_options/module"),
    ({"recipient_in_adequacy_scope": "yes"}, "/recipient_in_adequacy_scope"),
])
def test_transfer_validation(admin, overrides, pointer):
    sp_id = new_sp(admin)["id"]
    body = override(transfer_body(sp_id), overrides, delete=None)  # None drops a field
    assert_validation(admin.post("/v1/transfers", body), pointer)


@pytest.mark.parametrize("extra", [
    {"basis": "art49", "art49_derogation": "b"},
    {"basis": "bcr", "bcr_reference": "BCR-P 2023/17"},
    {"basis": "dpf"},
    {"basis": "uk_idta", "regime": "uk"},
    {"basis": "uk_idta", "regime": "uk", "contract_signed_on": "2022-03-21"},
    {"basis": "scc_2021", "scc_module": 3, "contract_signed_on": "2021-06-27"},
    {"basis": "ch_scc", "scc_module": 2, "regime": "ch"},
])
def test_transfer_bases_accepted(admin, extra):
    sp_id = new_sp(admin)["id"]
    body = {"subprocessor_id": sp_id, "destination_country": "US"}
    body.update(extra)
    resp = admin.post("/v1/transfers", body)
    assert_status(resp, 201)
    for k, v in extra.items():
        assert resp.json()[k] == v


def test_transfer_rules_on_patch(admin):
    sp_id = new_sp(admin)["id"]
    tr = admin.post("/v1/transfers", transfer_body(sp_id)).json()
    path = f"/v1/transfers/{tr['id']}"
    # switching to art49 keeps scc_module: both rules fire
    assert_validation(admin.patch(path, {"basis": "art49"}, if_match=1),
                      "/scc_module", "/art49_derogation")
    r = admin.patch(path, {"basis": "art49", "scc_module": None, "art49_derogation": "a"},
                    if_match=1)
    assert_status(r, 200)
    assert "scc_module" not in r.json()
    # the whole TIA can be removed with null
    r = admin.patch(path, {"tia": None}, if_match=2)
    assert_status(r, 200)
    assert "tia" not in r.json()


def test_transfer_unknown_references(admin):
    body = assert_problem(admin.post("/v1/transfers", transfer_body(UNKNOWN_SP)),
                          422, "unprocessable-entity")
    assert [e["pointer"] for e in body["errors"]] == ["/subprocessor_id"], body
    sp_id = new_sp(admin)["id"]
    body = assert_problem(
        admin.post("/v1/transfers", transfer_body(sp_id, agreement_id="ag_00000000000000000000000000")),
        422, "unprocessable-entity")
    assert [e["pointer"] for e in body["errors"]] == ["/agreement_id"], body
    tia = {"performed_on": "2026-01-10", "risk": "low", "document_id": "doc_00000000000000000000000000"}
    body = assert_problem(admin.post("/v1/transfers", transfer_body(sp_id, tia=tia)),
                          422, "unprocessable-entity")
    assert [e["pointer"] for e in body["errors"]] == ["/tia/document_id"], body


# ---------------------------------------------------------------------------
# TOM documents


def test_tom_defaults(admin):
    resp = admin.post("/v1/tom-documents", {"owner": "self", "title": unique_name("Our TOM"),
                                            "version_label": "1", "effective_on": "2026-01-01"})
    assert_status(resp, 201)
    tom = resp.json()
    assert tom["status"] == "draft"
    assert tom["measures"] == {}
    assert "subprocessor_id" not in tom


@pytest.mark.parametrize("overrides,pointer", [
    ({"subprocessor_id": None}, "/subprocessor_id"),
    ({"owner": "self"}, "/subprocessor_id"),
    ({"effective_on": "2026-06-01", "next_review_on": "2026-05-01"}, "/next_review_on"),
    ({"owner": "vendor"}, "/owner"),
    ({"status": "retired"}, "/status"),
    ({"effective_on": None}, "/effective_on"),
    ({"version_label": None}, "/version_label"),
    ({"effective_on": "2026-02-29"}, "/effective_on"),
    ({"measures": {"physical_access": ["badge"]}}, "/measures/physical_access"),
    ({"measures": {"regular_testing": ["pen test", "pen test"]}}, "/measures/regular_testing"),
    ({"measures": {"regular_testing": "pen test"}}, "/measures/regular_testing"),
])
def test_tom_validation(admin, overrides, pointer):
    sp_id = new_sp(admin)["id"]
    body = override(tom_body(sp_id), overrides, delete=None)  # None drops a field
    assert_validation(admin.post("/v1/tom-documents", body), prefixes=(pointer,))


def test_tom_status_transitions(admin):
    sp_id = new_sp(admin)["id"]
    tom = admin.post("/v1/tom-documents", tom_body(sp_id, status="archived")).json()
    path = f"/v1/tom-documents/{tom['id']}"
    body = assert_problem(admin.patch(path, {"status": "active"}, if_match=1),
                          422, "unprocessable-entity")
    assert "archived" in body["detail"] and "active" in body["detail"]
    assert_problem(admin.patch(path, {"status": "draft"}, if_match=1), 422, "unprocessable-entity")

    tom = admin.post("/v1/tom-documents", tom_body(sp_id)).json()
    path = f"/v1/tom-documents/{tom['id']}"
    assert_problem(admin.patch(path, {"status": "superseded"}, if_match=1),
                   422, "unprocessable-entity")
    assert_status(admin.patch(path, {"status": "active"}, if_match=1), 200)
    assert_problem(admin.patch(path, {"status": "draft"}, if_match=2), 422, "unprocessable-entity")
    assert_status(admin.patch(path, {"status": "superseded"}, if_match=2), 200)
    assert_problem(admin.patch(path, {"status": "active"}, if_match=3), 422, "unprocessable-entity")
    assert_status(admin.patch(path, {"status": "archived"}, if_match=3), 200)
    assert admin.get(path).json()["version"] == 4


def test_tom_owner_switch_on_patch(admin):
    sp_id = new_sp(admin)["id"]
    tom = admin.post("/v1/tom-documents", tom_body(sp_id)).json()
    path = f"/v1/tom-documents/{tom['id']}"
    assert_validation(admin.patch(path, {"owner": "self"}, if_match=1), "/subprocessor_id")
    r = admin.patch(path, {"owner": "self", "subprocessor_id": None}, if_match=1)
    assert_status(r, 200)
    assert r.json()["owner"] == "self" and "subprocessor_id" not in r.json()


def test_tom_unknown_subprocessor(admin):
    body = assert_problem(admin.post("/v1/tom-documents", tom_body(UNKNOWN_SP)),
                          422, "unprocessable-entity")
    assert [e["pointer"] for e in body["errors"]] == ["/subprocessor_id"], body


# ---------------------------------------------------------------------------
# customers


def test_customer_defaults(admin):
    resp = admin.post("/v1/customers", {"name": unique_name("Muster AG")})
    assert_status(resp, 201)
    cu = resp.json()
    assert cu["notice_days"] == 30
    assert cu["objection_days"] == 30
    assert cu["authorisation"] == "general"
    assert cu["status"] == "active"
    items, _ = admin.list_all("/v1/customers", status="active", authorisation="general")
    assert cu["id"] in ids_of(items)


@pytest.mark.parametrize("overrides,pointer", [
    ({"name": None}, "/name"),
    ({"name": ""}, "/name"),
    ({"notice_days": 366}, "/notice_days"),
    ({"objection_days": 1.5}, "/objection_days"),
    ({"authorisation": "none"}, "/authorisation"),
    ({"status": "deleted"}, "/status"),
    ({"country": "Germany"}, "/country"),
    ({"contacts": [{"email": "not-an-email", "role": "privacy"}]}, "/contacts/0/email"),
    ({"contacts": [{"email": "a@b.example"}]}, "/contacts/0/role"),
    ({"contacts": [{"email": "a@b.example", "role": "privacy", "language": "fr"}]},
     "/contacts/0/language"),
    ({"contacts": [{"email": "a@b.example", "role": "privacy", "fax": "1"}]}, "/contacts/0/fax"),
    ({"dpa_agreement_reference": ""}, "/dpa_agreement_reference"),
])
def test_customer_validation(admin, overrides, pointer):
    body = override(customer_body(), overrides, delete=None)  # None drops a field
    assert_validation(admin.post("/v1/customers", body), pointer)


def test_customer_required_after_patch(admin):
    cu = admin.post("/v1/customers", customer_body()).json()
    # removing a defaulted required member makes the document invalid
    assert_validation(admin.patch(f"/v1/customers/{cu['id']}", {"notice_days": None}, if_match=1),
                      "/notice_days")
    r = admin.patch(f"/v1/customers/{cu['id']}", {"notice_days": 60, "status": "inactive"},
                    if_match=1)
    assert_status(r, 200)
    assert r.json()["notice_days"] == 60 and r.json()["status"] == "inactive"
    # customers have no transition rules: back to active
    assert_status(admin.patch(f"/v1/customers/{cu['id']}", {"status": "active"}, if_match=2), 200)


# ---------------------------------------------------------------------------
# referential integrity: a subprocessor that others refer to cannot be deleted


@pytest.mark.parametrize("kind,collection", [
    ("agreements", "agreements"), ("transfers", "transfers"), ("tom-documents", "tom_documents"),
])
def test_referenced_subprocessor_cannot_be_deleted(admin, kind, collection):
    spec = RESOURCES[kind]
    sp = new_sp(admin)
    dep = _create(admin, spec, sp["id"]).json()
    body = assert_problem(admin.delete(f"/v1/subprocessors/{sp['id']}", if_match=1),
                          409, "conflict")
    assert collection in body["detail"], body
    assert dep["id"] in body["detail"], body  # names what refers to it
    assert_status(admin.get(f"/v1/subprocessors/{sp['id']}"), 200)
    assert_status(admin.delete(f"{spec['path']}/{dep['id']}", if_match=1), 204)
    assert_status(admin.delete(f"/v1/subprocessors/{sp['id']}", if_match=1), 204)
    assert_problem(admin.get(f"/v1/subprocessors/{sp['id']}"), 404, "not-found")


def test_subprocessor_with_agreement_and_transfer(admin):
    sp = new_sp(admin)
    ag = admin.post("/v1/agreements", agreement_body(sp["id"])).json()
    tr = admin.post("/v1/transfers", transfer_body(sp["id"], agreement_id=ag["id"])).json()
    body = assert_problem(admin.delete(f"/v1/subprocessors/{sp['id']}", if_match=1),
                          409, "conflict")
    assert "agreements" in body["detail"] and "transfers" in body["detail"], body
    assert ag["id"] in body["detail"] and tr["id"] in body["detail"], body
    # the agreement is itself referred to by the transfer
    body = assert_problem(admin.delete(f"/v1/agreements/{ag['id']}", if_match=1), 409, "conflict")
    assert "transfers" in body["detail"] and tr["id"] in body["detail"], body
    assert_status(admin.delete(f"/v1/transfers/{tr['id']}", if_match=1), 204)
    body = assert_problem(admin.delete(f"/v1/subprocessors/{sp['id']}", if_match=1),
                          409, "conflict")
    assert "agreements" in body["detail"] and "transfers" not in body["detail"], body
    assert_status(admin.delete(f"/v1/agreements/{ag['id']}", if_match=1), 204)
    assert_status(admin.delete(f"/v1/subprocessors/{sp['id']}", if_match=1), 204)


def test_deleted_subprocessor_cannot_be_referenced(admin):
    sp = new_sp(admin)
    assert_status(admin.delete(f"/v1/subprocessors/{sp['id']}", if_match=1), 204)
    body = assert_problem(admin.post("/v1/agreements", agreement_body(sp["id"])),
                          422, "unprocessable-entity")
    assert [e["pointer"] for e in body["errors"]] == ["/subprocessor_id"], body


def test_agreement_cannot_supersede_itself(admin):
    sp = admin.create_sp(sp_body(legal_name=unique_name()))
    ag = admin.post("/v1/agreements", {"subprocessor_id": sp["id"], "type": "dpa", "title": "AVV"})
    assert_status(ag, 201)
    resp = admin.patch(f"/v1/agreements/{ag.json()['id']}", {"superseded_by": ag.json()["id"]}, if_match=1)
    body = assert_problem(resp, 400, "validation-error")
    assert [e["pointer"] for e in body["errors"]] == ["/superseded_by"]
