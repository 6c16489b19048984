"""Audit log: one entry per committed change, relayed through the outbox, also
after a crash right after the commit."""

import datetime as dt
import time
import uuid

import pytest
import requests

from helpers import (RFC3339_UTC_RE, assert_problem, assert_status, parse_ts, sp_body,
                     unique_name, wait_until)

SP = "/v1/subprocessors"


def audit_for(api, entity_id, expected, timeout=10, **params):
    """Poll /v1/audit?entity_id= until `expected` entries are there."""
    def fetch():
        items, _ = api.list_all("/v1/audit", entity_id=entity_id, **params)
        return items if len(items) >= expected else None
    return wait_until(fetch, timeout, message=f"{expected} audit entries for {entity_id}")


@pytest.fixture(scope="module")
def history(server):
    """create, patch, patch, delete by one actor, with our own request ids."""
    sub = f"auditor-{uuid.uuid4().hex[:8]}"
    api = server.api(roles=["admin"], sub=sub)
    rids = [f"audit-{uuid.uuid4().hex[:12]}-{i}" for i in range(4)]
    resp = api.post(SP, sp_body(legal_name=unique_name("Audited")),
                    headers={"X-Request-Id": rids[0]})
    assert_status(resp, 201)
    created = resp.json()
    sp_id = created["id"]
    path = f"{SP}/{sp_id}"
    r1 = api.patch(path, {"notes": "first change"}, if_match=1, headers={"X-Request-Id": rids[1]})
    assert_status(r1, 200)
    # a `since` boundary strictly between the first and the second change
    audit_for(api, sp_id, 2)
    time.sleep(1.1)
    since = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(0.2)
    r2 = api.patch(path, {"status": "active"}, if_match=2, headers={"X-Request-Id": rids[2]})
    assert_status(r2, 200)
    r3 = api.delete(path, if_match=3, headers={"X-Request-Id": rids[3]})
    assert_status(r3, 204)
    responses = [resp, r1, r2, r3]
    for rid, r in zip(rids, responses):
        assert r.headers.get("X-Request-Id") == rid
    entries = audit_for(api, sp_id, 4)
    return {"sub": sub, "id": sp_id, "rids": rids, "responses": responses,
            "entries": entries, "since": since, "api": api, "created": created}


def test_audit_trail_of_a_lifecycle(history):
    entries = history["entries"]
    assert len(entries) == 4, entries
    assert [e["action"] for e in entries] == ["create", "update", "update", "delete"]
    for e in entries:
        assert e["actor"] == history["sub"]
        assert e["entity_type"] == "subprocessor"
        assert e["entity_id"] == history["id"]
        assert isinstance(e["id"], str) and e["id"]
        assert RFC3339_UTC_RE.match(e["at"]), e["at"]
    assert [e["request_id"] for e in entries] == history["rids"]
    assert [e["request_id"] for e in entries] == [
        r.headers.get("X-Request-Id") for r in history["responses"]]
    assert [e["entity_version"] for e in entries[:3]] == [1, 2, 3]
    assert entries[3]["entity_version"] in (3, 4)
    ats = [parse_ts(e["at"]) for e in entries]
    assert ats == sorted(ats), "entries are not oldest first"
    assert len({e["id"] for e in entries}) == 4


def test_audit_before_and_after(history):
    create, up1, up2, delete = history["entries"]
    assert create["before"] is None
    assert create["after"]["version"] == 1
    assert create["after"]["id"] == history["id"]
    assert create["after"]["legal_name"] == history["created"]["legal_name"]

    assert up1["before"]["version"] == 1 and up1["after"]["version"] == 2
    assert "notes" in up1["after"] and up1["after"]["notes"] == "first change"
    assert up1["before"].get("notes") == history["created"].get("notes")

    assert up2["before"]["version"] == 2 and up2["after"]["version"] == 3
    assert up2["before"]["status"] == "proposed" and up2["after"]["status"] == "active"

    assert delete["before"]["version"] == 3
    assert delete["before"]["status"] == "active"
    assert delete["after"] is None


def test_audit_filter_actor(history):
    items, _ = history["api"].list_all("/v1/audit", actor=history["sub"])
    assert [e["id"] for e in items] == [e["id"] for e in history["entries"]]
    items, _ = history["api"].list_all("/v1/audit", actor="nobody-" + uuid.uuid4().hex)
    assert items == []


def test_audit_filter_entity_type(history):
    items, _ = history["api"].list_all("/v1/audit", entity_type="subprocessor",
                                       actor=history["sub"])
    assert len(items) == 4
    items, _ = history["api"].list_all("/v1/audit", entity_type="subprocessor")
    assert all(e["entity_type"] == "subprocessor" for e in items)
    assert {e["id"] for e in history["entries"]} <= {e["id"] for e in items}


def test_audit_filter_since(history):
    items, _ = history["api"].list_all("/v1/audit", entity_id=history["id"],
                                       since=history["since"])
    assert [e["action"] for e in items] == ["update", "delete"], items
    assert [e["entity_version"] for e in items][0] == 3
    assert all(parse_ts(e["at"]) >= parse_ts(history["since"]) for e in items)
    # a `since` in the future gives nothing
    items, _ = history["api"].list_all("/v1/audit", entity_id=history["id"],
                                       since="2099-01-01T00:00:00Z")
    assert items == []


def test_audit_pagination(history):
    items, pages = history["api"].list_all("/v1/audit", limit=1, entity_id=history["id"])
    assert [e["id"] for e in items] == [e["id"] for e in history["entries"]]
    assert pages == 4


def test_audit_newest_first(history):
    # "what changed last week?": order=desc, page by page with the same order
    items, pages = history["api"].list_all("/v1/audit", limit=1, entity_id=history["id"], order="desc")
    assert [e["id"] for e in items] == [e["id"] for e in reversed(history["entries"])]
    assert [e["action"] for e in items] == ["delete", "update", "update", "create"]
    assert pages == 4
    # the cursor keeps the direction: page 2 without order is still newest first
    api = history["api"]
    first = api.get("/v1/audit", params={"entity_id": history["id"], "order": "desc", "limit": 1}).json()
    nxt = api.get("/v1/audit", params={"entity_id": history["id"], "limit": 1, "cursor": first["next_cursor"]})
    assert nxt.json()["items"][0]["action"] == "update" and nxt.json()["items"][0]["entity_version"] == 3
    assert_problem(api.get("/v1/audit", params={"entity_id": history["id"], "order": "asc",
                                                 "cursor": first["next_cursor"]}), 400, "malformed-request")


def test_reader_can_read_audit(server, history):
    reader = server.api(roles=["reader"], sub="rita")
    resp = reader.get("/v1/audit", params={"entity_id": history["id"]})
    assert_status(resp, 200)
    assert len(resp.json()["items"]) == 4


def test_audit_requires_a_role(server, tokens):
    tok = tokens(roles=None)
    resp = requests.get(server.url + "/v1/audit", headers={"Authorization": f"Bearer {tok}"},
                        timeout=10)
    assert_problem(resp, 403, "forbidden")


@pytest.mark.parametrize("params", [
    {"since": "yesterday"}, {"since": "2026-13-01T00:00:00Z"}, {"limit": "0"}, {"limit": "x"},
    {"cursor": "garbage"}, {"colour": "red"}, {"order": "newest"},
    # RFC 3339: second 60 only for a leap second, 23:59:60 in UTC (as `format: date-time`)
    {"since": "2026-11-27T14:00:60Z"}, {"since": "2026-12-31T23:59:60+01:00"},
], ids=["since-word", "since-bad-month", "limit-0", "limit-x", "cursor", "unknown-param", "order",
        "since-second-60", "since-second-60-offset"])
def test_audit_bad_query_is_400(admin, params):
    assert_problem(admin.get("/v1/audit", params=params), 400, "malformed-request")


def test_audit_since_leap_second(admin):
    # 23:59:60 in UTC (also written with an offset) is a leap second: accepted
    for since in ("2016-12-31T23:59:60Z", "2017-01-01T00:59:60+01:00"):
        assert_status(admin.get("/v1/audit", params={"since": since, "limit": 1}), 200)


def test_audit_is_read_only(admin):
    resp = admin.request("POST", "/v1/audit", json_body={"action": "create"})
    assert_problem(resp, 405, "method-not-allowed")
    resp = admin.request("DELETE", "/v1/audit")
    assert_problem(resp, 405, "method-not-allowed")


def test_refused_changes_leave_no_audit(admin):
    created = admin.create_sp(sp_body(legal_name=unique_name()))
    path = f"{SP}/{created['id']}"
    assert_problem(admin.patch(path, {"notes": "x"}, if_match=9), 412, "precondition-failed")
    assert_problem(admin.patch(path, {"category": "cloud"}, if_match=1), 400, "validation-error")
    assert_problem(admin.delete(path, if_match=5), 412, "precondition-failed")
    entries = audit_for(admin, created["id"], 1)
    time.sleep(1.0)  # give the relay a few sweeps to write anything it (wrongly) would
    items, _ = admin.list_all("/v1/audit", entity_id=created["id"])
    assert [e["action"] for e in items] == ["create"], items
    assert entries[0]["entity_version"] == 1


# ---------------------------------------------------------------------------
# crash after commit: the outbox must still produce the audit entry


def test_crash_after_commit_still_audited(make_server):
    srv = make_server(extra_env={"SUBREG_TEST_FAULT": "exit_after_commit"})
    api = srv.api(roles=["admin"], sub="crash-tester")
    rid = f"crash-{uuid.uuid4().hex[:12]}"
    name = unique_name("Crash")
    try:
        resp = api.post(SP, sp_body(legal_name=name), headers={"X-Request-Id": rid}, timeout=10)
        status = resp.status_code  # a response before the exit is tolerated
    except requests.RequestException:
        status = None
    rc = srv.wait_exit(timeout=20)
    assert rc == 99, f"expected the fault injection to _exit(99), got {rc} (status {status})"

    srv.restart(extra_env={"SUBREG_TEST_FAULT": None}, expected_rc=99)
    api = srv.api(roles=["admin"], sub="crash-tester")

    def stored():
        items, _ = api.list_all()
        return [it for it in items if it["legal_name"] == name]

    items = wait_until(stored, 5, message="the committed resource")
    assert len(items) == 1
    sp_id = items[0]["id"]
    entries = audit_for(api, sp_id, 1, timeout=8)
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry["action"] == "create"
    assert entry["actor"] == "crash-tester"
    assert entry["entity_version"] == 1
    assert entry["request_id"] == rid
    assert entry["before"] is None and entry["after"]["id"] == sp_id

    # the restarted server works normally and the entry is not duplicated
    created = api.create_sp(sp_body(legal_name=unique_name()))
    audit_for(api, created["id"], 1)
    time.sleep(1.0)
    items, _ = api.list_all("/v1/audit", entity_id=sp_id)
    assert len(items) == 1, "the relayed entry was written more than once"


def test_crash_after_commit_of_patch_and_delete_still_audited(make_server):
    """The same for an update and a delete: committed, process gone before the
    relay, entry relayed after the restart; the change itself is kept."""
    srv = make_server()
    api = srv.api(roles=["admin"], sub="crash-tester-2")
    created = api.create_sp(sp_body(legal_name=unique_name("Crash patch")))
    sp_id = created["id"]
    path = f"{SP}/{sp_id}"
    audit_for(api, sp_id, 1)

    steps = [("PATCH", {"notes": "changed just before the crash"}, 1, "update"),
             ("DELETE", None, 2, "delete")]
    for method, body, version, action in steps:
        srv.restart(extra_env={"SUBREG_TEST_FAULT": "exit_after_commit"})
        rid = f"crash-{action}-{uuid.uuid4().hex[:8]}"
        try:
            if method == "PATCH":
                api.patch(path, body, if_match=version, headers={"X-Request-Id": rid}, timeout=10)
            else:
                api.delete(path, if_match=version, headers={"X-Request-Id": rid}, timeout=10)
        except requests.RequestException:
            pass
        assert srv.wait_exit(timeout=20) == 99
        srv.restart(expected_rc=99)  # back to the normal environment
        api = srv.api(roles=["admin"], sub="crash-tester-2")
        entries = audit_for(api, sp_id, version + 1, timeout=8)
        last = entries[-1]
        assert last["action"] == action, entries
        assert last["request_id"] == rid
        assert last["actor"] == "crash-tester-2"
        if action == "update":
            assert api.get_sp(sp_id)["notes"] == body["notes"]
            assert last["after"]["version"] == 2
        else:
            assert_problem(api.get(path), 404, "not-found")
            assert last["after"] is None
    time.sleep(1.0)
    items, _ = api.list_all("/v1/audit", entity_id=sp_id)
    assert [e["action"] for e in items] == ["create", "update", "delete"]
