"""Request validation and the HTTP-level error contract: 400/404/405/412/413/415/428,
problem+json everywhere, X-Request-Id."""

import json

import pytest
import requests

from helpers import (DELETE, REQUEST_ID_RE, assert_problem, assert_status, assert_validation,
                     media_type, minimal_body, sp_body, unique_name, with_path)

SP = "/v1/subprocessors"


def raw_post(api, data, content_type="application/json", **kw):
    return api.request("POST", SP, data=data, content_type=content_type, **kw)


# ---------------------------------------------------------------------------
# media types and size


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "application/merge-patch+json", "application/xml"])
def test_post_wrong_content_type_is_415(admin, ctype):
    data = json.dumps(sp_body()).encode()
    assert_problem(raw_post(admin, data, content_type=ctype), 415, "unsupported-media-type")


def test_post_without_content_type_is_415(admin):
    data = json.dumps(sp_body()).encode()
    resp = admin.request("POST", SP, data=data)  # requests sets no Content-Type for bytes
    assert "Content-Type" not in resp.request.headers
    assert_problem(resp, 415, "unsupported-media-type")


def test_post_json_with_charset_parameter_is_accepted(admin):
    data = json.dumps(sp_body(legal_name=unique_name())).encode()
    assert_status(raw_post(admin, data, content_type="application/json; charset=utf-8"), 201)


def test_patch_with_application_json_is_415(admin):
    created = admin.create_sp(sp_body(legal_name=unique_name()))
    resp = admin.patch(f"{SP}/{created['id']}", {"notes": "x"}, if_match=1,
                       content_type="application/json")
    assert_problem(resp, 415, "unsupported-media-type")
    assert admin.get_sp(created["id"])["version"] == 1


def test_body_over_limit_is_413(admin):
    big = b'{"legal_name": "' + b"x" * int(1.1 * 1024 * 1024) + b'"}'
    try:
        resp = raw_post(admin, big)
    except requests.ConnectionError as exc:  # the server must answer, not just hang up
        pytest.fail(f"connection error instead of a 413 response: {exc}")
    assert_problem(resp, 413, "payload-too-large")


def test_body_over_limit_is_413_for_patch(admin):
    created = admin.create_sp(sp_body(legal_name=unique_name()))
    big = b'{"notes": "' + b"y" * int(1.1 * 1024 * 1024) + b'"}'
    resp = admin.request("PATCH", f"{SP}/{created['id']}", data=big,
                         content_type="application/merge-patch+json", if_match=1)
    assert_problem(resp, 413, "payload-too-large")


def test_large_body_under_limit_is_validated_not_413(admin):
    body = sp_body(notes="n" * (900 * 1024))  # notes max is 10000
    assert_validation(admin.post(SP, body), "/notes")


def test_server_healthy_after_big_bodies(server):
    assert_status(requests.get(server.url + "/healthz", timeout=5), 200)


# ---------------------------------------------------------------------------
# malformed JSON

VALID = json.dumps(sp_body(), ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("data", [
    b"{", b"", b"not json", b'{"legal_name": }', b'{"legal_name": "Odoo",}',
    b"{'legal_name': 'Odoo'}", b'{"legal_name": "unterminated', b"[1, 2",
    b'{"legal_name": "a\\qb"}', b'{"n": 01}', b'{"n": NaN}',
], ids=["open-brace", "empty", "word", "missing-value", "trailing-comma", "single-quotes",
        "unterminated-string", "unterminated-array", "bad-escape", "leading-zero", "nan"])
def test_invalid_json_is_malformed(admin, data):
    assert_problem(raw_post(admin, data), 400, "malformed-request")


@pytest.mark.parametrize("suffix", [b" x", b"{}", b"\n]", b'"', b"\x00"],
                         ids=["word", "second-object", "bracket", "quote", "nul"])
def test_trailing_garbage_is_malformed(admin, suffix):
    assert_problem(raw_post(admin, VALID + suffix), 400, "malformed-request")


@pytest.mark.parametrize("depth", [65, 800, 100_000])
def test_deep_nesting_is_refused_and_harmless(server, admin, depth):
    # ~800 levels used to overflow a worker thread's stack inside cJSON
    body = b'{"legal_name":' + b"[" * depth + b"]" * depth + b"}"
    r = assert_problem(raw_post(admin, body), 400, "malformed-request")
    assert "nested deeper than 64 levels" in r["detail"]
    assert admin.get("/healthz").status_code == 200


def test_trailing_whitespace_is_fine(admin):
    data = json.dumps(sp_body(legal_name=unique_name())).encode() + b" \r\n\t\n"
    assert_status(raw_post(admin, data), 201)


@pytest.mark.parametrize("bad", [b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"],
                         ids=["ff", "bad-continuation", "overlong", "surrogate", "truncated"])
def test_invalid_utf8_is_malformed(admin, bad):
    data = json.dumps(sp_body(legal_name="Odoo @@ S.A.")).encode().replace(b"@@", bad)
    assert_problem(raw_post(admin, data), 400, "malformed-request")


def test_invalid_utf8_in_key_is_malformed(admin):
    data = VALID[:-1] + b', "no\xfftes": "x"}'
    assert_problem(raw_post(admin, data), 400, "malformed-request")


def test_valid_utf8_is_kept(admin):
    name = "Ärztekammer Straße ŁÓDŹ 株式会社 🚀"
    created = admin.create_sp(sp_body(legal_name=name))
    assert created["legal_name"] == name
    assert admin.get_sp(created["id"])["legal_name"] == name


def test_duplicate_top_level_key_is_malformed(admin):
    data = b'{"legal_name": "A", ' + VALID[1:-1] + b"}"
    assert data.count(b'"legal_name"') == 2
    body = assert_problem(raw_post(admin, data), 400, "malformed-request")
    assert body["detail"] == 'duplicate key "legal_name" at /legal_name', body


def test_duplicate_nested_key_is_malformed(admin):
    data = VALID.replace(b'"country": "FR"', b'"country": "FR", "country": "DE"', 1)
    assert data != VALID
    body = assert_problem(raw_post(admin, data), 400, "malformed-request")
    assert body["detail"] == 'duplicate key "country" at /locations/0/country', body


def test_duplicate_key_in_patch_is_malformed(admin):
    created = admin.create_sp(sp_body(legal_name=unique_name()))
    resp = admin.request("PATCH", f"{SP}/{created['id']}", data=b'{"notes": "a", "notes": "b"}',
                         content_type="application/merge-patch+json", if_match=1)
    assert_problem(resp, 400, "malformed-request")


@pytest.mark.parametrize("data", [b"[]", b'"Odoo"', b"42", b"null", b"true"])
def test_non_object_body_is_400(admin, data):
    resp = raw_post(admin, data)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["type"] in ("/problems/malformed-request", "/problems/validation-error"), body


# ---------------------------------------------------------------------------
# schema validation with pointers

B = sp_body()

INVALID = {
    "unknown-top-level": (dict(B, foo=1), "/foo"),
    "unknown-nested-location": (with_path(B, ["locations", 0, "foo"], "bar"), "/locations/0/foo"),
    "unknown-nested-contact": (with_path(B, ["privacy_contact", "fax"], "1"), "/privacy_contact/fax"),
    "unknown-nested-purpose": (with_path(B, ["purpose", "fr"], "x"), "/purpose/fr"),
    "unknown-in-second-location": (dict(B, locations=[B["locations"][0],
                                                      {"country": "DE", "role": "backup", "x": 1}]),
                                   "/locations/1/x"),
    "dollar-key": (dict(B, **{"$where": "1"}), "/$where"),
    "dotted-key": (dict(B, **{"a.b": 1}), "/a.b"),
    "dollar-key-nested": (with_path(B, ["identifiers", "$set"], {"x": 1}), "/identifiers/$set"),
    "pointer-escaping": (dict(B, **{"we/ird~key": 1}), "/we~1ird~0key"),
    "missing-legal-name": (sp_body(legal_name=DELETE), "/legal_name"),
    "missing-hq-country": (sp_body(hq_country=DELETE), "/hq_country"),
    "missing-category": (sp_body(category=DELETE), "/category"),
    "missing-purpose": (sp_body(purpose=DELETE), "/purpose"),
    "missing-data-categories": (sp_body(data_categories=DELETE), "/data_categories"),
    "missing-data-subjects": (sp_body(data_subjects=DELETE), "/data_subjects"),
    "missing-locations": (sp_body(locations=DELETE), "/locations"),
    "missing-location-country": (with_path(B, ["locations", 0, "country"], DELETE),
                                 "/locations/0/country"),
    "missing-location-role": (with_path(B, ["locations", 0, "role"], DELETE), "/locations/0/role"),
    "legal-name-empty": (sp_body(legal_name=""), "/legal_name"),
    "legal-name-too-long": (sp_body(legal_name="x" * 201), "/legal_name"),
    "legal-name-number": (sp_body(legal_name=123), "/legal_name"),
    "legal-name-null": (sp_body(legal_name=None), "/legal_name"),
    "bad-category": (sp_body(category="cloud"), "/category"),
    "category-wrong-case": (sp_body(category="Hosting"), "/category"),
    "bad-role": (sp_body(role="controller"), "/role"),
    "bad-status": (sp_body(status="deleted"), "/status"),
    "hq-country-XX": (sp_body(hq_country="XX"), "/hq_country"),
    "hq-country-lowercase": (sp_body(hq_country="de"), "/hq_country"),
    "hq-country-alpha3": (sp_body(hq_country="DEU"), "/hq_country"),
    "location-country-ZZ": (with_path(B, ["locations", 0, "country"], "ZZ"), "/locations/0/country"),
    "location-role": (with_path(B, ["locations", 0, "role"], "storage"), "/locations/0/role"),
    "location-region-empty": (with_path(B, ["locations", 0, "region"], ""), "/locations/0/region"),
    "locations-empty": (sp_body(locations=[]), "/locations"),
    "locations-not-array": (sp_body(locations={"country": "FR", "role": "hosting"}), "/locations"),
    "date-feb-30": (sp_body(last_review_on="2026-02-30"), "/last_review_on"),
    "date-month-13": (sp_body(last_review_on="2026-13-01"), "/last_review_on"),
    "date-feb-29-non-leap": (sp_body(next_review_on="2027-02-29"), "/next_review_on"),
    "date-short": (sp_body(last_review_on="2026-1-5"), "/last_review_on"),
    "date-with-time": (sp_body(last_review_on="2026-01-15T00:00:00Z"), "/last_review_on"),
    "cert-date": (with_path(B, ["certifications", 0, "valid_until"], "2026-04-31"),
                  "/certifications/0/valid_until"),
    "cert-missing-name": (with_path(B, ["certifications", 0, "name"], DELETE),
                          "/certifications/0/name"),
    "url-ftp": (sp_body(website="ftp://odoo.com/"), "/website"),
    "url-relative": (sp_body(website="/privacy"), "/website"),
    "url-no-host": (sp_body(dpa_url="https://"), "/dpa_url"),
    "url-words": (sp_body(privacy_policy_url="not a url"), "/privacy_policy_url"),
    "url-too-long": (sp_body(subprocessor_list_url="https://example.com/" + "a" * 2000),
                     "/subprocessor_list_url"),
    "email-no-at": (with_path(B, ["privacy_contact", "email"], "dpo.odoo.com"),
                    "/privacy_contact/email"),
    "email-no-domain": (with_path(B, ["privacy_contact", "email"], "dpo@"), "/privacy_contact/email"),
    "email-no-local": (with_path(B, ["privacy_contact", "email"], "@odoo.com"),
                       "/privacy_contact/email"),
    "email-spaces": (with_path(B, ["privacy_contact", "email"], "d po@odoo.com"),
                     "/privacy_contact/email"),
    "phone-letters": (with_path(B, ["privacy_contact", "phone"], "call me"), "/privacy_contact/phone"),
    "vat-lowercase-prefix": (with_path(B, ["identifiers", "vat_id"], "be0477472701"),
                             "/identifiers/vat_id"),
    "lei-short": (with_path(B, ["identifiers", "lei"], "529900T8BM49AURSDO5"), "/identifiers/lei"),
    "data-categories-dup": (sp_body(data_categories=["master_contact", "master_contact"]),
                            "/data_categories"),
    "data-categories-unknown": (sp_body(data_categories=["health"]), "/data_categories"),
    "data-categories-empty": (sp_body(data_categories=[]), "/data_categories"),
    "data-subjects-dup": (sp_body(data_subjects=["customers", "partners", "customers"]),
                          "/data_subjects"),
    "data-subjects-unknown": (sp_body(data_subjects=["employees"]), "/data_subjects"),
    "read-only-id": (dict(B, id="sp_01HZZZZZZZZZZZZZZZZZZZZZZZ"), "/id"),
    "read-only-version": (dict(B, version=1), "/version"),
    "read-only-created-at": (dict(B, created_at="2026-01-01T00:00:00Z"), "/created_at"),
    "read-only-updated-at": (dict(B, updated_at="2026-01-01T00:00:00Z"), "/updated_at"),
    "purpose-missing-en": (with_path(B, ["purpose", "en"], DELETE), "/purpose/en"),
    "purpose-missing-de": (with_path(B, ["purpose", "de"], DELETE), "/purpose/de"),
    "purpose-empty-en": (with_path(B, ["purpose", "en"], ""), "/purpose/en"),
    "purpose-string": (sp_body(purpose="Hosting"), "/purpose"),
    "dpf-missing-participating": (sp_body(dpf={"verified_on": "2026-01-01"}), "/dpf/participating"),
    "dpf-participating-string": (sp_body(dpf={"participating": "yes"}), "/dpf/participating"),
    "public-listed-string": (with_path(B, ["public", "listed"], "true"), "/public/listed"),
    "notes-too-long": (sp_body(notes="n" * 10001), "/notes"),
}

# pointers where the failure may be reported on the array or on the element
ARRAY_PREFIX = {"data-categories-dup", "data-categories-unknown", "data-subjects-dup",
                "data-subjects-unknown"}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_body_has_pointer(admin, case):
    body, pointer = INVALID[case]
    resp = admin.post(SP, body)
    if case in ARRAY_PREFIX:
        assert_validation(resp, prefixes=(pointer,))
    else:
        assert_validation(resp, pointer)


def test_validation_lists_every_failure(admin):
    body = sp_body(legal_name=DELETE, category="cloud", hq_country="XX", foo=1)
    body = with_path(body, ["purpose", "en"], DELETE)
    body = with_path(body, ["locations", 0, "bar"], 1)
    assert_validation(admin.post(SP, body), "/legal_name", "/category", "/hq_country", "/foo",
                      "/purpose/en", "/locations/0/bar")


def test_nothing_stored_after_validation_errors(admin):
    name = unique_name("Never Stored")
    assert_validation(admin.post(SP, sp_body(legal_name=name, category="cloud")), "/category")
    items, _ = admin.list_all()
    assert name not in [it["legal_name"] for it in items]


@pytest.mark.parametrize("cc", ["US", "GB", "CH", "JP", "BR", "IS", "LI", "NO"])
def test_valid_countries_accepted(admin, cc):
    created = admin.create_sp(minimal_body(legal_name=unique_name(), hq_country=cc,
                                           locations=[{"country": cc, "role": "processing"}]))
    assert created["hq_country"] == cc


def test_boundary_lengths_accepted(admin):
    created = admin.create_sp(sp_body(legal_name="x" * 200, notes="n" * 10000,
                                      data_categories=["master_contact", "contract_service",
                                                       "support_communication", "erp_billing",
                                                       "it_documentation"],
                                      data_subjects=["prospects", "customers",
                                                     "service_providers", "partners"],
                                      last_review_on="2028-02-29", next_review_on="2029-02-28"))
    assert len(created["legal_name"]) == 200


# ---------------------------------------------------------------------------
# routing, methods, preconditions


@pytest.mark.parametrize("path", ["/nope", "/v1/nope", "/v1/subprocessors/sp_x/y", "/v2/subprocessors"])
def test_unknown_path_is_404_problem(admin, path):
    assert_problem(admin.get(path), 404, "not-found")


def test_unknown_path_without_token_is_problem(server):
    resp = requests.get(server.url + "/nope", timeout=10)
    assert_problem(resp, 404, "not-found")


@pytest.mark.parametrize("method,path,allowed", [
    ("PUT", SP, {"GET", "POST"}),
    ("DELETE", SP, {"GET", "POST"}),
    ("PATCH", SP, {"GET", "POST"}),
    ("POST", "/healthz", {"GET"}),
])
def test_method_not_allowed(admin, method, path, allowed):
    resp = admin.request(method, path)
    assert_problem(resp, 405, "method-not-allowed")
    got = {m.strip().upper() for m in resp.headers.get("Allow", "").split(",") if m.strip()}
    assert allowed <= got, f"Allow: {resp.headers.get('Allow')!r}"


def test_method_not_allowed_on_item(admin):
    created = admin.create_sp(sp_body(legal_name=unique_name()))
    resp = admin.request("PUT", f"{SP}/{created['id']}", json_body=sp_body())
    assert_problem(resp, 405, "method-not-allowed")
    got = {m.strip().upper() for m in resp.headers.get("Allow", "").split(",")}
    assert {"GET", "PATCH", "DELETE"} <= got
    resp = admin.request("POST", f"{SP}/{created['id']}", json_body=sp_body())
    assert_problem(resp, 405, "method-not-allowed")


def test_patch_without_if_match_is_428(admin):
    created = admin.create_sp(sp_body(legal_name=unique_name()))
    assert_problem(admin.patch(f"{SP}/{created['id']}", {"notes": "x"}), 428,
                   "precondition-required")


@pytest.mark.parametrize("etag", ['"2"', '"0"', '"abc"', '"01"', 'W/"1"'])
def test_patch_with_stale_or_bogus_if_match_is_412(admin, etag):
    created = admin.create_sp(sp_body(legal_name=unique_name()))
    resp = admin.patch(f"{SP}/{created['id']}", {"notes": "x"}, if_match=etag)
    assert_problem(resp, 412, "precondition-failed")
    assert admin.get_sp(created["id"])["version"] == 1


@pytest.mark.parametrize("etag", ['*', '"1"', '"7", "1"', '"1" ', 'W/"1", "1"', '"2",*'])
def test_if_match_star_and_lists_follow_rfc_9110(admin, etag):
    # "*" matches any current version; a list matches when one strong tag does
    created = admin.create_sp(sp_body(legal_name=unique_name()))
    resp = admin.patch(f"{SP}/{created['id']}", {"notes": "x"}, if_match=etag)
    assert_status(resp, 200)
    assert resp.json()["version"] == 2
    assert_status(admin.delete(f"{SP}/{created['id']}", if_match="*"), 204)


def test_patch_stale_after_change(admin):
    created = admin.create_sp(sp_body(legal_name=unique_name()))
    admin.patch_sp(created["id"], {"notes": "first"}, 1)
    resp = admin.patch(f"{SP}/{created['id']}", {"notes": "second"}, if_match=1)
    assert_problem(resp, 412, "precondition-failed")
    assert admin.get_sp(created["id"])["notes"] == "first"


# ---------------------------------------------------------------------------
# problem details and X-Request-Id


def test_problem_has_instance_and_request_id(admin):
    resp = admin.get("/v1/subprocessors/sp_00000000000000000000000000")
    body = assert_problem(resp, 404, "not-found")
    assert body.get("instance") == "/v1/subprocessors/sp_00000000000000000000000000"
    assert body.get("request_id") == resp.headers.get("X-Request-Id")


def _responses(server, admin):
    anon = server.anon()
    created = admin.post(SP, sp_body(legal_name=unique_name()))
    return {
        "healthz": anon.get("/healthz"),
        "readyz": anon.get("/readyz"),
        "metrics": anon.get("/metrics"),
        "openapi": anon.get("/openapi.yaml"),
        "list": admin.get(SP),
        "create": created,
        "404": admin.get("/nope"),
        "401": anon.get(SP),
        "405": admin.request("PUT", SP),
        "415": raw_post(admin, b"{}", content_type="text/plain"),
        "400": raw_post(admin, b"{"),
        "delete": admin.delete(f"{SP}/{created.json()['id']}", if_match=1),
    }


def test_every_response_has_request_id(server, admin):
    ids = set()
    for name, resp in _responses(server, admin).items():
        rid = resp.headers.get("X-Request-Id")
        assert rid and REQUEST_ID_RE.match(rid), f"{name}: X-Request-Id {rid!r}"
        ids.add(rid)
    assert len(ids) == 12, "request ids are not unique"


@pytest.mark.parametrize("rid", ["my-req.1:abc_DEF", "a", "x" * 128,
                                 "01HZX3-4c5d6e7f-8a9b"])
def test_valid_request_id_is_echoed(server, admin, rid):
    for resp in (admin.get(SP, headers={"X-Request-Id": rid}),
                 admin.get("/nope", headers={"X-Request-Id": rid}),
                 server.anon().get(SP, headers={"X-Request-Id": rid}),
                 server.anon().get("/healthz", headers={"X-Request-Id": rid})):
        assert resp.headers.get("X-Request-Id") == rid
        if media_type(resp) == "application/problem+json":
            assert resp.json().get("request_id") == rid


@pytest.mark.parametrize("rid", ["has space", "x" * 129, "semi;colon", "quote\"", "ümlaut"])
def test_invalid_request_id_is_replaced(admin, rid):
    resp = admin.get(SP, headers={"X-Request-Id": rid.encode("utf-8")})
    assert_status(resp, 200)
    got = resp.headers.get("X-Request-Id")
    assert got and got != rid and REQUEST_ID_RE.match(got), got


@pytest.mark.parametrize("raw,status", [
    (b"GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    (b"FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 405),  # test_hostile: unknown methods
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", None),
], ids=["http-3.0", "unknown-method", "no-request-line", "header-block-too-large"])
def test_civetwebs_own_errors_are_problem_json(server, raw, status):
    # answered by civetweb before subreg's handler runs: still problem+json, with a title
    import socket
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(raw)
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    code = int(head.split(b" ", 2)[1])
    assert code == status if status else 400 <= code < 500, head
    assert b"Content-Type: application/problem+json" in head, head
    problem = json.loads(body)
    assert problem["status"] == code and problem["title"] not in ("", "Error"), problem
