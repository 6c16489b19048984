"""Shared helpers for the subreg black-box API tests.

- `sp_body()` / `minimal_body()`: valid subprocessor request bodies.
- `assert_problem()` / `assert_validation()`: RFC 9457 problem+json checks.
- `Api`: a thin `requests` wrapper bound to a base URL and a bearer token.
- `unique_country()`: a country code no other test uses, to isolate list queries
  on the shared session server.
- `wait_public_ready()`, `PUBLIC_KEYS`: the public list of a freshly started
  service, and the only keys a public entry may have.
- `WEBHOOK_ENV`, `create_hook()`, `get_hook()`, `retire_hook()`: webhook
  subscriptions (test_webhooks, test_delivery).
"""

import copy
import itertools
import json
import re
import threading
import time

import requests


DEFAULT_TIMEOUT = 15

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SP_ID_RE = re.compile(r"^sp_[0-9A-HJKMNP-TV-Z]{26}$")
RFC3339_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

DELETE = object()  # sentinel for sp_body(): drop this key
UNSET = object()

# ---------------------------------------------------------------------------
# bodies


def sp_body(**overrides):
    """A complete, realistic, valid subprocessor body. Keyword overrides replace
    top-level fields; pass `DELETE` to drop one."""
    body = {
        "legal_name": "Odoo S.A.",
        "trading_name": "Odoo",
        "identifiers": {"vat_id": "BE0477472701", "register_number": "0477.472.701"},
        "hq_country": "BE",
        "website": "https://www.odoo.com",
        "privacy_policy_url": "https://www.odoo.com/privacy",
        "dpa_url": "https://www.odoo.com/legal/dpa",
        "privacy_contact": {
            "name": "Data Protection Officer",
            "email": "dpo@odoo.com",
            "phone": "+32 81 81 37 00",
        },
        "category": "erp_billing",
        "role": "subprocessor",
        "purpose": {
            "de": "ERP-System: Angebote, Aufträge, Rechnungen und Zahlungsstatus",
            "en": "ERP system: offers, orders, invoices and payment status",
        },
        "data_categories": ["master_contact", "contract_service", "erp_billing"],
        "data_subjects": ["customers", "prospects"],
        "locations": [{"country": "FR", "region": "eu-west", "role": "hosting"}],
        "certifications": [
            {"name": "ISO/IEC 27001", "issuer": "Bureau Veritas", "valid_until": "2027-06-30"}
        ],
        "dpf": {"participating": False},
        "last_review_on": "2026-01-15",
        "next_review_on": "2027-01-15",
        "public": {
            "listed": True,
            "description": {"de": "ERP und Rechnungsstellung", "en": "ERP and invoicing"},
        },
        "notes": "Hosted by Odoo S.A. in its own data centres (FR).",
    }
    return override(body, overrides)


def minimal_body(**overrides):
    """Only the required fields."""
    body = {
        "legal_name": "Hetzner Online GmbH",
        "hq_country": "DE",
        "category": "hosting",
        "purpose": {"de": "Hosting der Server", "en": "Server hosting"},
        "data_categories": ["master_contact"],
        "data_subjects": ["customers"],
        "locations": [{"country": "DE", "role": "hosting"}],
    }
    return override(body, overrides)


def override(body, overrides, delete=DELETE):
    """Replace top-level fields of body (in place, and returned); a value that
    is `delete` (the `DELETE` sentinel unless told otherwise) drops the field."""
    for key, value in overrides.items():
        if value is delete:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def with_path(body, path, value):
    """Return a deep copy of body with the value at `path` (a list of keys/indexes)
    replaced; `DELETE` removes it."""
    body = copy.deepcopy(body)
    target = body
    for part in path[:-1]:
        target = target[part]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


# Countries handed out one per call, so that list queries on the shared server
# can be isolated with ?country= / ?hq_country=. FR, BE and DE are used by the
# default bodies and are not in this pool.
# Codes no test names literally (checked by test_docs), so a filter on one of
# them sees only the test that drew it, whatever ran before.
_COUNTRY_POOL = [
    "FJ", "TO", "WS", "VU", "KI", "NR", "TV", "PW", "MH", "FM", "SB", "PG", "NU", "CK",
    "BT", "MV", "LA", "KH", "MM", "MN", "KG", "TJ", "TM", "UZ", "AZ", "AM", "GE", "MD",
    "BY", "ME", "MK", "AL", "BA", "GY", "SR", "BZ", "HN", "NI", "GT", "PA", "DO", "HT",
    "JM", "BB", "BS", "TT", "LC", "VC", "GD", "DM", "KN", "AG", "BW", "NA", "ZM", "ZW",
    "MW", "MZ", "MG", "MU", "SC", "KM", "DJ", "ER", "ET", "SO", "SS", "SD", "TD", "NE",
]
_country_iter = iter(_COUNTRY_POOL)
_country_lock = threading.Lock()


def unique_country():
    with _country_lock:
        try:
            return next(_country_iter)
        except StopIteration:  # pragma: no cover - pool exhausted: extend it
            raise RuntimeError("helpers._COUNTRY_POOL exhausted; add more codes")


_seq = itertools.count(1)


def unique_name(prefix="Subprocessor"):
    return f"{prefix} {next(_seq)} {time.monotonic_ns() % 10**9} GmbH"


# ---------------------------------------------------------------------------
# assertions


def media_type(resp):
    return resp.headers.get("Content-Type", "").split(";")[0].strip().lower()


def describe(resp):
    return (
        f"{resp.request.method} {resp.request.url} -> {resp.status_code} "
        f"{resp.headers.get('Content-Type')!r} {resp.text[:800]!r}"
    )


def ok(resp, ctype=None):
    """A 200 (of the media type ctype, when given); returns resp."""
    assert resp.status_code == 200, describe(resp)
    if ctype:
        assert media_type(resp) == ctype, describe(resp)
    return resp


def assert_status(resp, status):
    assert resp.status_code == status, f"expected {status}, got {describe(resp)}"


def assert_problem(resp, status, slug):
    """Assert an RFC 9457 problem response of the contract's shape; returns the body."""
    assert resp.status_code == status, f"expected {status} /problems/{slug}, got {describe(resp)}"
    assert media_type(resp) == "application/problem+json", (
        f"expected application/problem+json, got {describe(resp)}"
    )
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"problem body is not JSON: {describe(resp)}")
    assert isinstance(body, dict), describe(resp)
    assert body.get("type") == f"/problems/{slug}", f"wrong problem type: {describe(resp)}"
    assert isinstance(body.get("title"), str) and body["title"], f"no title: {describe(resp)}"
    assert body.get("status") == status, f"wrong status member: {describe(resp)}"
    assert isinstance(body.get("detail"), str), f"no detail: {describe(resp)}"
    rid = resp.headers.get("X-Request-Id")
    if "request_id" in body and rid is not None:
        assert body["request_id"] == rid, f"request_id != X-Request-Id: {describe(resp)}"
    return body


def assert_validation(resp, *pointers, prefixes=()):
    """400 validation-error whose errors[] contain every pointer given (exactly),
    and for each prefix at least one pointer starting with it."""
    body = assert_problem(resp, 400, "validation-error")
    errors = body.get("errors")
    assert isinstance(errors, list) and errors, f"no errors[]: {describe(resp)}"
    for err in errors:
        assert isinstance(err, dict), describe(resp)
        assert isinstance(err.get("pointer"), str), f"error without pointer: {describe(resp)}"
        assert isinstance(err.get("message"), str) and err["message"], (
            f"error without message: {describe(resp)}"
        )
    got = [e["pointer"] for e in errors]
    for p in pointers:
        assert p in got, f"pointer {p!r} not in {got!r}: {describe(resp)}"
    for p in prefixes:
        assert any(g == p or g.startswith(p + "/") for g in got), (
            f"no pointer under {p!r} in {got!r}: {describe(resp)}"
        )
    return body


def parse_ts(value):
    """RFC 3339 UTC timestamp -> aware datetime."""
    import datetime as _dt
    assert isinstance(value, str) and RFC3339_UTC_RE.match(value), f"not RFC 3339 UTC: {value!r}"
    return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def etag_of(version):
    return f'"{version}"'


def ids_of(items):
    return [it["id"] for it in items]


# ---------------------------------------------------------------------------
# HTTP client


class Api:
    """Requests bound to a base URL and (optionally) a bearer token."""

    def __init__(self, base_url, token=None, session=None, timeout=DEFAULT_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.http = session or requests.Session()
        self.timeout = timeout

    def with_token(self, token):
        return Api(self.base_url, token=token, timeout=self.timeout)

    def request(self, method, path, *, json_body=UNSET, data=None, headers=None,
                params=None, content_type=None, if_match=None, token=UNSET,
                timeout=None, allow_redirects=False):
        hdrs = {}
        tok = self.token if token is UNSET else token
        if tok is not None:
            hdrs["Authorization"] = f"Bearer {tok}"
        if json_body is not UNSET:
            data = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            if content_type is None:
                content_type = (
                    "application/merge-patch+json" if method.upper() == "PATCH"
                    else "application/json"
                )
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        if if_match is not None:
            hdrs["If-Match"] = if_match if isinstance(if_match, str) else etag_of(if_match)
        if headers:
            hdrs.update(headers)
        return self.http.request(
            method, self.base_url + path, data=data, headers=hdrs, params=params,
            timeout=timeout or self.timeout, allow_redirects=allow_redirects,
        )

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=UNSET, **kw):
        return self.request("POST", path, json_body=body, **kw)

    def patch(self, path, body=UNSET, **kw):
        return self.request("PATCH", path, json_body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- subprocessor conveniences ---------------------------------------
    def create_sp(self, body=None, **kw):
        resp = self.post("/v1/subprocessors", body if body is not None else sp_body(), **kw)
        assert_status(resp, 201)
        return resp.json()

    def get_sp(self, sp_id):
        resp = self.get(f"/v1/subprocessors/{sp_id}")
        assert_status(resp, 200)
        return resp.json()

    def patch_sp(self, sp_id, patch, version, **kw):
        resp = self.patch(f"/v1/subprocessors/{sp_id}", patch, if_match=version, **kw)
        assert_status(resp, 200)
        return resp.json()

    def list_all(self, path="/v1/subprocessors", limit=200, max_pages=200, **params):
        """Walk every page; return (items, pages)."""
        items, pages = [], 0
        cursor = None
        while True:
            q = dict(params, limit=limit)
            if cursor is not None:
                q["cursor"] = cursor
            resp = self.get(path, params=q)
            assert_status(resp, 200)
            page = resp.json()
            assert isinstance(page.get("items"), list), describe(resp)
            items.extend(page["items"])
            pages += 1
            cursor = page.get("next_cursor")
            if cursor is None:
                return items, pages
            assert isinstance(cursor, str) and cursor, describe(resp)
            assert pages < max_pages, "pagination does not terminate"


def wait_until(predicate, timeout, interval=0.2, message="condition"):
    """Poll predicate() until it returns a truthy value (or any Response object:
    a 4xx/5xx Response is falsy in requests); return that value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if isinstance(last, requests.Response) or last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}; last={last!r}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# registry, documents and audit helpers (test_registry, test_documents,
# test_reference, test_compliance_api)


def pdf_bytes(size=None, seed=None):
    """A PDF body. Without `size`: a small, well-formed one-page PDF. With `size`:
    a `%PDF-1.4` header followed by random bytes up to exactly `size` bytes."""
    import os as _os
    import random as _random
    if size is None:
        tag = f"{seed if seed is not None else next(_seq)}-{time.monotonic_ns()}".encode()
        objs = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        ]
        stream = b"BT /F1 12 Tf 20 100 Td (subreg test " + tag + b") Tj ET"
        objs.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
                    + b"\nendstream")
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for i, o in enumerate(objs, 1):
            offsets.append(len(out))
            out += f"{i} 0 obj\n".encode() + o + b"\nendobj\n"
        xref = len(out)
        out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
        for off in offsets:
            out += f"{off:010d} 00000 n \n".encode()
        out += (f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
                .encode())
        return bytes(out)
    head = b"%PDF-1.4\n"
    rnd = _random.Random(seed) if seed is not None else None
    tail = rnd.randbytes(size - len(head)) if rnd else _os.urandom(size - len(head))
    return head + tail


def upload_pdf(api, data, filename=None, content_type="application/pdf"):
    """POST /v1/documents with raw bytes; returns the response."""
    params = {"filename": filename} if filename is not None else None
    return api.request("POST", "/v1/documents", data=data, content_type=content_type,
                       params=params, timeout=60)


def audit_entries(api, entity_id, expected, timeout=10, **params):
    """Poll /v1/audit?entity_id= until at least `expected` entries are there;
    returns them (oldest first)."""
    def fetch():
        items, _ = api.list_all("/v1/audit", entity_id=entity_id, **params)
        return items if len(items) >= expected else None
    return wait_until(fetch, timeout, message=f"{expected} audit entries for {entity_id}")


def today_utc(offset_days=0):
    """The service's "today" (UTC) plus offset_days, as YYYY-MM-DD."""
    import datetime as _dt
    day = _dt.datetime.now(_dt.timezone.utc).date() + _dt.timedelta(days=offset_days)
    return day.isoformat()


def purge_subprocessor(api, sp_id):
    """Delete a subprocessor and the transfers, TOM documents and agreements that
    refer to it (admin api). For tests whose subprocessors must not outlive them,
    e.g. ones located in a country of the unique_country() pool."""
    for path in ("/v1/transfers", "/v1/tom-documents", "/v1/agreements"):
        items, _ = api.list_all(path, subprocessor_id=sp_id)
        for it in items:
            assert_status(api.delete(f"{path}/{it['id']}", if_match=it["version"]), 204)
    cur = api.get(f"/v1/subprocessors/{sp_id}")
    if cur.status_code == 404:
        return
    assert_status(cur, 200)
    assert_status(api.delete(f"/v1/subprocessors/{sp_id}", if_match=cur.json()["version"]), 204)


# ---------------------------------------------------------------------------
# the public list (test_public, test_publications, test_browser)

PUBLIC = "/public/v1/subprocessors"

# The only keys a frozen public entry may have (service/domain/publication.c).
PUBLIC_KEYS = frozenset({
    "id", "legal_name", "trading_name", "hq_country", "website", "privacy_policy_url",
    "dpa_url", "subprocessor_list_url", "category", "role", "purpose", "data_categories",
    "data_subjects", "locations", "certifications", "dpf_participating", "description",
})


def wait_public_ready(srv, timeout=10, interval=0.25):
    """Right after a start the public snapshot may still be loading (503 with
    Retry-After); wait until the public list is served."""
    def ready():
        resp = requests.get(srv.url + PUBLIC, timeout=10)
        if resp.status_code == 503:
            assert resp.headers.get("Retry-After"), describe(resp)
            return None
        assert resp.status_code == 200, describe(resp)
        return resp
    return wait_until(ready, timeout, interval=interval, message="the public list to be loaded")


# ---------------------------------------------------------------------------
# webhook subscriptions (test_webhooks, test_delivery; the fixtures
# `receivers`, `hook_server`, `hook_admin` and `subscribe` are in conftest.py)

HOOKS = "/v1/webhooks"
HOOK_ADMIN = "hook-admin"  # the token sub of the `hook_admin` fixture

# Loopback-friendly delivery settings for tests (see docs/configuration.md):
# http and 127.0.0.0/8 allowed, poll 100 ms, retry schedule "0,1,1,1" (attempt
# 1 at once, then 1 s, 1 s, 1 s; ±10 % jitter; four attempts, then "failed"),
# timeout 2 s, lease 8 s.
WEBHOOK_ENV = {
    "SUBREG_WEBHOOK_ALLOW_HTTP": "true",
    "SUBREG_WEBHOOK_ALLOW_NETS": "127.0.0.0/8",
    "SUBREG_WEBHOOK_POLL_MS": "100",
    "SUBREG_WEBHOOK_RETRY_SCHEDULE": "0,1,1,1",
    "SUBREG_WEBHOOK_TIMEOUT_MS": "2000",
    "SUBREG_WEBHOOK_LEASE_MS": "8000",
}


def create_hook(api, target, event_types=None, **body):
    """POST a subscription to a receiver (or a URL); asserts the 201 and returns
    its body (with the secret). event_types None leaves the service's default."""
    body["url"] = target if isinstance(target, str) else target.url
    if event_types is not None:
        body["event_types"] = list(event_types)
    resp = api.post(HOOKS, body)
    assert_status(resp, 201)
    return resp.json()


def get_hook(api, hid):
    resp = api.get(f"{HOOKS}/{hid}")
    assert_status(resp, 200)
    return resp.json()


def retire_hook(api, hid):
    """Teardown: delete the subscription; if the service refuses (see
    test_delete_subscription_with_deliveries), at least disable it so that it
    receives nothing in later tests (a subscription deleted by its test is fine)."""
    for _ in range(10):
        cur = api.get(f"{HOOKS}/{hid}")
        if cur.status_code == 404:
            return
        assert_status(cur, 200)
        version = cur.json()["version"]
        resp = api.delete(f"{HOOKS}/{hid}", if_match=version)
        if resp.status_code in (204, 404):
            return
        if resp.status_code == 409:  # refused while it has deliveries: disable it
            resp = api.patch(f"{HOOKS}/{hid}", {"enabled": False}, if_match=version)
            if resp.status_code == 200:
                return
    raise AssertionError(f"could not delete or disable {hid}")
