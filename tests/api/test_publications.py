"""Publications of the public subprocessor list (issue 4): publish, the diff,
the notice rule, scheduled effect (exactly once across instances), objections,
compliance rules 8 (notice_period) and 9 (public_list_drift), roles.

Publications are global to a database, so this module runs on its own stack
(`pub_server`: one module-scoped database + subreg) and never on the shared
session server;
the scheduled-effect test takes two more service instances on one database.
"""

import datetime as dt
import time
import uuid

import pytest
import requests

from helpers import (
    PUBLIC,
    PUBLIC_KEYS,
    assert_problem,
    assert_status,
    assert_validation,
    describe,
    minimal_body,
    parse_ts,
    sp_body,
    unique_name,
    wait_public_ready,
    wait_until,
)

PUBS = "/v1/publications"
SP = "/v1/subprocessors"


# ---------------------------------------------------------------------------
# helpers (local to this module)


def iso(when):
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def in_(seconds=0, days=0):
    """RFC 3339 UTC timestamp `seconds`/`days` from now."""
    return iso(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds, days=days))


def summary(tag="change"):
    return {"de": f"Änderung: {tag}", "en": f"Change: {tag}"}


def publish(api, expect=201, **body):
    body.setdefault("summary", summary(uuid.uuid4().hex[:6]))
    if body.get("override_notice") is True:
        body.setdefault("override_reason", {"de": "Dringend", "en": "Urgent"})
    resp = api.post(PUBS, body)
    assert resp.status_code == expect, f"expected {expect}, got {describe(resp)}"
    return resp.json() if resp.status_code == 201 else resp


def publish_pending(api):
    """Publish whatever is pending, effective now (override), so that the next
    publication's diff holds only what a test changes. 409: nothing pending."""
    resp = api.post(PUBS, {"summary": summary("sync"), "override_notice": True,
                           "override_reason": summary("sync")})
    assert resp.status_code in (201, 409), describe(resp)
    return resp.json() if resp.status_code == 201 else None


def active_sp(api, **overrides):
    body = minimal_body(legal_name=unique_name("Pub"), status="active")
    body.update(overrides)
    return api.create_sp(body)


def retire(api, sp):
    return api.patch_sp(sp["id"], {"status": "retired"}, sp["version"])


def new_customer(api, **fields):
    body = {"name": unique_name("Kunde"), "notice_days": 30, "objection_days": 14}
    body.update(fields)
    resp = api.post("/v1/customers", body)
    assert_status(resp, 201)
    return resp.json()


def findings(api, rule, **params):
    resp = api.get("/v1/compliance/findings", params=dict(params, rule=rule))
    assert_status(resp, 200)
    return resp.json()["items"]


def audit_of(api, number):
    items, _ = api.list_all("/v1/audit", entity_type="publication", entity_id=str(number))
    return items


def get_pub(api, number):
    resp = api.get(f"{PUBS}/{number}")
    assert_status(resp, 200)
    return resp.json()


def field_map(change):
    return {f["field"]: f for f in change["fields"]}


def expected_items(api):
    """What a publication must freeze: every subprocessor that is not retired and
    not unlisted, ordered by legal_name (bytewise), then id."""
    sps, _ = api.list_all(SP)
    keep = [s for s in sps if s["status"] != "retired" and s.get("public", {}).get("listed", True)]
    return sorted(keep, key=lambda s: (s["legal_name"].encode(), s["id"].encode()))


# ---------------------------------------------------------------------------
# the module's admin and first version (on its own stack, `pub_server` in conftest.py)


@pytest.fixture(scope="module")
def padmin(pub_server):
    return pub_server.api(roles=["admin"], sub="publisher")


@pytest.fixture(scope="module")
def first(pub_server, padmin):
    """Version 1: two listed active subprocessors, one unlisted, one retired."""
    listed_a = padmin.create_sp(sp_body(legal_name="Alpha Rechenzentrum GmbH", status="active"))
    listed_b = active_sp(padmin, legal_name="Beta Mail Ltd")
    unlisted = active_sp(padmin, legal_name="Gamma Unlisted GmbH",
                         public={"listed": False})
    gone = padmin.create_sp(minimal_body(legal_name="Delta Withdrawn GmbH"))
    gone = retire(padmin, gone)
    resp = padmin.post(PUBS, {"summary": {"de": "Erste Fassung", "en": "First version"}})
    assert_status(resp, 201)
    return {"resp": resp, "pub": resp.json(), "listed": [listed_a, listed_b],
            "unlisted": unlisted, "retired": gone}


# ---------------------------------------------------------------------------
# publish and the diff


def test_first_publication_freezes_every_listed_subprocessor(padmin, first):
    resp, pub = first["resp"], first["pub"]
    assert resp.headers.get("Location") == f"{PUBS}/1", describe(resp)
    assert resp.headers.get("ETag"), describe(resp)
    assert pub["number"] == 1
    assert pub["summary"] == {"de": "Erste Fassung", "en": "First version"}
    assert pub["override_notice"] is False
    assert pub["objections"] == {"total": 0, "open": 0}
    published, effective = parse_ts(pub["published_at"]), parse_ts(pub["effective_at"])
    now = dt.datetime.now(dt.timezone.utc)
    assert abs((published - now).total_seconds()) < 60
    assert abs((effective - published).total_seconds()) <= 1, "default effective_at is now"
    parse_ts(pub["objection_deadline"])

    ids = [i["id"] for i in pub["items"]]
    assert ids == [s["id"] for s in first["listed"]], pub["items"]
    assert first["unlisted"]["id"] not in ids and first["retired"]["id"] not in ids
    for item in pub["items"]:
        assert set(item) <= PUBLIC_KEYS, f"non-public keys {set(item) - PUBLIC_KEYS}"
    alpha = pub["items"][0]
    src = first["listed"][0]
    for key in ("legal_name", "trading_name", "hq_country", "website", "category", "role",
                "purpose", "data_categories", "data_subjects", "locations"):
        assert alpha[key] == src[key], key
    assert alpha["description"] == src["public"]["description"]
    assert alpha["dpf_participating"] is False
    # The first publication announces everything as added.
    assert pub["diff"] == {"added": pub["items"], "removed": [], "changed": []}

    # GET returns the same document; the list has it without the items.
    got = get_pub(padmin, 1)
    for key in ("number", "published_at", "effective_at", "summary", "diff", "items"):
        assert got[key] == pub[key], key
    listing = padmin.get(PUBS)
    assert_status(listing, 200)
    one = [p for p in listing.json()["items"] if p["number"] == 1]
    assert len(one) == 1 and "items" not in one[0]
    assert one[0]["objections"] == {"total": 0, "open": 0}


def test_publication_matches_the_registry(padmin, first):
    """Whatever version is the latest, after syncing it holds exactly the
    registry's listed, non-retired subprocessors in the documented order."""
    publish_pending(padmin)
    latest = max(p["number"] for p in padmin.get(PUBS).json()["items"])
    pub = get_pub(padmin, latest)
    assert [i["id"] for i in pub["items"]] == [s["id"] for s in expected_items(padmin)]


def test_nothing_changed_is_409(padmin, first):
    publish_pending(padmin)
    assert_problem(padmin.post(PUBS, {"summary": summary("again")}), 409, "conflict")


def test_internal_only_change_is_409(padmin, first):
    """Internal fields are not in the public view: changing only them is no change."""
    publish_pending(padmin)
    sp = padmin.get_sp(first["listed"][0]["id"])
    padmin.patch_sp(sp["id"], {
        "notes": f"internal {uuid.uuid4()}",
        "privacy_contact": {"name": "Someone Else", "email": "else@example.org"},
        "identifiers": {"register_number": f"HRB {uuid.uuid4().int % 10**6}"},
        "last_review_on": "2026-02-01",
    }, sp["version"])
    assert_problem(padmin.post(PUBS, {"summary": summary("internal")}), 409, "conflict")


def test_diff_added_removed_changed(padmin, first):
    publish_pending(padmin)
    before_pub = get_pub(padmin, max(p["number"] for p in padmin.get(PUBS).json()["items"]))

    to_change = active_sp(padmin, legal_name=unique_name("Changer"),
                          locations=[{"country": "DE", "role": "hosting"}])
    to_retire = active_sp(padmin, legal_name=unique_name("Retiree"))
    publish_pending(padmin)
    base = get_pub(padmin, before_pub["number"] + 1)
    old_view = {i["id"]: i for i in base["items"]}
    assert to_change["id"] in old_view and to_retire["id"] in old_view

    added = active_sp(padmin, legal_name=unique_name("Newcomer"))
    new_purpose = {"de": to_change["purpose"]["de"], "en": "Server hosting and backups"}
    new_locations = [{"country": "DE", "role": "hosting"},
                     {"country": "FI", "region": "eu-north", "role": "backup"}]
    changed = padmin.patch_sp(to_change["id"], {
        "purpose": new_purpose, "locations": new_locations,
        "notes": "internal note that must not show up in the diff",
    }, to_change["version"])
    retire(padmin, to_retire)

    pub = publish(padmin, override_notice=True, summary=summary("diff"))
    assert pub["number"] == base["number"] + 1
    diff = pub["diff"]
    assert [a["id"] for a in diff["added"]] == [added["id"]], diff
    new_entry = next(i for i in pub["items"] if i["id"] == added["id"])
    assert diff["added"][0] == new_entry
    assert [r["id"] for r in diff["removed"]] == [to_retire["id"]], diff
    assert diff["removed"][0] == old_view[to_retire["id"]], "removed shows the entry as it was"
    assert [c["id"] for c in diff["changed"]] == [to_change["id"]], diff
    change = diff["changed"][0]
    assert change["legal_name"] == changed["legal_name"]
    fields = field_map(change)
    assert set(fields) == {"purpose", "locations"}, change["fields"]
    assert fields["purpose"]["before"] == to_change["purpose"]
    assert fields["purpose"]["after"] == new_purpose
    assert fields["locations"]["before"] == [{"country": "DE", "role": "hosting"}]
    assert fields["locations"]["after"] == new_locations
    assert to_retire["id"] not in [i["id"] for i in pub["items"]]
    assert [i["id"] for i in pub["items"]] == [s["id"] for s in expected_items(padmin)]

    # The stored publication and its public form carry the same diff.
    assert get_pub(padmin, pub["number"])["diff"] == diff
    public = wait_until(
        lambda: (lambda r: r if r.status_code == 200 else None)(
            requests.get(f"{padmin.base_url}{PUBLIC}/versions/{pub['number']}", timeout=10)),
        5, message="the public version detail")
    assert public.json()["changes"] == diff


def test_field_removed_from_public_view_is_a_change(padmin, first):
    """A field that disappears from the public view (e.g. website dropped)
    shows up with after = null."""
    publish_pending(padmin)
    sp = active_sp(padmin, legal_name=unique_name("Dropper"), website="https://drop.example.com/")
    publish_pending(padmin)
    sp = padmin.patch_sp(sp["id"], {"website": None}, sp["version"])
    assert "website" not in sp
    pub = publish(padmin, override_notice=True)
    assert not pub["diff"]["added"] and not pub["diff"]["removed"]
    (change,) = pub["diff"]["changed"]
    assert change["id"] == sp["id"]
    assert change["fields"] == [{"field": "website", "before": "https://drop.example.com/", "after": None}]


# ---------------------------------------------------------------------------
# the notice rule (Art. 28(2))


def test_notice_rule(padmin, first):
    new_customer(padmin, notice_days=30)
    publish_pending(padmin)

    # An addition effective in one day breaks the 30 days' notice: 422.
    newcomer = active_sp(padmin, legal_name=unique_name("Short notice"))
    resp = padmin.post(PUBS, {"summary": summary("short"), "effective_at": in_(days=1)})
    body = assert_problem(resp, 422, "unprocessable-entity")
    assert "30" in body["detail"], body

    # The override is accepted and recorded, in the publication and in the audit log.
    pub = publish(padmin, summary=summary("override"), effective_at=in_(days=1),
                  override_notice=True)
    assert pub["override_notice"] is True
    assert [a["id"] for a in pub["diff"]["added"]] == [newcomer["id"]]
    assert get_pub(padmin, pub["number"])["override_notice"] is True
    created = [e for e in audit_of(padmin, pub["number"]) if e["action"] == "create"]
    assert len(created) == 1, created
    assert created[0]["actor"] == "publisher"
    assert created[0]["after"]["override_notice"] is True

    # 31 days ahead respects the notice: no override needed. An inactive
    # customer's longer promises do not count.
    new_customer(padmin, status="inactive", notice_days=365, objection_days=200)
    active_sp(padmin, legal_name=unique_name("Long notice"))
    pub = publish(padmin, summary=summary("long"), effective_at=in_(days=31))
    assert pub["override_notice"] is False
    assert parse_ts(pub["effective_at"]) > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)

    # A change of an entry needs the same notice.
    sp = padmin.get_sp(newcomer["id"])
    padmin.patch_sp(sp["id"], {"purpose": {"de": "Neu", "en": "New"}}, sp["version"])
    assert_problem(padmin.post(PUBS, {"summary": summary("chg"), "effective_at": in_(days=2)}),
                   422, "unprocessable-entity")
    publish_pending(padmin)

    # A removal alone needs no notice.
    retire(padmin, padmin.get_sp(newcomer["id"]))
    pub = publish(padmin, summary=summary("removal"))
    assert pub["override_notice"] is False
    assert [r["id"] for r in pub["diff"]["removed"]] == [newcomer["id"]]


def test_effective_at_in_the_past_is_422(padmin, first):
    active_sp(padmin, legal_name=unique_name("Past"))
    for payload in ({"effective_at": in_(seconds=-7200)},
                    {"effective_at": in_(days=-3), "override_notice": True,
                     "override_reason": summary("past")}):
        resp = padmin.post(PUBS, dict(payload, summary=summary("past")))
        assert_problem(resp, 422, "unprocessable-entity")


@pytest.mark.parametrize("body, pointer", [
    ({}, "/summary"),
    ({"effective_at": "2030-01-01T00:00:00Z"}, "/summary"),
    ({"summary": {"de": "Nur Deutsch"}}, "/summary/en"),
    ({"summary": "plain text"}, "/summary"),
    ({"summary": {"de": "a", "en": "b"}, "effective_at": "tomorrow"}, "/effective_at"),
    ({"summary": {"de": "a", "en": "b"}, "override_notice": "yes"}, "/override_notice"),
    ({"summary": {"de": "a", "en": "b"}, "items": []}, "/items"),
    # a shortened notice is shown to customers with its reason: no override without one
    ({"summary": {"de": "a", "en": "b"}, "override_notice": True}, "/override_reason"),
    ({"summary": {"de": "a", "en": "b"}, "override_notice": True, "override_reason": {"de": "x"}},
     "/override_reason/en"),
    ({"summary": {"de": "a", "en": "b"}, "replaces": 1}, "/replaces"),
])
def test_publish_validation(padmin, first, body, pointer):
    assert_validation(padmin.post(PUBS, body), pointer)


def test_unknown_publication_is_404(padmin, first):
    assert_problem(padmin.get(f"{PUBS}/9999"), 404, "not-found")


# ---------------------------------------------------------------------------
# roles


def test_roles(pub_server, first):
    editor = pub_server.api(roles=["editor"], sub="eddie")
    reader = pub_server.api(roles=["reader"], sub="rita")
    assert_problem(editor.post(PUBS, {"summary": summary("editor")}), 403, "forbidden")
    assert_problem(reader.post(PUBS, {"summary": summary("reader")}), 403, "forbidden")
    resp = pub_server.anon().post(PUBS, {"summary": summary("anon")})
    assert_problem(resp, 401, "unauthorized")
    resp = reader.get(PUBS)
    assert_status(resp, 200)
    assert any(p["number"] == 1 for p in resp.json()["items"])
    assert_status(reader.get(f"{PUBS}/1"), 200)
    assert_problem(pub_server.anon().get(PUBS), 401, "unauthorized")


# ---------------------------------------------------------------------------
# objections, compliance rule 8


def objection_findings(api, number):
    return [f for f in findings(api, "notice_period")
            if f["entity_id"] == str(number) and "objection" in f["message"]["en"]]


def test_objections_counted_and_rule_8(pub_server, padmin, first):
    editor = pub_server.api(roles=["editor"], sub="eddie")
    reader = pub_server.api(roles=["reader"], sub="rita")
    customer = new_customer(padmin, notice_days=30)
    publish_pending(padmin)
    active_sp(padmin, legal_name=unique_name("Objected"))
    pub = publish(padmin, summary=summary("announced"), effective_at=in_(days=40))
    n = pub["number"]
    path = f"{PUBS}/{n}/objections"
    # the objection period: the longest promised to an active customer (14 days here)
    deadline = parse_ts(pub["objection_deadline"]) - parse_ts(pub["published_at"])
    assert deadline == dt.timedelta(days=14), pub["objection_deadline"]
    assert not objection_findings(padmin, n)

    resp = editor.post(path, {"customer_id": customer["id"], "reason": "Drittland ohne TIA",
                              "received_on": dt.date.today().isoformat()})
    assert_status(resp, 201)
    ob = resp.json()
    assert ob["id"].startswith("ob_") and ob["status"] == "open"
    assert ob["publication_id"] == str(n) and ob["customer_id"] == customer["id"]
    assert resp.headers.get("Location") == f"/v1/objections/{ob['id']}", describe(resp)
    assert get_pub(padmin, n)["objections"] == {"total": 1, "open": 1}
    listed = [p for p in reader.get(PUBS).json()["items"] if p["number"] == n]
    assert listed[0]["objections"] == {"total": 1, "open": 1}
    items = reader.get(path).json()["items"]
    assert [o["id"] for o in items] == [ob["id"]]
    # ?publication_id= on the publication's own list: both must hold (was 503)
    resp = reader.get(path, params={"publication_id": str(n)})
    assert_status(resp, 200)
    assert [o["id"] for o in resp.json()["items"]] == [ob["id"]]
    resp = reader.get(path, params={"publication_id": str(n + 1)})
    assert_status(resp, 200)
    assert resp.json() == {"items": []}
    assert_status(reader.get(f"/v1/objections/{ob['id']}"), 200)

    # rule 8: an announced version with an open objection
    (finding,) = objection_findings(padmin, n)
    assert finding["entity_type"] == "publication"
    assert finding["href"] == f"{PUBS}/{n}"
    assert finding["severity"] in ("critical", "high", "medium", "low", "info")

    # withdrawn: still counted, no longer open, the finding disappears
    ob = editor.patch(f"/v1/objections/{ob['id']}", {"status": "withdrawn"}, if_match=ob["version"])
    assert_status(ob, 200)
    assert ob.json()["status"] == "withdrawn"
    assert get_pub(padmin, n)["objections"] == {"total": 1, "open": 0}
    assert not objection_findings(padmin, n)

    second = editor.post(path, {"customer_id": customer["id"], "reason": "zweiter Einspruch"})
    assert_status(second, 201)
    assert get_pub(padmin, n)["objections"] == {"total": 2, "open": 1}
    assert len(objection_findings(padmin, n)) == 1
    second = second.json()
    resp = editor.patch(f"/v1/objections/{second['id']}",
                        {"status": "resolved", "resolution": "TIA nachgereicht"},
                        if_match=second["version"])
    assert_status(resp, 200)
    assert get_pub(padmin, n)["objections"] == {"total": 2, "open": 0}
    assert not objection_findings(padmin, n)


def test_objection_errors(pub_server, padmin, first):
    editor = pub_server.api(roles=["editor"], sub="eddie")
    reader = pub_server.api(roles=["reader"], sub="rita")
    customer = new_customer(padmin)
    path = f"{PUBS}/1/objections"
    # unknown customer
    resp = editor.post(path, {"customer_id": "cu_01ARZ3NDEKTSV4RRFFQ69G5FAV", "reason": "x"})
    assert_problem(resp, 422, "unprocessable-entity")
    # unknown publication
    resp = editor.post(f"{PUBS}/9999/objections", {"customer_id": customer["id"], "reason": "x"})
    assert_problem(resp, 404, "not-found")
    # customer_id is required; status must be one of the three
    assert_validation(editor.post(path, {"reason": "x"}), "/customer_id")
    assert_validation(editor.post(path, {"customer_id": customer["id"], "status": "pending"}),
                      "/status")
    # readers cannot record objections
    assert_problem(reader.post(path, {"customer_id": customer["id"], "reason": "x"}),
                   403, "forbidden")
    assert get_pub(padmin, 1)["objections"]["total"] == 0


# ---------------------------------------------------------------------------
# compliance rule 9: public list drift


def drift(api, sp_id):
    return findings(api, "public_list_drift", subprocessor_id=sp_id)


def test_public_list_drift(padmin, first):
    publish_pending(padmin)
    sp = active_sp(padmin, legal_name=unique_name("Drifter"))
    (f,) = drift(padmin, sp["id"])
    assert f["entity_type"] == "subprocessor" and f["entity_id"] == sp["id"]
    assert "missing" in f["message"]["en"], f

    # a proposed or unlisted subprocessor is no drift
    proposed = padmin.create_sp(minimal_body(legal_name=unique_name("Proposed")))
    assert not drift(padmin, proposed["id"])
    unlisted = active_sp(padmin, legal_name=unique_name("Hidden"), public={"listed": False})
    assert not drift(padmin, unlisted["id"])

    publish_pending(padmin)
    assert not drift(padmin, sp["id"]), "published: no drift any more"

    # retired but still on the list in effect
    retire(padmin, padmin.get_sp(sp["id"]))
    (f,) = drift(padmin, sp["id"])
    assert "retired" in f["message"]["en"], f
    publish_pending(padmin)
    assert not drift(padmin, sp["id"])


def test_drift_measured_against_the_version_in_effect(padmin, first):
    """A version announced for later does not end the drift before it takes effect."""
    new_customer(padmin, notice_days=30)
    publish_pending(padmin)
    sp = active_sp(padmin, legal_name=unique_name("Later"))
    publish(padmin, summary=summary("later"), effective_at=in_(days=35))
    assert len(drift(padmin, sp["id"])) == 1
    publish_pending(padmin)  # nothing new is pending: 409, still drifting
    assert len(drift(padmin, sp["id"])) == 1


# ---------------------------------------------------------------------------
# nothing leaves the published list silently (issue 11, part 4)


def delete_sp(api, sp_id):
    return api.delete(f"{SP}/{sp_id}", if_match=api.get_sp(sp_id)["version"])


def test_deleting_a_published_subprocessor_is_409(padmin, first):
    """On the list in effect or on an announced version: 409 naming the
    publication; retired and published without it: deleted."""
    publish_pending(padmin)
    sp = active_sp(padmin, legal_name=unique_name("Kept"))
    in_effect = publish(padmin, summary=summary("kept"), override_notice=True)
    resp = delete_sp(padmin, sp["id"])
    assert_problem(resp, 409, "conflict")
    assert f"publication {in_effect['number']} (in effect)" in resp.json()["detail"], resp.json()
    assert "retire it and publish a version without it first" in resp.json()["detail"]
    assert padmin.get_sp(sp["id"])["id"] == sp["id"], "the refused delete changed nothing"

    # retired but the list in effect still shows it: still 409
    retire(padmin, padmin.get_sp(sp["id"]))
    assert_problem(delete_sp(padmin, sp["id"]), 409, "conflict")
    # published without it: deleted
    publish(padmin, summary=summary("without"))
    assert_status(delete_sp(padmin, sp["id"]), 204)

    # only on an announced version (not yet in effect): 409 naming it
    later = active_sp(padmin, legal_name=unique_name("Announced"))
    announced = publish(padmin, summary=summary("announced"), effective_at=in_(days=40))
    resp = delete_sp(padmin, later["id"])
    assert_problem(resp, 409, "conflict")
    assert (f"publication {announced['number']} (announced for {announced['effective_at']})"
            in resp.json()["detail"]), resp.json()
    # never published at all: deleted as before
    draft = padmin.create_sp(minimal_body(legal_name=unique_name("Draft")))
    assert_status(delete_sp(padmin, draft["id"]), 204)


def test_drift_covers_an_entry_deleted_behind_the_api(pub_server, padmin, first):
    """Deleted by other means (an import, a manual edit): still on the list in effect."""
    import pymongo

    publish_pending(padmin)
    sp = active_sp(padmin, legal_name=unique_name("Vanished"))
    publish(padmin, summary=summary("vanished"), override_notice=True)
    assert not drift(padmin, sp["id"])
    db = pymongo.MongoClient(pub_server.db.uri)["subreg_test"]
    assert db["subprocessors"].delete_one({"_id": sp["id"]}).deleted_count == 1
    (f,) = drift(padmin, sp["id"])
    assert f["entity_type"] == "subprocessor" and f["severity"] == "medium"
    assert f"{sp['legal_name']} ({sp['id']}) was deleted from the registry" in f["message"]["en"], f
    assert "aus dem Register gelöscht" in f["message"]["de"]
    publish(padmin, summary=summary("gone"))  # a version without it ends the drift
    assert not drift(padmin, sp["id"])


def test_override_notice_is_a_finding_until_a_regular_version(padmin, first):
    new_customer(padmin, notice_days=30)
    publish_pending(padmin)
    urgent = active_sp(padmin, legal_name=unique_name("Urgent"))
    reason = {"de": "Sicherheitslücke beim alten Anbieter", "en": "Security flaw at the old provider"}
    pub = publish(padmin, summary=summary("urgent"), override_notice=True, override_reason=reason)
    assert pub["override_notice"] is True and pub["override_reason"] == reason
    assert get_pub(padmin, pub["number"])["override_reason"] == reason
    (f,) = [x for x in findings(padmin, "override_notice") if x["entity_id"] == str(pub["number"])]
    assert f["severity"] == "medium" and f["since"] == pub["effective_at"][:10]
    assert reason["en"] in f["message"]["en"] and reason["de"] in f["message"]["de"]
    # an override without shortening anything keeps no reason and is no finding
    calm = active_sp(padmin, legal_name=unique_name("Relaxed"))
    relaxed = publish(padmin, summary=summary("relaxed"), effective_at=in_(days=31),
                      override_notice=True, override_reason=reason)
    assert relaxed["override_notice"] is False and "override_reason" not in relaxed
    # announced, not in effect: the shortened notice still stands
    assert [x for x in findings(padmin, "override_notice") if x["entity_id"] == str(pub["number"])]
    # a regular version in effect ends it (removals alone need no notice: effective now)
    for sp in (urgent, calm):
        retire(padmin, padmin.get_sp(sp["id"]))
    regular = publish(padmin, summary=summary("regular"), effective_at=in_(seconds=1))
    assert regular["override_notice"] is False and regular["replaces"] == relaxed["number"]
    time.sleep(1.5)
    assert not [x for x in findings(padmin, "override_notice") if x["entity_id"] == str(pub["number"])]


def test_a_new_version_replaces_the_announced_one(padmin, first):
    """Published while another is announced: it replaces that announcement, its
    changes are against the version in effect, and the replaced one never takes
    effect."""
    publish_pending(padmin)
    base = max(p["number"] for p in padmin.get(PUBS).json()["items"])
    one = active_sp(padmin, legal_name=unique_name("One"))
    announced = publish(padmin, summary=summary("one"), override_notice=True, effective_at=in_(seconds=3))
    assert announced["diff_against"] == base and "replaces" not in announced
    two = active_sp(padmin, legal_name=unique_name("Two"))
    replacing = publish(padmin, summary=summary("two"), effective_at=in_(days=40))
    assert replacing["replaces"] == announced["number"]
    assert replacing["diff_against"] == base
    # the full change against what customers have: both additions, and the notice for them
    assert sorted(a["id"] for a in replacing["diff"]["added"]) == sorted([one["id"], two["id"]])
    assert replacing["notice_days_required"] == 30
    time.sleep(4)  # past the replaced version's effective_at
    replaced = get_pub(padmin, announced["number"])
    assert "effective_recorded_at" not in replaced and replaced["version"] == 1, replaced
    assert not [r for r in audit_of(padmin, announced["number"]) if r["action"] == "effective"]
    # still nothing changed against the latest version: 409
    publish(padmin, expect=409, summary=summary("again"), effective_at=in_(days=40))



# ---------------------------------------------------------------------------
# scheduled effect, exactly once across two instances


def public_json(srv):
    resp = requests.get(srv.url + PUBLIC, timeout=10)
    assert resp.status_code == 200, describe(resp)
    return resp.json()


def test_scheduled_version_takes_effect_once(make_server):
    one = make_server()
    two = make_server(share_db_with=one)
    wait_public_ready(one)
    wait_public_ready(two)
    admin = one.api(roles=["admin"], sub="scheduler-test")
    active_sp(admin, legal_name="Erster Dienst GmbH")
    v1 = publish(admin, summary=summary("v1"))
    assert v1["number"] == 1
    new_customer(admin, notice_days=30)
    added = active_sp(admin, legal_name="Zweiter Dienst GmbH")

    v2 = publish(admin, summary=summary("v2"), effective_at=in_(seconds=3), override_notice=True)
    assert v2["override_notice"] is True
    effective = parse_ts(v2["effective_at"]).timestamp()

    # Announced: both instances show version 1 in effect and version 2 upcoming first.
    for srv in (one, two):
        body = wait_until(lambda: (lambda b: b if b["upcoming"] else None)(public_json(srv)),
                          2.5, interval=0.1, message=f"upcoming on {srv.name}")
        assert time.time() < effective, "the test was too slow to see the announcement"
        assert body["version"] == 1, body
        up = body["upcoming"][0]
        assert up["version"] == 2
        assert up["effective_at"] == v2["effective_at"]
        assert up["objection_deadline"] == v2["objection_deadline"]
        assert up["summary"] == v2["summary"]
        assert [a["id"] for a in up["changes"]["added"]] == [added["id"]]
        assert added["id"] not in [i["id"] for i in body["items"]]

    # It takes effect by itself, on both instances, not before its time.
    for srv in (one, two):
        body = wait_until(lambda: (lambda b: b if b["version"] == 2 else None)(public_json(srv)),
                          8, interval=0.1, message=f"version 2 in effect on {srv.name}")
        assert time.time() >= effective - 1.0, "took effect before effective_at"
        assert body["upcoming"] == []
        assert body["effective_at"] == v2["effective_at"]
        assert added["id"] in [i["id"] for i in body["items"]]
    later = time.time()
    assert later - effective < 8

    # Exactly one "effective" record per version, although two schedulers ran.
    time.sleep(1.5)  # several more poll rounds on both instances
    for number in (1, 2):
        effective_records = [e for e in audit_of(admin, number) if e["action"] == "effective"]
        assert len(effective_records) == 1, effective_records
        assert effective_records[0]["actor"] == "subreg-scheduler"
    pub = get_pub(admin, 2)
    assert pub["effective_at"] == v2["effective_at"]


def test_scheduled_version_takes_effect_after_a_restart(make_server):
    """A version whose time comes while no instance runs takes effect when one
    starts again, once."""
    srv = make_server()
    wait_public_ready(srv)
    admin = srv.api(roles=["admin"], sub="restart-test")
    active_sp(admin, legal_name="Vor dem Neustart GmbH")
    publish(admin, summary=summary("v1"))
    new_customer(admin, notice_days=30)
    active_sp(admin, legal_name="Nach dem Neustart GmbH")
    v2 = publish(admin, summary=summary("v2"), effective_at=in_(seconds=3), override_notice=True)
    effective = parse_ts(v2["effective_at"]).timestamp()
    srv.stop(expected_rc=0)
    time.sleep(max(0.0, effective - time.time()) + 1.0)
    srv.start()
    wait_public_ready(srv)
    wait_until(lambda: (lambda b: b if b["version"] == 2 else None)(public_json(srv)),
               3, interval=0.1, message="version 2 in effect after the restart")
    time.sleep(1.0)
    effective_records = [e for e in audit_of(admin, 2) if e["action"] == "effective"]
    assert len(effective_records) == 1, effective_records
    assert parse_ts(effective_records[0]["at"]).timestamp() >= effective - 1
