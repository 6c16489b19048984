"""Reference law: countries, adequacy decisions, SCC sets (service/domain/reference.c).

Seeded by `subreg migrate` from data/reference/*.json; readable by readers,
writable by admins only, with client-chosen ids. An admin's edit or deletion
survives the next migrate; an untouched seeded document stays as it was.

Tests that change reference data use their own stack (make_server): the
compliance rules read this data from the shared server."""

import pytest

from helpers import assert_problem, assert_status, assert_validation, audit_entries, ids_of

COUNTRIES = "/v1/reference/countries"
ADEQUACY = "/v1/reference/adequacy-decisions"
SCC = "/v1/reference/scc-sets"


def country_body(id_, eu=False, eea=False):
    return {"id": id_, "name": {"de": f"Land {id_}", "en": f"Country {id_}"}, "eu": eu, "eea": eea}


def adequacy_body(id_, **kw):
    body = {"id": id_, "jurisdiction": {"de": "Testland", "en": "Testland"}, "country": "AR",
            "act": "Decision 2003/490/EC", "adopted_on": "2003-06-30", "scope": "full"}
    body.update(kw)
    return body


# ---------------------------------------------------------------------------
# seeded data on the shared server


def test_seeded_countries(reader):
    items, pages = reader.list_all(COUNTRIES)
    ids = ids_of(items)
    assert len(set(ids)) == len(ids)
    assert len(ids) >= 249
    by_id = {it["id"]: it for it in items}
    de, no, us = by_id["DE"], by_id["NO"], by_id["US"]
    assert de["eu"] is True and de["eea"] is True
    assert de["name"] == {"de": "Deutschland", "en": "Germany"}
    assert no["eu"] is False and no["eea"] is True
    assert us["eu"] is False and us["eea"] is False
    for it in (de, no, us):
        assert it["version"] >= 1 and "_seed_hash" not in it
    # the EU has 27 member states, the EEA 30 (EU + IS, LI, NO); 7 codes are EU
    # territory of a member state (Åland, the French outermost regions)
    eu, _ = reader.list_all(COUNTRIES, eu="true")
    assert all(it["eu"] and it["eea"] for it in eu)
    assert {it["id"]: it["part_of"] for it in eu if "part_of" in it} == {
        "AX": "FI", "GF": "FR", "GP": "FR", "MF": "FR", "MQ": "FR", "RE": "FR", "YT": "FR"}
    eu = [it for it in eu if "part_of" not in it]
    assert len(eu) == 27
    eea, _ = reader.list_all(COUNTRIES, eea="true")
    eea = [it for it in eea if "part_of" not in it]
    assert sorted(set(ids_of(eea)) - set(ids_of(eu))) == ["IS", "LI", "NO"]
    assert_problem(reader.get(COUNTRIES, params={"eu": "yes"}), 400, "malformed-request")


def test_seeded_country_item(reader):
    resp = reader.get(f"{COUNTRIES}/NO")
    assert_status(resp, 200)
    doc = resp.json()
    assert resp.headers.get("ETag") == f'"{doc["version"]}"'
    assert doc["id"] == "NO" and doc["eea"] is True and doc["eu"] is False
    assert_problem(reader.get(f"{COUNTRIES}/XX"), 404, "not-found")
    assert_problem(reader.get(f"{COUNTRIES}/no"), 404, "not-found")


def test_seeded_adequacy_decisions(reader):
    uk = reader.get(f"{ADEQUACY}/uk")
    assert_status(uk, 200)
    uk = uk.json()
    assert uk["valid_until"] == "2031-12-27"
    assert uk["country"] == "GB" and uk["scope"] == "full" and uk["status"] == "in_force"
    us = reader.get(f"{ADEQUACY}/us").json()
    assert us["scope"] == "partial"
    assert us["condition"] == "dpf_participation"
    assert us["under_challenge"] is True
    assert us["country"] == "US"
    assert us["challenge_note"]["de"] and us["challenge_note"]["en"]
    items, _ = reader.list_all(ADEQUACY)
    assert {"uk", "us", "jp", "ch", "kr", "br"} <= set(ids_of(items))
    partial, _ = reader.list_all(ADEQUACY, scope="partial")
    assert "us" in ids_of(partial) and "uk" not in ids_of(partial)
    by_country, _ = reader.list_all(ADEQUACY, country="GB")
    assert ids_of(by_country) == ["ch-gb", "uk"]  # the EU's decision and Switzerland's Annex 1
    by_country, _ = reader.list_all(ADEQUACY, country="GB", regime="eu")
    assert ids_of(by_country) == ["uk"]
    assert uk["regime"] == "eu" and us["regime"] == "eu"


def test_seeded_adequacy_per_regime(reader):
    """Each regime's own list, with its acts and the days they start to count."""
    uk_us = reader.get(f"{ADEQUACY}/uk-us").json()
    assert uk_us["regime"] == "uk" and uk_us["country"] == "US"
    assert uk_us["in_force_from"] == "2023-10-12" and "2023/1028" in uk_us["act"]
    assert uk_us["condition"] == "dpf_participation" and uk_us["scope"] == "partial"
    ch_us = reader.get(f"{ADEQUACY}/ch-us").json()
    assert ch_us["regime"] == "ch" and ch_us["in_force_from"] == "2024-09-15"
    assert ch_us["condition"] == "dpf_participation"
    uk_kr = reader.get(f"{ADEQUACY}/uk-kr").json()
    assert uk_kr["in_force_from"] == "2022-12-19" and "2022/1213" in uk_kr["act"]
    for d in (uk_us, ch_us, uk_kr):
        assert d["source_url"].startswith("https://") and d["note"]["de"] and d["note"]["en"]
    uk, _ = reader.list_all(ADEQUACY, regime="uk")
    assert {"uk-ad", "uk-ar", "uk-ca", "uk-ch", "uk-fo", "uk-gg", "uk-gi", "uk-il", "uk-im", "uk-je",
            "uk-jp", "uk-kr", "uk-nz", "uk-us", "uk-uy"} == set(ids_of(uk))
    ch, _ = reader.list_all(ADEQUACY, regime="ch")
    assert {"ch-gb", "ch-us", "ch-mc"} <= set(ids_of(ch)) and "ch-jp" not in ids_of(ch)
    eu, _ = reader.list_all(ADEQUACY, regime="eu")
    assert len(eu) == 17 and all(d["regime"] == "eu" for d in eu)
    assert_problem(reader.get(ADEQUACY, params={"regime": "us"}), 400, "malformed-request")


def test_seeded_scc_sets(reader):
    resp = reader.get(f"{SCC}/eu-2010-87")
    assert_status(resp, 200)
    s = resp.json()
    assert s["valid_until"] == "2022-12-27"
    assert s["status"] == "repealed" and s["basis"] == "scc_2010" and s["regime"] == "eu"
    cur = reader.get(f"{SCC}/eu-2021-914").json()
    assert cur["status"] == "current" and cur["modules"] == [1, 2, 3, 4]
    repealed, _ = reader.list_all(SCC, status="repealed")
    assert {"eu-2001-497", "eu-2004-915", "eu-2010-87"} <= set(ids_of(repealed))
    assert "eu-2021-914" not in ids_of(repealed)


# ---------------------------------------------------------------------------
# roles and write rules (nothing is changed on the shared server)


@pytest.mark.parametrize("path", [COUNTRIES, ADEQUACY, SCC])
def test_readers_read_others_do_not_write(server, reader, editor, path):
    assert_status(reader.get(path, params={"limit": 5}), 200)
    assert_problem(server.anon().get(path), 401, "unauthorized")
    first = reader.get(path, params={"limit": 1}).json()["items"][0]
    item = f"{path}/{first['id']}"
    assert_status(reader.get(item), 200)
    assert_problem(reader.patch(item, {"id": first["id"]}, if_match=first["version"]),
                   403, "forbidden")
    assert_problem(editor.patch(item, {"source_url": "https://example.org/x"} if path != COUNTRIES
                                else {"eu": True}, if_match=first["version"]), 403, "forbidden")
    assert_problem(editor.delete(item, if_match=first["version"]), 403, "forbidden")
    assert_problem(editor.post(path, {"id": "new-thing"}), 403, "forbidden")
    # unchanged
    assert reader.get(item).json() == first


def test_post_with_an_existing_id_is_409(admin):
    de = admin.get(f"{COUNTRIES}/DE").json()
    assert_problem(admin.post(COUNTRIES, country_body("DE", eu=True, eea=True)), 409, "conflict")
    assert admin.get(f"{COUNTRIES}/DE").json() == de
    uk = admin.get(f"{ADEQUACY}/uk").json()
    assert_problem(admin.post(ADEQUACY, adequacy_body("uk")), 409, "conflict")
    assert admin.get(f"{ADEQUACY}/uk").json() == uk


@pytest.mark.parametrize("bad_id", ["zz", "de", "Zz", "ZZZ", "Z1"])
def test_post_country_with_bad_id_is_400(admin, bad_id):
    assert_validation(admin.post(COUNTRIES, country_body(bad_id)), "/id")


def test_post_country_rules(admin):
    # an EU member state outside the EEA does not exist
    assert_validation(admin.post(COUNTRIES, country_body("de", eu=True, eea=False)), "/id", "/eea")
    assert_validation(admin.post(COUNTRIES, {"id": "ZZ"}), "/name", "/eu", "/eea")
    body = country_body("ZZ")
    body["version"] = 1
    assert_validation(admin.post(COUNTRIES, body), "/version")


def test_post_adequacy_rules(admin):
    # partial adequacy must name its condition
    assert_validation(admin.post(ADEQUACY, adequacy_body("test-partial", scope="partial")),
                      "/condition")
    assert_validation(admin.post(ADEQUACY, adequacy_body("test-dates", valid_until="2001-01-01")),
                      "/valid_until")
    assert_validation(admin.post(ADEQUACY, adequacy_body("bad id!")), "/id")
    assert_validation(admin.post(ADEQUACY, adequacy_body("test-enum", condition="always")),
                      "/condition")
    assert_validation(admin.post(ADEQUACY, adequacy_body("test-regime", regime="us")), "/regime")
    assert_validation(admin.post(ADEQUACY, adequacy_body("test-from", in_force_from="2003-06-29")),
                      "/in_force_from")
    assert_validation(admin.post(ADEQUACY, adequacy_body("test-from2", in_force_from="2004-01-01",
                                                         valid_until="2003-12-31")), "/valid_until")


@pytest.mark.parametrize("path,id_", [(COUNTRIES, "DE"), (ADEQUACY, "uk"), (SCC, "eu-2010-87")])
def test_id_in_patch_is_400(admin, path, id_):
    doc = admin.get(f"{path}/{id_}").json()
    assert_validation(admin.patch(f"{path}/{id_}", {"id": id_}, if_match=doc["version"]), "/id")
    assert_validation(admin.patch(f"{path}/{id_}", {"id": "XX"}, if_match=doc["version"]), "/id")
    assert admin.get(f"{path}/{id_}").json() == doc


def test_patch_rules_and_preconditions(admin):
    doc = admin.get(f"{COUNTRIES}/NO").json()
    assert_problem(admin.patch(f"{COUNTRIES}/NO", {"eu": True, "eea": False}), 428,
                   "precondition-required")
    assert_validation(admin.patch(f"{COUNTRIES}/NO", {"eu": True, "eea": False},
                                  if_match=doc["version"]), "/eea")
    assert_problem(admin.patch(f"{COUNTRIES}/NO", {"eu": False}, if_match=doc["version"] + 5),
                   412, "precondition-failed")
    us = admin.get(f"{ADEQUACY}/us").json()
    assert_validation(admin.patch(f"{ADEQUACY}/us", {"condition": "none"}, if_match=us["version"]),
                      "/condition")
    assert admin.get(f"{COUNTRIES}/NO").json() == doc
    assert admin.get(f"{ADEQUACY}/us").json() == us


# ---------------------------------------------------------------------------
# admin edits and migrate (own stack)


def test_admin_edits_survive_migrate(make_server):
    srv = make_server()
    sub = "ref-admin"
    admin = srv.api(roles=["admin"], sub=sub)

    # a fresh database holds exactly the seeded reference data, all at version 1
    countries, _ = admin.list_all(COUNTRIES)
    assert len(countries) == 249
    assert all(c["version"] == 1 for c in countries)
    adequacy, _ = admin.list_all(ADEQUACY)
    assert len(adequacy) == 46
    sccs, _ = admin.list_all(SCC)
    assert len(sccs) == 9
    untouched_country = admin.get(f"{COUNTRIES}/FR").json()
    untouched_decision = admin.get(f"{ADEQUACY}/jp").json()

    # the admin changes the UK decision (e.g. a renewal) and a country name
    resp = admin.patch(f"{ADEQUACY}/uk", {"valid_until": "2037-12-27",
                                          "scope_note": None}, if_match=1)
    assert_status(resp, 200)
    assert resp.headers.get("ETag") == '"2"'
    uk = resp.json()
    assert uk["version"] == 2 and uk["valid_until"] == "2037-12-27" and "scope_note" not in uk
    resp = admin.patch(f"{COUNTRIES}/CZ", {"name": {"de": "Tschechien", "en": "Czechia"}},
                       if_match=1)
    assert_status(resp, 200)
    cz = resp.json()
    assert cz["version"] == 2 and cz["name"]["en"] == "Czechia"

    # audited with the admin as actor (the seed itself is by subreg-migrate)
    entries = audit_entries(admin, "uk", 2, entity_type="adequacy_decision")
    assert [e["action"] for e in entries] == ["create", "update"]
    assert entries[0]["actor"] == "subreg-migrate"
    assert entries[1]["actor"] == sub
    assert entries[1]["entity_version"] == 2
    assert entries[1]["before"]["valid_until"] == "2031-12-27"
    assert entries[1]["after"]["valid_until"] == "2037-12-27"
    entries = audit_entries(admin, "CZ", 2, entity_type="country")
    assert entries[-1]["actor"] == sub and entries[-1]["action"] == "update"

    # the admin deletes a seeded SCC set and a seeded country
    assert_problem(admin.delete(f"{SCC}/eu-2001-497"), 428, "precondition-required")
    assert_status(admin.delete(f"{SCC}/eu-2001-497", if_match=1), 204)
    assert_status(admin.delete(f"{COUNTRIES}/AQ", if_match=1), 204)
    assert_problem(admin.get(f"{SCC}/eu-2001-497"), 404, "not-found")

    # migrate again, twice, with the service running
    srv.migrate()
    srv.migrate()

    uk2 = admin.get(f"{ADEQUACY}/uk").json()
    assert uk2 == uk, "migrate overwrote the admin's edit of adequacy decision uk"
    assert admin.get(f"{COUNTRIES}/CZ").json() == cz
    assert_problem(admin.get(f"{SCC}/eu-2001-497"), 404, "not-found")
    assert_problem(admin.get(f"{COUNTRIES}/AQ"), 404, "not-found")
    assert admin.get(f"{COUNTRIES}/FR").json() == untouched_country
    assert admin.get(f"{ADEQUACY}/jp").json() == untouched_decision
    countries, _ = admin.list_all(COUNTRIES)
    assert len(countries) == 248 and "AQ" not in ids_of(countries)
    sccs, _ = admin.list_all(SCC)
    assert len(sccs) == 8 and "eu-2001-497" not in ids_of(sccs)
    # no audit entries from the re-runs
    entries = audit_entries(admin, "uk", 2, entity_type="adequacy_decision")
    assert len(entries) == 2
    assert len(audit_entries(admin, "FR", 1, entity_type="country")) == 1

    # and after a restart of the service everything is still as the admin left it
    srv.restart()
    assert admin.get(f"{ADEQUACY}/uk").json() == uk
    assert_problem(admin.get(f"{SCC}/eu-2001-497"), 404, "not-found")
    assert_problem(admin.get(f"{COUNTRIES}/AQ"), 404, "not-found")
    assert admin.get(f"{COUNTRIES}/FR").json()["version"] == 1


def test_admin_created_reference_document_can_be_deleted_and_recreated(admin):
    """Client-chosen ids: after a DELETE the id is free again (GET is 404), so a
    POST with it creates the document anew instead of 409. Its history goes on:
    the new document's version follows the deleted one's (create 1, delete 2,
    create again 3), so audit entries stay unique per entity version."""
    import uuid
    sid = f"test-set-{uuid.uuid4().hex[:10]}"
    body = {"id": sid, "name": {"de": "Testklauseln", "en": "Test clauses"},
            "legal_act": "Test Act 1/2026", "regime": "eu", "kind": "art28_clauses",
            "status": "current"}
    resp = admin.post(SCC, body)
    assert_status(resp, 201)
    assert resp.headers.get("Location") == f"{SCC}/{sid}"
    assert resp.json()["version"] == 1
    assert_problem(admin.post(SCC, body), 409, "conflict")
    assert_status(admin.delete(f"{SCC}/{sid}", if_match=1), 204)
    assert_problem(admin.get(f"{SCC}/{sid}"), 404, "not-found")
    resp = admin.post(SCC, body)
    try:
        assert_status(resp, 201)
        assert resp.json()["version"] == 3
        assert resp.headers["ETag"] == '"3"'
        actions = [(e["action"], e["entity_version"]) for e in
                   admin.get(f"/v1/audit?entity_id={sid}").json()["items"]]
        assert actions == [("create", 1), ("delete", 2), ("create", 3)]
    finally:
        cur = admin.get(f"{SCC}/{sid}")
        if cur.status_code == 200:
            admin.delete(f"{SCC}/{sid}", if_match=cur.json()["version"])


def test_a_create_that_never_happened_is_not_audited(make_server):
    """A create of a client-chosen id whose outcome was unknown leaves its version
    claimed (store.h). Past its lease the claim is decided from the document: no
    document, so it never happened. The next create takes the version on the spot,
    and the claim's own audit record is never written."""
    import time
    import uuid
    import pymongo
    srv = make_server()
    admin = srv.api(roles=["admin"], sub="phantom")
    db = pymongo.MongoClient(srv.db.uri)["subreg_test"]
    sid = f"test-set-{uuid.uuid4().hex[:10]}"
    body = {"id": sid, "name": {"de": "Testklauseln", "en": "Test clauses"},
            "legal_act": "Test Act 1/2026", "regime": "eu", "kind": "art28_clauses", "status": "current"}
    # the claim a failed create leaves behind, a minute old (the harness's lease is 1.5 s)
    other = f"test-set-{uuid.uuid4().hex[:10]}"
    assert_status(admin.post(SCC, dict(body, id=other)), 201)
    template = db.audit.find_one({"entity_id": other})
    record = dict(template, _id=f"au_phantom{uuid.uuid4().hex[:10]}", entity_id=sid, actor="phantom-writer",
                  after=dict(template["after"], id=sid))
    record["id"] = record.pop("_id")
    db.claims.insert_one({"_id": f"scc_set/{sid}/1", "collection": "ref_scc_sets",
                          "claimed_ms": int(time.time() * 1000) - 60_000, "emits": True, "record": record})
    resp = admin.post(SCC, body)
    assert_status(resp, 201)
    assert resp.json()["version"] == 1  # the leftover was settled as not applied
    assert db.claims.count_documents({"_id": {"$regex": f"^scc_set/{sid}/"}}) == 0
    entries = audit_entries(admin, sid, 1)
    assert [(e["action"], e["entity_version"], e["actor"]) for e in entries] == [("create", 1, "phantom")], entries
