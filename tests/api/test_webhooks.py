"""Webhook subscriptions (issue 5): /v1/webhooks CRUD, the secret shown once,
validation, the URL policy (SSRF guard) at creation and on PATCH, roles,
secret rotation (both secrets verify during the overlap; with no overlap only
the new one does) and ping.

Signatures are verified with the official Standard Webhooks library
(`standardwebhooks` on PyPI) through receivers.verify(), never with our own code.

Most tests run on this module's own stack (`hook_server`: http allowed,
127.0.0.0/8 allowed, fast delivery settings); the default policy (https only,
no allow-list) is tested on the shared session server, which has no webhook
settings.
"""

import base64
import datetime as dt
import re
import time

import pytest

from helpers import (
    HOOKS,
    WEBHOOK_ENV,
    assert_problem,
    assert_status,
    assert_validation,
    create_hook,
    describe,
    get_hook,
    parse_ts,
    retire_hook,
    sp_body,
    unique_name,
)
from receivers import verifies, verify

SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9+/]+={0,2}$")
HOOK_ID_RE = re.compile(r"^wh_[0-9A-Z]{26}$")


# ---------------------------------------------------------------------------
# helpers (the fixtures hook_server, hook_admin, subscribe and receivers are in
# conftest.py)


def delete_hook(api, hid):
    """DELETE with the current version (the delivery thread may bump it);
    returns the last response (204, or 404 when it was gone already)."""
    for _ in range(10):
        cur = api.get(f"{HOOKS}/{hid}")
        if cur.status_code == 404:
            return cur
        assert_status(cur, 200)
        resp = api.delete(f"{HOOKS}/{hid}", if_match=cur.json()["version"])
        if resp.status_code != 412:
            assert resp.status_code in (204, 404), describe(resp)
            return resp
    raise AssertionError(f"could not delete {hid}")


def secret_bytes(secret):
    assert SECRET_RE.match(secret), secret
    return base64.b64decode(secret[len("whsec_"):])


def now_utc():
    return dt.datetime.now(dt.timezone.utc)


# ---------------------------------------------------------------------------
# create, get, list: the secret is shown once


def test_create_returns_the_secret_once(hook_server, hook_admin, receivers):
    rcv = receivers()
    body = {"url": rcv.url, "event_types": ["publication.*", "subprocessor.created"],
            "description": "Kundenbenachrichtigung"}
    resp = hook_admin.post(HOOKS, body)
    assert_status(resp, 201)
    hook = resp.json()
    try:
        assert HOOK_ID_RE.match(hook["id"]), hook
        assert resp.headers.get("Location") == f"{HOOKS}/{hook['id']}"
        assert resp.headers.get("ETag") == '"1"'
        assert hook["version"] == 1
        assert hook["url"] == rcv.url
        assert hook["event_types"] == body["event_types"]
        assert hook["description"] == body["description"]
        assert hook["enabled"] is True
        for ro in ("disabled_reason", "failing_since", "secret_rotated_at"):
            assert ro not in hook, hook
        # whsec_ + base64 of at least 24 random bytes
        assert len(secret_bytes(hook["secret"])) >= 24

        got = hook_admin.get(f"{HOOKS}/{hook['id']}")
        assert_status(got, 200)
        assert "secret" not in got.json()
        assert "whsec_" not in got.text
        assert not [k for k in got.json() if k.startswith("_")], got.json()
        expected = {k: v for k, v in hook.items() if k != "secret"}
        assert got.json() == expected

        items, _ = hook_admin.list_all(HOOKS)
        mine = [it for it in items if it["id"] == hook["id"]]
        assert mine == [expected]
        listing = hook_admin.get(HOOKS, params={"limit": 200})
        assert_status(listing, 200)
        assert "whsec_" not in listing.text
    finally:
        retire_hook(hook_admin, hook["id"])


def test_defaults_and_distinct_secrets(hook_admin, subscribe, receivers):
    rcv = receivers()
    a = subscribe(rcv)
    b = subscribe(rcv)
    assert a["event_types"] == ["*"]
    assert a["enabled"] is True
    assert a["secret"] != b["secret"]
    assert secret_bytes(a["secret"]) != secret_bytes(b["secret"])


def test_every_event_type_pattern_is_accepted(hook_admin, subscribe, receivers):
    types = ["ping", "publication.announced", "publication.effective", "publication.*",
             "webhook.disabled"]
    for entity in ("subprocessor", "agreement", "transfer", "tom_document", "customer",
                   "document", "objection", "country", "adequacy_decision", "scc_set"):
        types += [f"{entity}.created", f"{entity}.updated", f"{entity}.deleted", f"{entity}.*"]
    hook = subscribe(receivers(), types)
    assert hook["event_types"] == types
    hook = subscribe(receivers(), ["*"])
    assert hook["event_types"] == ["*"]


@pytest.mark.parametrize("body, pointer", [
    ({"description": "no url"}, "/url"),
    ({"url": None}, "/url"),
    ({"url": "ftp://127.0.0.1/hook"}, "/url"),
    ({"url": "not a url"}, "/url"),
    ({"url": "RCV", "event_types": ["subprocessor.exploded"]}, "/event_types/0"),
    ({"url": "RCV", "event_types": ["nonsense"]}, "/event_types/0"),
    ({"url": "RCV", "event_types": ["publication.retracted"]}, "/event_types/0"),
    ({"url": "RCV", "event_types": ["ping", "sp.*"]}, "/event_types/1"),
    ({"url": "RCV", "event_types": "publication.*"}, "/event_types"),
    ({"url": "RCV", "event_types": []}, "/event_types"),
    ({"url": "RCV", "enabled": "yes"}, "/enabled"),
], ids=["missing-url", "null-url", "ftp-url", "garbage-url", "bad-action", "bad-type",
        "bad-publication-type", "second-item-bad", "not-an-array", "empty-array",
        "enabled-not-bool"])
def test_validation(hook_admin, receivers, body, pointer):
    rcv = receivers()
    body = {k: (rcv.url if v == "RCV" else v) for k, v in body.items()}
    resp = hook_admin.post(HOOKS, body)
    assert_validation(resp, pointer)
    assert not rcv.snapshot()


def test_unknown_webhook_is_404(hook_admin):
    for method, path in (("GET", f"{HOOKS}/wh_00000000000000000000000000"),
                         ("POST", f"{HOOKS}/wh_00000000000000000000000000/ping"),
                         ("POST", f"{HOOKS}/wh_00000000000000000000000000/rotate-secret"),
                         ("GET", "/v1/deliveries/nope-nope"),
                         ("POST", "/v1/deliveries/nope-nope/redeliver")):
        assert_problem(hook_admin.request(method, path), 404, "not-found")


# ---------------------------------------------------------------------------
# the URL policy (SSRF guard) at creation


def assert_url_refused(resp, word=None):
    body = assert_problem(resp, 422, "unprocessable-entity")
    errors = body.get("errors")
    assert isinstance(errors, list) and errors, describe(resp)
    assert errors[0]["pointer"] == "/url", describe(resp)
    if word:
        assert word in errors[0]["message"], describe(resp)
    return body


def test_https_required_without_the_http_switch(server, admin):
    """The session server has no webhook settings: https only, no allow-list."""
    assert_url_refused(admin.post(HOOKS, {"url": "http://example.com/hook"}), "https")
    assert_url_refused(admin.post(HOOKS, {"url": "http://93.184.215.14/hook"}), "https")
    # https to loopback: https is fine, the address is not.
    assert_url_refused(admin.post(HOOKS, {"url": "https://127.0.0.1/"}), "loopback")


FORBIDDEN = [
    ("https://127.0.0.1/hook", "loopback"),
    ("https://127.9.9.9:8443/hook", "loopback"),
    ("https://localhost/hook", "loopback"),          # a name that resolves to loopback
    ("https://LocalHost/hook", "loopback"),
    ("https://2130706433/hook", "loopback"),         # 127.0.0.1 as one decimal number
    ("https://0x7f.1/hook", "loopback"),             # ... and in inet_aton shorthand
    ("https://10.0.0.1/hook", "private"),
    ("https://10.255.255.254/hook", "private"),
    ("https://172.16.0.1/hook", "private"),
    ("https://172.31.255.1/hook", "private"),
    ("https://192.168.1.1/hook", "private"),
    ("https://100.64.0.1/hook", "CGNAT"),
    ("https://100.127.255.254/hook", "CGNAT"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::1]:8443/hook", "loopback"),
    ("https://[fc00::1]/hook", "unique local"),
    ("https://[fd12:3456::1]/hook", "unique local"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://[::ffff:127.0.0.1]/hook", "IPv4-mapped"),
    ("https://[::ffff:10.0.0.1]/hook", "IPv4-mapped"),
    ("https://[::]/hook", "unspecified"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://0.0.0.0:443/hook", "unspecified"),
    ("https://224.0.0.1/hook", "multicast"),
]


@pytest.mark.parametrize("url, why", FORBIDDEN, ids=[u for u, _ in FORBIDDEN])
def test_forbidden_address_refused_at_creation(server, admin, url, why):
    assert_url_refused(admin.post(HOOKS, {"url": url}), why)


def test_hostname_that_does_not_resolve_is_refused(server, admin):
    assert_url_refused(admin.post(HOOKS, {"url": "https://no-such-host.invalid/hook"}),
                       "resolve")


def test_allow_list_opens_only_its_networks(hook_server, hook_admin, subscribe, receivers):
    """hook_server allows http and 127.0.0.0/8: loopback is accepted, nothing else."""
    rcv = receivers()
    assert subscribe(rcv)["url"] == rcv.url
    assert subscribe("https://127.0.0.1:1/hook")["enabled"] is True
    assert subscribe(f"http://localhost:{rcv.port}/hook")["url"].startswith("http://localhost")
    for url, why in FORBIDDEN:
        if why in ("loopback",) and "[" not in url:
            continue  # 127.0.0.0/8 (and names resolving there) are opened
        assert_url_refused(hook_admin.post(HOOKS, {"url": url}), why)


def test_roles(hook_server, hook_admin, subscribe, receivers):
    """Everything under /v1/webhooks and /v1/deliveries is admin only, GET too."""
    hook = subscribe(receivers())
    hid = hook["id"]
    ping = hook_admin.post(f"{HOOKS}/{hid}/ping")
    assert_status(ping, 200)
    did = ping.json()["delivery_id"]
    calls = [
        ("GET", HOOKS, None),
        ("POST", HOOKS, {"url": receivers().url}),
        ("GET", f"{HOOKS}/{hid}", None),
        ("PATCH", f"{HOOKS}/{hid}", {"enabled": False}),
        ("DELETE", f"{HOOKS}/{hid}", None),
        ("POST", f"{HOOKS}/{hid}/rotate-secret", None),
        ("POST", f"{HOOKS}/{hid}/ping", None),
        ("GET", f"{HOOKS}/{hid}/deliveries", None),
        ("GET", f"/v1/deliveries/{did}", None),
        ("GET", "/v1/deliveries", None),
        ("POST", f"/v1/deliveries/{did}/redeliver", None),
    ]
    for role in ("reader", "editor"):
        api = hook_server.api(roles=[role], sub=f"{role}-x")
        for method, path, body in calls:
            kw = {"if_match": 1} if method in ("PATCH", "DELETE") else {}
            if body is not None:
                kw["json_body"] = body
            resp = api.request(method, path, **kw)
            assert_problem(resp, 403, "forbidden")
    anon = hook_server.anon()
    for method, path, _ in calls:
        assert_problem(anon.request(method, path), 401, "unauthorized")
    # nothing changed
    after = hook_admin.get(f"{HOOKS}/{hid}")
    assert_status(after, 200)
    assert after.json()["enabled"] is True


# ---------------------------------------------------------------------------
# PATCH and DELETE


def patch_hook(api, hid, patch, expect=200):
    """PATCH with the current version (retried if the delivery thread wrote)."""
    for _ in range(10):
        cur = get_hook(api, hid)
        resp = api.patch(f"{HOOKS}/{hid}", patch, if_match=cur["version"])
        if resp.status_code != 412:
            assert resp.status_code == expect, describe(resp)
            return resp
    raise AssertionError("PATCH kept failing with 412")


def test_patch_url_types_enabled_and_delete(hook_server, hook_admin, subscribe, receivers):
    one, two = receivers(), receivers()
    hook = subscribe(one, ["subprocessor.*"], description="first")
    hid = hook["id"]
    path = f"{HOOKS}/{hid}"

    assert_problem(hook_admin.patch(path, {"enabled": False}), 428, "precondition-required")
    assert_problem(hook_admin.patch(path, {"enabled": False}, if_match='"7"'),
                   412, "precondition-failed")
    assert_problem(hook_admin.request("PATCH", path, json_body={"enabled": False},
                                  content_type="application/json", if_match=1),
                   415, "unsupported-media-type")

    resp = hook_admin.patch(path, {"url": two.url, "event_types": ["publication.*", "ping"],
                               "description": None}, if_match=1)
    assert_status(resp, 200)
    assert resp.headers.get("ETag") == '"2"'
    patched = resp.json()
    assert "secret" not in patched and "whsec_" not in resp.text
    assert patched["version"] == 2
    assert patched["url"] == two.url
    assert patched["event_types"] == ["publication.*", "ping"]
    assert "description" not in patched
    assert patched["created_at"] == hook["created_at"]
    assert get_hook(hook_admin, hid) == patched

    # validation and the URL policy apply to PATCH too
    assert_validation(hook_admin.patch(path, {"event_types": ["bogus.*"]}, if_match=2),
                      "/event_types/0")
    assert_validation(hook_admin.patch(path, {"url": None}, if_match=2), "/url")
    assert_url_refused(hook_admin.patch(path, {"url": "https://10.0.0.1/hook"}, if_match=2),
                       "private")
    assert_url_refused(hook_admin.patch(path, {"url": "https://[::1]/hook"}, if_match=2),
                       "loopback")
    assert get_hook(hook_admin, hid)["url"] == two.url

    # disabled: no deliveries
    resp = hook_admin.patch(path, {"enabled": False, "event_types": ["subprocessor.*"]}, if_match=2)
    assert_status(resp, 200)
    assert resp.json()["enabled"] is False
    sp = hook_admin.create_sp(sp_body(legal_name=unique_name("Disabled hook")))
    two.quiet_for(lambda r: True, 1.5)
    deliveries = hook_admin.get(f"{path}/deliveries")
    assert_status(deliveries, 200)
    assert deliveries.json()["items"] == []

    # enabled again: the next change arrives, signed with the original secret
    resp = hook_admin.patch(path, {"enabled": True}, if_match=3)
    assert_status(resp, 200)
    sp = hook_admin.patch_sp(sp["id"], {"notes": "after re-enabling"}, sp["version"])
    (rec,) = two.wait_about(sp["id"], "subprocessor.updated")
    assert verify(rec, hook["secret"])["data"]["id"] == sp["id"]
    assert not one.snapshot(), "the old URL must not be called any more"



def test_delete(hook_server, hook_admin, subscribe, receivers):
    """DELETE with If-Match; a deleted subscription receives nothing more."""
    rcv = receivers()
    hook = subscribe(rcv, ["subprocessor.*"])
    hid, path = hook["id"], f"{HOOKS}/{hook['id']}"
    assert_problem(hook_admin.delete(path), 428, "precondition-required")
    assert_problem(hook_admin.delete(path, if_match=6), 412, "precondition-failed")
    assert_status(hook_admin.delete(path, if_match=1), 204)
    assert_problem(hook_admin.get(path), 404, "not-found")
    assert_problem(hook_admin.delete(path, if_match=1), 404, "not-found")
    items, _ = hook_admin.list_all(HOOKS)
    assert hid not in [it["id"] for it in items]
    hook_admin.create_sp(sp_body(legal_name=unique_name("After delete")))
    rcv.quiet_for(lambda r: True, 1.5)


def test_delete_subscription_with_deliveries(hook_server, hook_admin, subscribe, receivers):
    """A subscription that has received anything can still be deleted (its
    pending deliveries are cancelled; delivery.c handles deleted subscriptions)."""
    rcv = receivers()
    hook = subscribe(rcv, ["subprocessor.*"])
    hid, path = hook["id"], f"{HOOKS}/{hook['id']}"
    assert_status(hook_admin.post(f"{path}/ping"), 200)
    sp = hook_admin.create_sp(sp_body(legal_name=unique_name("Before delete")))
    rcv.wait_about(sp["id"], "subprocessor.created")
    cur = get_hook(hook_admin, hid)
    resp = hook_admin.delete(path, if_match=cur["version"])
    assert resp.status_code == 204, (
        f"a subscription with a delivery log cannot be deleted: {describe(resp)}")
    assert_problem(hook_admin.get(path), 404, "not-found")
    hook_admin.patch_sp(sp["id"], {"notes": "after delete"}, sp["version"])
    rcv.quiet_for(lambda r: r.type == "subprocessor.updated", 1.5)


def test_secret_never_in_the_audit_trail(hook_server, hook_admin, subscribe, receivers):
    """The audit trail is readable by every role: the subscription's secrets
    must not appear in it, after create, PATCH, rotate or delete."""
    hook = subscribe(receivers(), ["ping"])
    hid = hook["id"]
    patch_hook(hook_admin, hid, {"description": "patched"})
    rot = hook_admin.post(f"{HOOKS}/{hid}/rotate-secret")
    assert_status(rot, 200)
    patch_hook(hook_admin, hid, {"enabled": False})
    delete_hook(hook_admin, hid)
    reader = hook_server.api(roles=["reader"], sub="auditor")
    resp = reader.get("/v1/audit", params={"entity_id": hid, "limit": 200})
    assert_status(resp, 200)
    entries = resp.json()["items"]
    assert [e["action"] for e in entries] == ["create", "update", "update", "update", "delete"], entries
    for secret in (hook["secret"], rot.json()["secret"]):
        assert secret[len("whsec_"):] not in resp.text, (
            "a webhook secret is readable in GET /v1/audit (by any reader): "
            + resp.text[:1500])
    assert "whsec_" not in resp.text
    assert "_secrets" not in resp.text


# ---------------------------------------------------------------------------
# secret rotation


def rotate(api, hid):
    resp = api.post(f"{HOOKS}/{hid}/rotate-secret")
    assert_status(resp, 200)
    body = resp.json()
    assert set(body) == {"secret", "previous_secrets_valid_until"}, body
    assert SECRET_RE.match(body["secret"])
    assert len(secret_bytes(body["secret"])) >= 24
    return body


def test_rotation_overlap_both_secrets_verify(hook_server, hook_admin, subscribe, receivers):
    rcv = receivers()
    hook = subscribe(rcv, ["subprocessor.*"])
    hid, old = hook["id"], hook["secret"]

    # before the rotation: one signature, the old secret
    sp = hook_admin.create_sp(sp_body(legal_name=unique_name("Rotation")))
    (first,) = rcv.wait_about(sp["id"], "subprocessor.created")
    assert len(first.signatures) == 1, first.headers
    assert verify(first, old)["data"]["id"] == sp["id"]

    before = now_utc()
    rot = rotate(hook_admin, hid)
    new = rot["secret"]
    assert new != old
    until = parse_ts(rot["previous_secrets_valid_until"])
    # hook_server runs with the default overlap of 24 h
    assert dt.timedelta(hours=23, minutes=59) <= until - before <= dt.timedelta(hours=24, minutes=1)
    got = get_hook(hook_admin, hid)
    assert "secret" not in got and "whsec_" not in hook_admin.get(f"{HOOKS}/{hid}").text
    assert abs(parse_ts(got["secret_rotated_at"]) - before) < dt.timedelta(seconds=5)
    assert not verifies(first, new), "the pre-rotation delivery cannot carry the new secret"

    # after: two space-separated signatures, each secret verifies on its own
    sp = hook_admin.patch_sp(sp["id"], {"notes": "rotated"}, sp["version"])
    (rec,) = rcv.wait_about(sp["id"], "subprocessor.updated")
    sigs = rec.signatures
    assert len(sigs) == 2 and all(s.startswith("v1,") for s in sigs), rec.headers
    assert verify(rec, old)["data"]["version"] == 2
    assert verify(rec, new)["data"]["version"] == 2
    assert not verifies(rec, "whsec_" + base64.b64encode(b"x" * 32).decode())

    # ping during the overlap is signed with both as well
    assert_status(hook_admin.post(f"{HOOKS}/{hid}/ping"), 200)
    (ping,) = rcv.wait_type("ping")
    assert verifies(ping, old) and verifies(ping, new)


def test_rotation_without_overlap_only_new_secret_verifies(make_server, receivers):
    srv = make_server(extra_env=dict(WEBHOOK_ENV, SUBREG_WEBHOOK_ROTATION_OVERLAP_S="0"))
    api = srv.api(roles=["admin"], sub="rotator")
    rcv = receivers()
    hook = create_hook(api, rcv, ["subprocessor.*", "ping"])
    old = hook["secret"]
    rot = rotate(api, hook["id"])
    new = rot["secret"]
    assert abs(parse_ts(rot["previous_secrets_valid_until"]) - now_utc()) < dt.timedelta(seconds=5)

    sp = api.create_sp(sp_body(legal_name=unique_name("No overlap")))
    (rec,) = rcv.wait_about(sp["id"], "subprocessor.created")
    assert len(rec.signatures) == 1, rec.headers
    assert verify(rec, new)["data"]["id"] == sp["id"]
    assert not verifies(rec, old), "the rotated-out secret must not sign any more"

    assert_status(api.post(f"{HOOKS}/{hook['id']}/ping"), 200)
    (ping,) = rcv.wait_type("ping")
    assert verifies(ping, new) and not verifies(ping, old)

    # and a second rotation leaves only the newest
    newest = rotate(api, hook["id"])["secret"]
    assert_status(api.post(f"{HOOKS}/{hook['id']}/ping"), 200)
    pings = rcv.wait_type("ping", count=2)
    assert len(pings[1].signatures) == 1
    assert verifies(pings[1], newest) and not verifies(pings[1], new)


def test_deliveries_ignore_proxies_in_the_environment(make_server, receivers):
    """A proxy from the environment would connect on subreg's behalf, and the address
    check would see the proxy's address, not the target's (SSRF): deliveries go
    straight to the target, whatever http_proxy/https_proxy/ALL_PROXY say."""
    proxy = receivers()
    srv = make_server(extra_env=dict(WEBHOOK_ENV, http_proxy=proxy.url, https_proxy=proxy.url,
                                     ALL_PROXY=proxy.url, no_proxy="", NO_PROXY=""))
    api = srv.api(roles=["admin"], sub="proxied")
    rcv = receivers()
    hook = create_hook(api, rcv, ["ping"])
    resp = api.post(f"{HOOKS}/{hook['id']}/ping")
    assert_status(resp, 200)
    assert resp.json()["success"] is True, resp.json()
    (ping,) = rcv.wait_type("ping")
    assert verifies(ping, hook["secret"])
    assert proxy.records == [], "a delivery went through the environment's proxy"


# ---------------------------------------------------------------------------
# ping


def test_ping_success(hook_server, hook_admin, subscribe, receivers):
    rcv = receivers()
    hook = subscribe(rcv, ["publication.*"])  # ping is sent regardless
    t0 = time.time()
    resp = hook_admin.post(f"{HOOKS}/{hook['id']}/ping")
    assert_status(resp, 200)
    result = resp.json()
    assert result["success"] is True, result
    assert result["status_code"] == 200
    assert isinstance(result["latency_ms"], (int, float)) and 0 <= result["latency_ms"] < 2000
    assert "error" not in result or not result["error"]
    assert isinstance(result["delivery_id"], str) and result["delivery_id"]

    (rec,) = rcv.wait_type("ping", timeout=2)   # sent before the answer: already there
    payload = verify(rec, hook["secret"])
    assert payload["type"] == "ping"
    assert payload["data"]["webhook_id"] == hook["id"]
    parse_ts(payload["timestamp"])
    assert abs(int(rec.headers["webhook-timestamp"]) - t0) < 30
    assert rec.headers.get("content-type", "").startswith("application/json")
    assert rec.method == "POST" and rec.path == "/hook"

    d = hook_admin.get(f"/v1/deliveries/{result['delivery_id']}")
    assert_status(d, 200)
    d = d.json()
    assert d["webhook_id"] == hook["id"]
    assert d["event_type"] == "ping"
    assert d["event_id"] == rec.webhook_id
    assert d["state"] == "delivered"
    assert d["attempts"] == 1
    (attempt,) = d["attempt_log"]
    assert attempt["n"] == 1 and attempt["status_code"] == 200
    parse_ts(attempt["at"])
    items = hook_admin.get(f"{HOOKS}/{hook['id']}/deliveries").json()["items"]
    assert result["delivery_id"] in [it["id"] for it in items]


def test_ping_failures_are_reported(hook_server, hook_admin, subscribe, receivers):
    rcv = receivers([500])
    hook = subscribe(rcv, ["ping"])
    result = hook_admin.post(f"{HOOKS}/{hook['id']}/ping").json()
    assert result["success"] is False and result["status_code"] == 500, result

    rcv.stop()
    resp = hook_admin.post(f"{HOOKS}/{hook['id']}/ping")
    assert_status(resp, 200)
    result = resp.json()
    assert result["success"] is False, result
    assert not result.get("status_code")
    assert isinstance(result.get("error"), str) and result["error"], result
    d = hook_admin.get(f"/v1/deliveries/{result['delivery_id']}").json()
    assert d["state"] == "failed"
    assert d["attempt_log"][0]["error"] == result["error"]
