"""Subprocessor resource: lifecycle, merge patch, status transitions, listing,
pagination, filters and Idempotency-Key."""

import uuid

import pytest

from helpers import (RFC3339_UTC_RE, SP_ID_RE, assert_problem, assert_status, assert_validation,
                     ids_of, minimal_body, parse_ts, sp_body, unique_country, unique_name)


# ---------------------------------------------------------------------------
# lifecycle


def test_full_lifecycle(admin):
    body = sp_body(legal_name=unique_name("Odoo S.A."))
    resp = admin.post("/v1/subprocessors", body)
    assert_status(resp, 201)
    assert resp.headers.get("Content-Type", "").startswith("application/json")
    created = resp.json()
    sp_id = created["id"]
    assert SP_ID_RE.match(sp_id), sp_id
    assert resp.headers.get("Location") == f"/v1/subprocessors/{sp_id}"
    assert resp.headers.get("ETag") == '"1"'
    assert created["version"] == 1
    assert RFC3339_UTC_RE.match(created["created_at"]), created["created_at"]
    assert RFC3339_UTC_RE.match(created["updated_at"]), created["updated_at"]
    for key, value in body.items():
        assert created[key] == value, f"field {key}: sent {value!r}, got {created.get(key)!r}"
    assert created["status"] == "proposed"  # default

    # GET
    resp = admin.get(f"/v1/subprocessors/{sp_id}")
    assert_status(resp, 200)
    assert resp.headers.get("ETag") == '"1"'
    assert resp.json() == created

    # list contains it
    items, _ = admin.list_all()
    listed = [it for it in items if it["id"] == sp_id]
    assert len(listed) == 1
    assert listed[0]["version"] == 1 and listed[0]["legal_name"] == body["legal_name"]

    # PATCH (merge patch)
    resp = admin.patch(f"/v1/subprocessors/{sp_id}",
                       {"trading_name": "Odoo ERP", "privacy_contact": {"phone": None}},
                       if_match='"1"')
    assert_status(resp, 200)
    assert resp.headers.get("ETag") == '"2"'
    patched = resp.json()
    assert patched["version"] == 2
    assert patched["trading_name"] == "Odoo ERP"
    # nested merge: phone removed, name and email kept
    assert patched["privacy_contact"] == {"name": body["privacy_contact"]["name"],
                                          "email": body["privacy_contact"]["email"]}
    assert patched["created_at"] == created["created_at"]
    assert parse_ts(patched["updated_at"]) >= parse_ts(created["updated_at"])
    assert patched["legal_name"] == body["legal_name"]
    assert patched["locations"] == body["locations"]

    # merge-patch null removes an optional top-level field
    resp = admin.patch(f"/v1/subprocessors/{sp_id}", {"trading_name": None, "notes": None},
                       if_match='"2"')
    assert_status(resp, 200)
    v3 = resp.json()
    assert v3["version"] == 3
    assert "trading_name" not in v3, v3
    assert "notes" not in v3, v3
    got = admin.get(f"/v1/subprocessors/{sp_id}")
    assert got.headers.get("ETag") == '"3"'
    assert got.json() == v3

    # arrays are replaced whole (RFC 7396)
    new_locations = [{"country": "DE", "role": "backup"}, {"country": "FR", "role": "hosting"}]
    v4 = admin.patch_sp(sp_id, {"locations": new_locations}, 3)
    assert v4["locations"] == new_locations
    assert v4["version"] == 4

    # DELETE
    resp = admin.delete(f"/v1/subprocessors/{sp_id}", if_match='"4"')
    assert_status(resp, 204)
    assert resp.content == b""
    assert_problem(admin.get(f"/v1/subprocessors/{sp_id}"), 404, "not-found")
    items, _ = admin.list_all()
    assert sp_id not in ids_of(items)


def test_create_minimal_applies_defaults(admin):
    created = admin.create_sp(minimal_body(legal_name=unique_name()))
    assert created["status"] == "proposed"
    assert created["role"] == "subprocessor"
    assert created["version"] == 1


def test_create_with_all_optional_fields_roundtrips(admin):
    body = sp_body(
        legal_name=unique_name(),
        identifiers={"vat_id": "DE812871812", "lei": "529900T8BM49AURSDO55",
                     "register_number": "HRB 6089"},
        subprocessor_list_url="https://example.com/subprocessors",
        dpf={"participating": True, "verified_on": "2026-03-01"},
        role="processor",
        status="active",
    )
    created = admin.create_sp(body)
    for key, value in body.items():
        assert created[key] == value, key


def test_get_unknown_is_404(admin):
    assert_problem(admin.get("/v1/subprocessors/sp_00000000000000000000000000"), 404, "not-found")


def test_patch_and_delete_unknown_is_404(admin):
    missing = "/v1/subprocessors/sp_00000000000000000000000000"
    assert_problem(admin.patch(missing, {"notes": "x"}, if_match='"1"'), 404, "not-found")
    assert_problem(admin.delete(missing, if_match='"1"'), 404, "not-found")


def test_delete_requires_if_match(admin):
    created = admin.create_sp(sp_body(legal_name=unique_name()))
    path = f"/v1/subprocessors/{created['id']}"
    assert_problem(admin.delete(path), 428, "precondition-required")
    assert_problem(admin.delete(path, if_match='"7"'), 412, "precondition-failed")
    assert_status(admin.get(path), 200)
    assert_status(admin.delete(path, if_match='"1"'), 204)
    # a second delete: the resource is gone
    assert_problem(admin.delete(path, if_match='"1"'), 404, "not-found")


def test_patch_result_is_validated_whole(admin):
    created = admin.create_sp(sp_body(legal_name=unique_name()))
    path = f"/v1/subprocessors/{created['id']}"
    # removing a required field
    assert_validation(admin.patch(path, {"legal_name": None}, if_match=1), "/legal_name")
    assert_validation(admin.patch(path, {"purpose": {"en": None}}, if_match=1), "/purpose/en")
    assert_validation(admin.patch(path, {"category": "cloud"}, if_match=1), "/category")
    assert_validation(admin.patch(path, {"locations": [{"country": "FR", "role": "x"}]},
                                  if_match=1), "/locations/0/role")
    assert_validation(admin.patch(path, {"locations": [{"country": "FR", "role": "hosting",
                                                         "foo": 1}]}, if_match=1),
                      "/locations/0/foo")
    assert_validation(admin.patch(path, {"bogus": 1}, if_match=1), "/bogus")
    assert_validation(admin.patch(path, {"id": "sp_x"}, if_match=1), "/id")
    assert_validation(admin.patch(path, {"version": 5}, if_match=1), "/version")
    # nothing was changed by the refused patches
    resp = admin.get(path)
    assert resp.headers.get("ETag") == '"1"'
    assert resp.json() == created


# ---------------------------------------------------------------------------
# status transitions

ALLOWED = [("proposed", "active"), ("proposed", "retired"), ("active", "retired"),
           ("retired", "proposed")]
REFUSED = [("active", "proposed"), ("retired", "active")]


def _at_status(api, status):
    """Create a subprocessor and walk it (via allowed transitions) to `status`."""
    created = api.create_sp(sp_body(legal_name=unique_name()))
    path = [] if status == "proposed" else (["active"] if status == "active" else ["retired"])
    cur = created
    for st in path:
        cur = api.patch_sp(cur["id"], {"status": st}, cur["version"])
        assert cur["status"] == st
    return cur


@pytest.mark.parametrize("src,dst", ALLOWED)
def test_status_transition_allowed(admin, src, dst):
    cur = _at_status(admin, src)
    new = admin.patch_sp(cur["id"], {"status": dst}, cur["version"])
    assert new["status"] == dst
    assert new["version"] == cur["version"] + 1


@pytest.mark.parametrize("src,dst", REFUSED)
def test_status_transition_refused(admin, src, dst):
    cur = _at_status(admin, src)
    resp = admin.patch(f"/v1/subprocessors/{cur['id']}", {"status": dst}, if_match=cur["version"])
    assert_problem(resp, 422, "unprocessable-entity")
    after = admin.get_sp(cur["id"])
    assert after["status"] == src and after["version"] == cur["version"]


def test_status_invalid_value_is_validation_error(admin):
    cur = _at_status(admin, "proposed")
    resp = admin.patch(f"/v1/subprocessors/{cur['id']}", {"status": "deleted"}, if_match=1)
    assert_validation(resp, "/status")


def test_full_status_cycle(admin):
    cur = _at_status(admin, "proposed")
    for st in ["active", "retired", "proposed", "retired"]:
        cur = admin.patch_sp(cur["id"], {"status": st}, cur["version"])
    assert cur["status"] == "retired" and cur["version"] == 5


# ---------------------------------------------------------------------------
# pagination


def test_pagination_walk_with_filter(admin):
    country = unique_country()
    created = [admin.create_sp(sp_body(legal_name=unique_name(),
                                       locations=[{"country": country, "role": "hosting"}]))["id"]
               for _ in range(7)]
    assert created == sorted(created), "ids are not time-ordered"
    seen, pages, cursor = [], [], None
    while True:
        params = {"limit": 3, "country": country}
        if cursor:
            params["cursor"] = cursor
        resp = admin.get("/v1/subprocessors", params=params)
        assert_status(resp, 200)
        page = resp.json()
        pages.append(len(page["items"]))
        seen.extend(ids_of(page["items"]))
        cursor = page.get("next_cursor")
        if not cursor:
            assert "next_cursor" not in page, page
            break
        assert len(pages) < 10
    assert pages == [3, 3, 1]
    assert seen == created


def test_pagination_exact_multiple_has_no_empty_last_page(admin):
    country = unique_country()
    created = [admin.create_sp(sp_body(legal_name=unique_name(),
                                       locations=[{"country": country, "role": "hosting"}]))["id"]
               for _ in range(3)]
    resp = admin.get("/v1/subprocessors", params={"limit": 3, "country": country})
    assert_status(resp, 200)
    page = resp.json()
    assert ids_of(page["items"]) == created
    assert "next_cursor" not in page, "the last page must not carry a next_cursor"


def test_pagination_walk_whole_collection(admin):
    created = [admin.create_sp(sp_body(legal_name=unique_name()))["id"] for _ in range(4)]
    items, pages = admin.list_all(limit=3)
    ids = ids_of(items)
    assert len(ids) == len(set(ids)), "an item was returned twice"
    assert ids == sorted(ids), "items are not in creation (id) order"
    pos = [ids.index(i) for i in created]
    assert pos == sorted(pos)


def test_pagination_stable_under_inserts(admin):
    country = unique_country()
    first = [admin.create_sp(sp_body(legal_name=unique_name(),
                                     locations=[{"country": country, "role": "hosting"}]))["id"]
             for _ in range(4)]
    resp = admin.get("/v1/subprocessors", params={"limit": 2, "country": country})
    page1 = resp.json()
    assert ids_of(page1["items"]) == first[:2]
    later = admin.create_sp(sp_body(legal_name=unique_name(),
                                    locations=[{"country": country, "role": "hosting"}]))["id"]
    rest, _ = admin.list_all(limit=2, country=country)
    # restart from the cursor of page 1
    seen = ids_of(page1["items"])
    cursor = page1["next_cursor"]
    while cursor:
        page = admin.get("/v1/subprocessors",
                         params={"limit": 2, "country": country, "cursor": cursor}).json()
        seen.extend(ids_of(page["items"]))
        cursor = page.get("next_cursor")
    assert seen == first + [later]
    assert ids_of(rest) == first + [later]


def test_default_limit_and_clamp(admin):
    for big in (500, "99999999999999999999999"):  # "larger is clamped", however large
        resp = admin.get("/v1/subprocessors", params={"limit": big})
        assert_status(resp, 200)
        assert len(resp.json()["items"]) <= 200
    resp = admin.get("/v1/subprocessors")
    assert_status(resp, 200)
    assert len(resp.json()["items"]) <= 50


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "", "3x"])
def test_bad_limit_is_400(admin, limit):
    assert_problem(admin.get("/v1/subprocessors", params={"limit": limit}), 400, "malformed-request")


@pytest.mark.parametrize("cursor", ["garbage", "!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "%00"])
def test_bad_cursor_is_400(admin, cursor):
    assert_problem(admin.get("/v1/subprocessors", params={"cursor": cursor}), 400,
                   "malformed-request")


def test_nul_in_the_query_is_400(admin):
    # found by tests/fuzz (fuzz_query): %00 used to cut the value short, so
    # "approved%00x" filtered on "approved"
    assert_problem(admin.get("/v1/subprocessors?status=approved%00x"), 400, "malformed-request")
    assert_problem(admin.get("/v1/subprocessors?%00=1"), 400, "malformed-request")


def test_unknown_query_parameter_is_400(admin):
    assert_problem(admin.get("/v1/subprocessors", params={"colour": "red"}), 400,
                   "malformed-request")
    assert_problem(admin.get("/v1/subprocessors", params={"limit": 5, "sort": "legal_name"}), 400,
                   "malformed-request")


# ---------------------------------------------------------------------------
# filters


@pytest.fixture(scope="module")
def filter_set(server):
    """A small, distinct set: two location countries and two hq countries that
    nobody else uses."""
    api = server.api(roles=["admin"])
    c1, c2, hq1, hq2 = (unique_country() for _ in range(4))
    specs = [
        dict(category="hosting", hq_country=hq1, role="processor",
             locations=[{"country": c1, "role": "hosting"}]),
        dict(category="email", hq_country=hq1, role="subprocessor",
             locations=[{"country": "FR", "role": "hosting"},
                        {"country": c2, "role": "support"}]),
        dict(category="hosting", hq_country=hq2, role="subprocessor",
             locations=[{"country": c2, "role": "backup"}]),
        dict(category="payment", hq_country=hq2, role="subprocessor",
             locations=[{"country": c1, "role": "processing"}, {"country": c2, "role": "support"}]),
    ]
    made = []
    for spec in specs:
        made.append(api.create_sp(sp_body(legal_name=unique_name(), **spec)))
    # statuses: 0 proposed, 1 active, 2 retired, 3 active
    made[1] = api.patch_sp(made[1]["id"], {"status": "active"}, 1)
    made[2] = api.patch_sp(made[2]["id"], {"status": "retired"}, 1)
    made[3] = api.patch_sp(made[3]["id"], {"status": "active"}, 1)
    return {"items": made, "c1": c1, "c2": c2, "hq1": hq1, "hq2": hq2}


def _ours(filter_set, items):
    mine = {it["id"] for it in filter_set["items"]}
    return [it["id"] for it in items if it["id"] in mine]


def test_filter_country_matches_any_location(admin, filter_set):
    ids = [it["id"] for it in filter_set["items"]]
    items, _ = admin.list_all(country=filter_set["c1"])
    assert ids_of(items) == [ids[0], ids[3]]
    items, _ = admin.list_all(country=filter_set["c2"])
    assert ids_of(items) == [ids[1], ids[2], ids[3]]


def test_filter_hq_country(admin, filter_set):
    ids = [it["id"] for it in filter_set["items"]]
    items, _ = admin.list_all(hq_country=filter_set["hq1"])
    assert ids_of(items) == ids[:2]
    items, _ = admin.list_all(hq_country=filter_set["hq2"])
    assert ids_of(items) == ids[2:]


@pytest.mark.parametrize("status,expected", [("proposed", [0]), ("active", [1, 3]),
                                             ("retired", [2])])
def test_filter_status(admin, filter_set, status, expected):
    ids = [it["id"] for it in filter_set["items"]]
    items, _ = admin.list_all(status=status)
    assert all(it["status"] == status for it in items)
    assert _ours(filter_set, items) == [ids[i] for i in expected]


@pytest.mark.parametrize("category,expected", [("hosting", [0, 2]), ("email", [1]),
                                               ("payment", [3]), ("rmm", [])])
def test_filter_category(admin, filter_set, category, expected):
    ids = [it["id"] for it in filter_set["items"]]
    items, _ = admin.list_all(category=category)
    assert all(it["category"] == category for it in items)
    assert _ours(filter_set, items) == [ids[i] for i in expected]


def test_filter_role(admin, filter_set):
    ids = [it["id"] for it in filter_set["items"]]
    items, _ = admin.list_all(role="processor")
    assert all(it["role"] == "processor" for it in items)
    assert _ours(filter_set, items) == [ids[0]]


def test_filters_combine(admin, filter_set):
    ids = [it["id"] for it in filter_set["items"]]
    items, _ = admin.list_all(country=filter_set["c2"], status="active")
    assert ids_of(items) == [ids[1], ids[3]]
    items, _ = admin.list_all(hq_country=filter_set["hq2"], category="hosting")
    assert ids_of(items) == [ids[2]]


def test_filter_with_pagination(admin, filter_set):
    ids = [it["id"] for it in filter_set["items"]]
    items, pages = admin.list_all(limit=1, country=filter_set["c2"])
    assert ids_of(items) == [ids[1], ids[2], ids[3]]
    assert pages == 3


@pytest.mark.parametrize("param,value", [
    ("status", "deleted"), ("status", "ACTIVE"), ("category", "cloud"), ("country", "XX"),
    ("country", "de"), ("country", "DEU"), ("hq_country", "ZZ"), ("hq_country", "be"),
    ("role", "controller"),
])
def test_invalid_filter_value_is_400(admin, param, value):
    assert_problem(admin.get("/v1/subprocessors", params={param: value}), 400, "malformed-request")


# ---------------------------------------------------------------------------
# Idempotency-Key


def test_idempotency_same_key_same_body(admin):
    country = unique_country()
    body = sp_body(legal_name=unique_name(), locations=[{"country": country, "role": "hosting"}])
    key = f"idem-{uuid.uuid4()}"
    r1 = admin.post("/v1/subprocessors", body, headers={"Idempotency-Key": key})
    assert_status(r1, 201)
    r2 = admin.post("/v1/subprocessors", body, headers={"Idempotency-Key": key})
    assert r2.status_code == r1.status_code
    assert r2.json() == r1.json()
    assert r2.headers.get("Location") == r1.headers.get("Location")
    assert r2.headers.get("ETag") == r1.headers.get("ETag")
    items, _ = admin.list_all(country=country)
    assert ids_of(items) == [r1.json()["id"]], "a replayed request created a second resource"

    # the same key with another body is refused, nothing created
    other = dict(body, legal_name=body["legal_name"] + " (other)")
    r3 = admin.post("/v1/subprocessors", other, headers={"Idempotency-Key": key})
    assert_problem(r3, 422, "unprocessable-entity")
    items, _ = admin.list_all(country=country)
    assert ids_of(items) == [r1.json()["id"]]

    # another key with the same body creates a new resource
    r4 = admin.post("/v1/subprocessors", body, headers={"Idempotency-Key": f"idem-{uuid.uuid4()}"})
    assert_status(r4, 201)
    assert r4.json()["id"] != r1.json()["id"]
    # and without a key too
    r5 = admin.post("/v1/subprocessors", body)
    assert_status(r5, 201)
    items, _ = admin.list_all(country=country)
    assert len(items) == 3


def test_idempotency_replay_after_change_returns_original(admin):
    """The replay gives the original response even after the resource changed."""
    body = sp_body(legal_name=unique_name())
    key = f"idem-{uuid.uuid4()}"
    r1 = admin.post("/v1/subprocessors", body, headers={"Idempotency-Key": key})
    assert_status(r1, 201)
    admin.patch_sp(r1.json()["id"], {"notes": "changed"}, 1)
    r2 = admin.post("/v1/subprocessors", body, headers={"Idempotency-Key": key})
    assert r2.status_code == 201
    assert r2.json() == r1.json()
    assert r2.headers.get("Location") == r1.headers.get("Location")

