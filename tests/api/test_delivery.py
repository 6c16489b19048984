"""Webhook delivery (issue 5, "Must show"): events of registry changes and
publications, signed per Standard Webhooks and verified with the official
`standardwebhooks` library (receivers.verify); event-type filters; receiver down
then up; 500, 429 + Retry-After, 410, hanging past the timeout, redirects;
schedule exhausted and redelivery; the delivery log; SSRF at delivery time;
crash safety (exit after commit, SIGKILL mid-delivery and right after the 201);
two instances on one database; metrics.

Test settings (helpers.WEBHOOK_ENV): http and 127.0.0.0/8 allowed, poll 100 ms,
retry schedule "0,1,1,1" (attempt 1 at once, then 1 s, 1 s, 1 s; ±10 % jitter;
four attempts, then "failed"), timeout 2 s, lease 8 s.

Most tests share this module's stack (`hook_server`, conftest.py); each one
subscribes only to the event types it needs, on its own receivers, and the
`subscribe` fixture removes its subscriptions after it. Crash, restart and
two-instance tests take their own stacks.
"""

import datetime as dt
import email.utils
import os
import re
import signal
import time
import uuid
from collections import Counter

import pytest
import requests

from helpers import (
    HOOK_ADMIN,
    HOOKS,
    WEBHOOK_ENV,
    assert_problem,
    assert_status,
    create_hook,
    describe,
    get_hook,
    minimal_body,
    parse_ts,
    sp_body,
    unique_name,
    wait_until,
)
from receivers import Answer, Hang, verifies, verify

DELIVERIES = "/v1/deliveries"
PUBS = "/v1/publications"
LEASE_S = int(WEBHOOK_ENV["SUBREG_WEBHOOK_LEASE_MS"]) / 1000  # 8 s


# ---------------------------------------------------------------------------
# helpers


def deliveries_of(api, hid, **params):
    resp = api.get(f"{HOOKS}/{hid}/deliveries", params=dict(params, limit=200))
    assert_status(resp, 200)
    return resp.json()["items"]


def delivery(api, did):
    resp = api.get(f"{DELIVERIES}/{did}")
    assert_status(resp, 200)
    return resp.json()


def delivery_for(api, hid, event_id, timeout=10):
    """The delivery of event_id to subscription hid, once it exists."""
    def find():
        for d in deliveries_of(api, hid):
            if d["event_id"] == event_id:
                return d
        return None
    return wait_until(find, timeout, interval=0.1, message=f"the delivery of {event_id} to {hid}")


def wait_state(api, did, states, timeout=15, attempts=None):
    states = (states,) if isinstance(states, str) else tuple(states)

    def check():
        d = delivery(api, did)
        if d["state"] in states and (attempts is None or d["attempts"] >= attempts):
            return d
        return None
    return wait_until(check, timeout, interval=0.1,
                      message=f"delivery {did} in {states} (attempts >= {attempts})")


def metrics(srv):
    resp = requests.get(srv.url + "/metrics", timeout=10)
    assert_status(resp, 200)
    out = {}
    for line in resp.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def sigkill(srv):
    """SIGKILL the service by its PID and reap it."""
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(10)
    assert srv.proc.returncode == -signal.SIGKILL


def assert_headers(rec):
    h = rec.headers
    assert h.get("webhook-id"), h
    assert re.fullmatch(r"\d{10}", h.get("webhook-timestamp", "")), h
    assert abs(int(h["webhook-timestamp"]) - rec.at) < 30, "webhook-timestamp is fresh"
    for sig in rec.signatures:
        assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", sig), h
    assert h.get("content-type", "").startswith("application/json"), h
    assert rec.method == "POST", rec.method


# ---------------------------------------------------------------------------
# registry events


def test_registry_events_signed_and_filtered(hook_server, hook_admin, subscribe, receivers):
    everything, created_only, pubs_only = receivers(), receivers(), receivers()
    hook = subscribe(everything, ["subprocessor.*"])
    only_created = subscribe(created_only, ["subprocessor.created"])
    pubs = subscribe(pubs_only, ["publication.*"])

    name = unique_name("Events")
    sp = hook_admin.create_sp(sp_body(legal_name=name))
    sp2 = hook_admin.patch_sp(sp["id"], {"notes": "changed for the webhook"}, sp["version"])
    assert_status(hook_admin.delete(f"/v1/subprocessors/{sp['id']}", if_match=sp2["version"]), 204)

    got = {}
    for type_ in ("subprocessor.created", "subprocessor.updated", "subprocessor.deleted"):
        (rec,) = everything.wait_about(sp["id"], type_)
        assert_headers(rec)
        payload = verify(rec, hook["secret"])   # the official library, not our code
        assert set(payload) == {"type", "timestamp", "data"}, payload
        assert payload["type"] == type_
        parse_ts(payload["timestamp"])
        data = payload["data"]
        assert data["entity_type"] == "subprocessor"
        assert data["id"] == sp["id"]
        assert data["actor"] == HOOK_ADMIN
        got[type_] = (rec, data)
        assert not verifies(rec, only_created["secret"]), "each subscription has its own secret"

    created, updated, deleted = (got[t][1] for t in
                                 ("subprocessor.created", "subprocessor.updated", "subprocessor.deleted"))
    assert created["version"] == 1 and created["object"]["legal_name"] == name
    assert created["object"] == sp
    assert updated["version"] == 2 and updated["object"]["notes"] == "changed for the webhook"
    assert deleted["version"] == 3
    assert deleted["object"]["id"] == sp["id"]  # the state before the delete
    ids = [got[t][0].webhook_id for t in got]
    assert len(set(ids)) == 3, "one webhook-id per event"

    # "subprocessor.created" only gets the creation; "publication.*" gets nothing
    (rec,) = created_only.wait_about(sp["id"], "subprocessor.created")
    assert verify(rec, only_created["secret"])["data"]["id"] == sp["id"]
    assert rec.webhook_id == got["subprocessor.created"][0].webhook_id, \
        "the same event has the same webhook-id at every subscription"
    time.sleep(1.0)
    assert [r.type for r in created_only.snapshot()] == ["subprocessor.created"]
    assert pubs_only.snapshot() == []
    assert deliveries_of(hook_admin, pubs["id"]) == []

    # the delivery log: one delivered delivery per event, webhook-id == event_id
    log = deliveries_of(hook_admin, hook["id"])
    assert sorted(d["event_type"] for d in log) == sorted(got)
    for d in log:
        assert d["state"] == "delivered", d
        assert d["webhook_id"] == hook["id"]
        assert d["attempts"] == 1
        assert d["event_id"] == got[d["event_type"]][0].webhook_id
    # filters
    upd = deliveries_of(hook_admin, hook["id"], event_type="subprocessor.updated")
    assert [d["event_type"] for d in upd] == ["subprocessor.updated"]
    assert len(deliveries_of(hook_admin, hook["id"], status="delivered")) == 3
    assert deliveries_of(hook_admin, hook["id"], status="failed") == []
    assert deliveries_of(hook_admin, hook["id"], status="pending") == []
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert deliveries_of(hook_admin, hook["id"], since=future) == []
    assert len(deliveries_of(hook_admin, hook["id"], since="2020-01-01T00:00:00Z")) == 3
    assert_problem(hook_admin.get(f"{HOOKS}/{hook['id']}/deliveries", params={"status": "lost"}),
                   400, "malformed-request")
    assert_problem(hook_admin.get(f"{HOOKS}/{hook['id']}/deliveries", params={"since": "yesterday"}),
                   400, "malformed-request")


# ---------------------------------------------------------------------------
# publications


def test_publication_announced_and_effective(hook_server, hook_admin, subscribe, receivers):
    """publication.announced carries version, effective_at, objection_deadline,
    summary, the changes and links; publication.effective follows when the
    version takes effect. A "publication.*" subscription gets no registry events."""
    rcv, eff_only, registry = receivers(), receivers(), receivers()
    # Whatever is pending becomes a first publication (the module's database is
    # otherwise untouched by publications), so that ours holds just one change.
    body = minimal_body(legal_name=unique_name("Published"), status="active")
    resp = hook_admin.post(PUBS, {"summary": {"de": "Abgleich", "en": "Sync"}, "override_notice": True,
                                  "override_reason": {"de": "Abgleich", "en": "Sync"}})
    assert resp.status_code in (201, 409), describe(resp)

    hook = subscribe(rcv, ["publication.*"])
    effective_hook = subscribe(eff_only, ["publication.effective"])
    reg = subscribe(registry, ["subprocessor.*"])
    added = hook_admin.create_sp(body)
    registry.wait_about(added["id"], "subprocessor.created")

    summary = {"de": "Neuer Unterauftragsverarbeiter", "en": "New subprocessor"}
    effective_at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    resp = hook_admin.post(PUBS, {"summary": summary, "effective_at": effective_at,
                              "override_notice": True,
                              "override_reason": {"de": "Test", "en": "Test"}})
    assert_status(resp, 201)
    pub = resp.json()
    number = pub["number"]

    def about_pub(type_):
        return lambda r: r.type == type_ and r.event["data"].get("version") == number

    (ann,) = rcv.wait_for(about_pub("publication.announced"), timeout=10)
    assert_headers(ann)
    payload = verify(ann, hook["secret"])
    data = payload["data"]
    assert data["version"] == number
    assert data["effective_at"] == pub["effective_at"] == effective_at
    assert data["objection_deadline"] == pub["objection_deadline"]
    parse_ts(data["objection_deadline"])
    assert data["summary"] == summary
    assert data["changes"] == pub["diff"]
    assert [a["id"] for a in data["changes"]["added"]] == [added["id"]]
    assert data["changes"]["removed"] == [] and data["changes"]["changed"] == []
    links = data["links"]
    assert links["json"].endswith("/public/v1/subprocessors")
    assert links["csv"].endswith("/public/v1/subprocessors?format=csv")
    assert links["html"].endswith("/subprocessors")
    assert links["version"].endswith(f"/public/v1/subprocessors/versions/{number}")
    assert ann.at < parse_ts(effective_at).timestamp(), "announced before it takes effect"

    (eff,) = rcv.wait_for(about_pub("publication.effective"), timeout=15)
    payload = verify(eff, hook["secret"])
    assert payload["data"]["version"] == number
    assert payload["data"]["effective_at"] == effective_at
    assert eff.at >= parse_ts(effective_at).timestamp() - 1.0, "effective not before its time"
    assert eff.webhook_id != ann.webhook_id

    # the "publication.effective" subscription gets only that one
    (only,) = eff_only.wait_for(about_pub("publication.effective"), timeout=5)
    assert verify(only, effective_hook["secret"])["type"] == "publication.effective"
    time.sleep(0.5)
    assert {r.type for r in eff_only.snapshot()} == {"publication.effective"}
    # filters hold both ways: no registry events for "publication.*", no
    # publication events for "subprocessor.*"
    assert not [r for r in rcv.snapshot() if not r.type.startswith("publication.")]
    assert not [r for r in registry.snapshot() if r.type.startswith("publication.")]


def test_publication_replacing_an_announcement(hook_server, hook_admin, subscribe, receivers):
    """publication.announced for a version that replaces an announced one names
    it (replaces), the version its changes are against (changes_against, so the
    changes hold both additions), and its shortened notice with the reason."""
    rcv = receivers()
    hook = subscribe(rcv, ["publication.announced"])
    assert_status(hook_admin.post("/v1/customers", {"name": unique_name("Kunde"), "notice_days": 30,
                                                    "objection_days": 14}), 201)
    reason = {"de": "Dringender Wechsel", "en": "Urgent change"}
    # whatever is pending takes effect now, so that a version is in effect
    resp = hook_admin.post(PUBS, {"summary": {"de": "Abgleich", "en": "Sync"}, "override_notice": True,
                                  "override_reason": reason})
    assert resp.status_code in (201, 409), describe(resp)

    def publish_one(name, days):
        sp = hook_admin.create_sp(minimal_body(legal_name=unique_name(name), status="active"))
        when = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        resp = hook_admin.post(PUBS, {"summary": {"de": name, "en": name}, "effective_at": when,
                                      "override_notice": True, "override_reason": reason})
        assert_status(resp, 201)
        return sp, resp.json()

    first_sp, announced = publish_one("Angekündigt", 1)
    second_sp, replacing = publish_one("Ersetzend", 2)
    assert replacing["replaces"] == announced["number"]
    (ann,) = rcv.wait_for(lambda r: r.type == "publication.announced"
                          and r.event["data"].get("version") == replacing["number"], timeout=10)
    data = verify(ann, hook["secret"])["data"]
    assert data["replaces"] == announced["number"]
    assert data["changes_against"] == replacing["diff_against"] == announced["diff_against"]
    assert {a["id"] for a in data["changes"]["added"]} >= {first_sp["id"], second_sp["id"]}
    assert data["override_notice"] is True and data["override_reason"] == reason
    # the replaced one's own announcement said nothing of replacing
    (first,) = rcv.wait_for(lambda r: r.type == "publication.announced"
                            and r.event["data"].get("version") == announced["number"], timeout=10)
    assert "replaces" not in verify(first, hook["secret"])["data"]


# ---------------------------------------------------------------------------
# receiver outages and answers


def test_receiver_down_then_up(hook_server, hook_admin, subscribe, receivers):
    """Events created while the receiver's port is closed arrive once it opens
    again (the retry schedule), each once, with the failed attempts logged."""
    rcv = receivers()
    hook = subscribe(rcv, ["subprocessor.*"])
    rcv.stop()
    sps = [hook_admin.create_sp(minimal_body(legal_name=unique_name("Outage"))) for _ in range(3)]
    creates = {}
    for sp in sps:
        items, _ = hook_admin.list_all("/v1/audit", entity_id=sp["id"])
        creates[sp["id"]] = items[0]["id"]  # the event id is the audit record's id
    # wait until every delivery has failed twice (attempts 1 and 2), then open
    for sp in sps:
        d = delivery_for(hook_admin, hook["id"], creates[sp["id"]])
        wait_state(hook_admin, d["id"], "pending", timeout=5, attempts=2)
    rcv.start()
    for sp in sps:
        (rec,) = rcv.wait_about(sp["id"], "subprocessor.created", timeout=10)
        assert verify(rec, hook["secret"])["data"]["id"] == sp["id"]
        assert rec.webhook_id == creates[sp["id"]]
        d = delivery_for(hook_admin, hook["id"], rec.webhook_id)
        d = wait_state(hook_admin, d["id"], "delivered", timeout=5)
        assert d["attempts"] >= 3, d
        log = d["attempt_log"]
        assert [a["n"] for a in log] == list(range(1, d["attempts"] + 1))
        for a in log[:-1]:   # refused connections: an error, no status code
            assert not a.get("status_code"), a
            assert isinstance(a.get("error"), str) and a["error"], a
            assert isinstance(a.get("latency_ms"), (int, float))
            assert a.get("instance")
        assert log[-1]["status_code"] == 200 and not log[-1].get("error")
        assert d["next_attempt_at"] is None
    time.sleep(1.0)
    counts = Counter(r.webhook_id for r in rcv.snapshot())
    assert all(c == 1 for c in counts.values()), counts


def test_500_then_200_is_delivered_on_the_second_attempt(hook_server, hook_admin, subscribe, receivers):
    rcv = receivers([Answer(500, body=b"internal trouble"), 200])
    hook = subscribe(rcv, ["subprocessor.*"])
    sp = hook_admin.create_sp(minimal_body(legal_name=unique_name("Five hundred")))
    first, second = rcv.wait_about(sp["id"], "subprocessor.created", count=2)
    assert first.webhook_id == second.webhook_id, "webhook-id is stable across retries"
    assert verifies(first, hook["secret"]) and verifies(second, hook["secret"])
    assert first.body == second.body
    gap = second.mono - first.mono
    assert 0.85 <= gap < 2.5, f"schedule says 1 s (±10 %) before attempt 2, got {gap:.2f}s"

    d = delivery_for(hook_admin, hook["id"], first.webhook_id)
    d = wait_state(hook_admin, d["id"], "delivered")
    assert d["attempts"] == 2
    a1, a2 = d["attempt_log"]
    assert (a1["n"], a1["status_code"]) == (1, 500)
    assert a1["response_excerpt"].startswith("internal trouble")
    assert (a2["n"], a2["status_code"]) == (2, 200)
    parse_ts(d["delivered_at"])
    # what was sent is kept: on the delivery, or once per event under /v1/events
    if "payload" in d:
        assert d["payload"] == first.body.decode()
    else:
        ev = hook_admin.get(f"/v1/events/{d['event_id']}")
        assert_status(ev, 200)
        assert ev.json()["payload"] == first.body.decode()


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_retry_after_is_honoured(hook_server, hook_admin, subscribe, receivers, form):
    """The schedule says 1 s before attempt 2; Retry-After asks for more and is
    honoured as a minimum."""
    def late():
        if form == "seconds":
            value = "3"
        else:  # an HTTP date 4 s ahead: at least 3 s after rounding to seconds
            value = email.utils.formatdate(time.time() + 4, usegmt=True)
        return Answer(429, {"Retry-After": value}, b"slow down")

    rcv = receivers([late, 200])
    hook = subscribe(rcv, ["subprocessor.*"])
    sp = hook_admin.create_sp(minimal_body(legal_name=unique_name("Too many")))
    first, second = rcv.wait_about(sp["id"], "subprocessor.created", count=2, timeout=15)
    gap = second.mono - first.mono
    assert gap >= 2.6, f"Retry-After (3 s, -10 % jitter at most) not honoured: {gap:.2f}s"
    assert gap < 6.0, gap
    d = wait_state(hook_admin, delivery_for(hook_admin, hook["id"], first.webhook_id)["id"], "delivered")
    a1, a2 = d["attempt_log"]
    assert a1["status_code"] == 429 and a2["status_code"] == 200
    # the log's times (whole seconds) show the wait as well
    assert (parse_ts(a2["at"]) - parse_ts(a1["at"])).total_seconds() >= 2


def test_410_disables_the_subscription(hook_server, hook_admin, subscribe, receivers):
    gone_rcv, watcher, bystander = receivers([Answer(410, body=b"gone")]), receivers(), receivers()
    gone = subscribe(gone_rcv, ["subprocessor.*"])
    watch = subscribe(watcher, ["webhook.disabled"])
    other = subscribe(bystander, ["subprocessor.*"])

    sp = hook_admin.create_sp(minimal_body(legal_name=unique_name("Gone")))
    (rec,) = gone_rcv.wait_about(sp["id"], "subprocessor.created")

    # disabled at once, with the reason, by the delivery worker (audited)
    def disabled():
        h = get_hook(hook_admin, gone["id"])
        return h if h["enabled"] is False else None
    h = wait_until(disabled, 5, interval=0.1, message="the subscription to be disabled")
    assert "410" in h.get("disabled_reason", ""), h
    # /v1/audit lists committed records; the commit follows the apply by a moment
    def disabling_records():
        entries, _ = hook_admin.list_all("/v1/audit", entity_id=gone["id"])
        off = [e for e in entries if e["action"] == "update" and e["after"].get("enabled") is False]
        return (entries, off) if off else None
    entries, off = wait_until(disabling_records, 5, interval=0.1, message="the disabling audited")
    assert len(off) == 1, entries
    assert off[0]["actor"] == "subreg-delivery"
    assert off[0]["before"]["enabled"] is True
    assert "410" in off[0]["after"]["disabled_reason"]

    # the delivery is not retried: failed after one attempt
    d = wait_state(hook_admin, delivery_for(hook_admin, gone["id"], rec.webhook_id)["id"], "failed")
    assert d["attempts"] == 1 and d["attempt_log"][0]["status_code"] == 410

    # the other subscriptions hear about it ("webhook.disabled")
    (note,) = watcher.wait_type("webhook.disabled", timeout=10)
    payload = verify(note, watch["secret"])
    assert payload["data"]["webhook_id"] == gone["id"]
    assert payload["data"]["url"] == gone_rcv.url
    assert "410" in payload["data"]["reason"]
    parse_ts(payload["timestamp"])

    # nothing more reaches the disabled subscription; others still get events
    sp2 = hook_admin.create_sp(minimal_body(legal_name=unique_name("After gone")))
    bystander.wait_about(sp2["id"], "subprocessor.created")
    time.sleep(1.0)
    assert len(gone_rcv.snapshot()) == 1, [(r.type, r.webhook_id) for r in gone_rcv.snapshot()]
    assert [d["event_id"] for d in deliveries_of(hook_admin, gone["id"])] == [rec.webhook_id]
    assert watcher.of_type("webhook.disabled") == [note], "one event, not repeated"
    assert not bystander.of_type("webhook.disabled")  # it subscribed to subprocessor.* only

    # enabling it again clears the reason
    h = get_hook(hook_admin, gone["id"])
    resp = hook_admin.patch(f"{HOOKS}/{gone['id']}", {"enabled": True}, if_match=h["version"])
    assert_status(resp, 200)
    assert resp.json()["enabled"] is True
    assert "disabled_reason" not in resp.json()
    assert "failing_since" not in resp.json()


def test_failing_too_long_disables_the_subscription(make_server, receivers):
    """SUBREG_WEBHOOK_DISABLE_AFTER_S (5 days by default; 1 s here): a
    subscription failing for longer is disabled, audited and announced."""
    failing, watcher = receivers([500]), receivers()
    srv = make_server(extra_env=dict(WEBHOOK_ENV, SUBREG_WEBHOOK_DISABLE_AFTER_S="1"))
    api = srv.api(roles=["admin"], sub="health")
    bad = create_hook(api, failing, ["subprocessor.*"])
    watch = create_hook(api, watcher, ["webhook.disabled"])
    sp = api.create_sp(minimal_body(legal_name=unique_name("Failing")))
    (note,) = watcher.wait_type("webhook.disabled", timeout=15)
    payload = verify(note, watch["secret"])
    assert payload["data"]["webhook_id"] == bad["id"]
    assert "failing since" in payload["data"]["reason"], payload
    h = get_hook(api, bad["id"])
    assert h["enabled"] is False and h["disabled_reason"] == payload["data"]["reason"], h
    parse_ts(h["failing_since"])
    entries, _ = api.list_all("/v1/audit", entity_id=bad["id"])
    off = [e for e in entries if e["after"] and e["after"].get("enabled") is False]
    assert len(off) == 1 and off[0]["actor"] == "subreg-delivery", entries
    # 2 or 3 attempts were made (failing > 1 s), then the rest was given up
    n = len(failing.about(sp["id"]))
    assert 2 <= n <= 3, n
    d = delivery_for(api, bad["id"], failing.about(sp["id"])[0].webhook_id)
    d = wait_state(api, d["id"], ("cancelled", "failed"), timeout=5)
    time.sleep(1.5)
    assert len(failing.about(sp["id"])) == n, "nothing is sent after the subscription is disabled"


def test_hang_past_the_timeout_is_retried(hook_server, hook_admin, subscribe, receivers):
    rcv = receivers([Hang(4.0, then=200), 200])
    hook = subscribe(rcv, ["subprocessor.*"])
    sp = hook_admin.create_sp(minimal_body(legal_name=unique_name("Hang")))
    first, second = rcv.wait_about(sp["id"], "subprocessor.created", count=2, timeout=15)
    assert first.webhook_id == second.webhook_id
    assert second.mono - first.mono >= 2.0 * 0.95, "the first attempt waited for the timeout"
    d = wait_state(hook_admin, delivery_for(hook_admin, hook["id"], first.webhook_id)["id"], "delivered")
    a1, a2 = d["attempt_log"][:2]
    assert not a1.get("status_code"), a1
    assert "time" in a1["error"].lower(), a1   # curl: "Operation timed out after 2000 ms ..."
    assert 1800 <= a1["latency_ms"] < 3500, a1
    assert a2["status_code"] == 200
    assert d["attempts"] == 2


def test_bad_receivers_hold_up_no_one_else(make_server, receivers):
    """Issue 17 #1: one hanging, one slow (5 s) and one 503 receiver next to ten
    healthy ones. Six changes 2 s apart: every healthy receiver gets each event
    within its normal latency (before, every event waited for the hanging
    attempt's timeout); the hanging one never has more than its lane's attempts
    in flight; the slow one gets every event, in order."""
    env = dict(WEBHOOK_ENV, SUBREG_WEBHOOK_TIMEOUT_MS="8000", SUBREG_WEBHOOK_LEASE_MS="14000",
               SUBREG_WEBHOOK_ENDPOINT_CONCURRENCY="2", SUBREG_WEBHOOK_RETRY_SCHEDULE="0,60")
    srv = make_server(extra_env=env)
    api = srv.api(roles=["admin"], sub="isolation")
    hanging, slow, failing = receivers([Hang(30.0)]), receivers([Hang(5.0)]), receivers([503])
    healthy = [receivers() for _ in range(10)]
    for rcv in [hanging, slow, failing] + healthy:
        create_hook(api, rcv, ["subprocessor.created"])
    tag = uuid.uuid4().hex[:8]
    written = []  # (subprocessor id, monotonic time of the 201)
    for i in range(6):
        sp = api.create_sp(minimal_body(legal_name=f"Isolation {tag} {i} GmbH"))
        written.append((sp["id"], time.monotonic()))
        time.sleep(2.0)
    latencies = []
    for rcv in healthy + [failing]:
        for sp_id, at in written:
            rec = rcv.wait_about(sp_id, "subprocessor.created", timeout=10)[0]
            latencies.append(rec.mono - at)
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(f"healthy and failing receivers: {len(latencies)} first attempts, "
          f"median {latencies[len(latencies) // 2] * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms")
    assert latencies[-1] < 1.5, f"a healthy receiver waited {latencies[-1]:.1f} s for an event"
    # The hanging receiver: at most two attempts in flight (8 s each).
    arrivals = sorted(r.mono for r in hanging.of_type("subprocessor.created"))
    assert arrivals, "the hanging receiver got no attempt"
    assert sum(1 for a in arrivals if a < arrivals[0] + 7.0) <= 2, [round(a - arrivals[0], 1) for a in arrivals]
    # The slow receiver: every event, first attempts in the order of the changes.
    firsts = []
    for sp_id, _ in written:
        firsts.append(slow.wait_about(sp_id, "subprocessor.created", timeout=40)[0].mono)
    assert firsts == sorted(firsts), "the slow receiver got its events out of order"


def test_many_events_another_instance_holds_do_not_hold_up_new_ones(make_server, receivers):
    """Issue 17 #3: 250 queued events whose fan-out another (live) instance
    holds sit in front of the queue. A new change is still fanned out at once:
    the queue is read in pages past what is busy, however much that is."""
    import pymongo

    srv = make_server(extra_env=WEBHOOK_ENV)
    api = srv.api(roles=["admin"], sub="leftovers")
    rcv = receivers()
    create_hook(api, rcv, ["subprocessor.created"])
    first = api.create_sp(minimal_body(legal_name=unique_name("Before leftovers")))
    rcv.wait_about(first["id"], "subprocessor.created")
    db = pymongo.MongoClient(srv.db.uri)["subreg_test"]
    template = db.audit.find_one({"entity_id": first["id"]})
    event = wait_until(lambda: db.events.find_one({"_id": template["_id"], "_fanout": "done"}), 10,
                       message="the first event's fan-out done")
    now_ms = int(time.time() * 1000)
    audits, events, queue = [], [], []
    for i in range(250):
        # ids sort before any later change's (time first), after the template's
        qid = template["_id"][:13] + f"{i:03d}" + uuid.uuid4().hex[:13].upper()
        fake_sp = f"sp_leftover{i:03d}"
        audits.append(dict(template, _id=qid, entity_id=fake_sp,
                           after=dict(template["after"], id=fake_sp)))
        events.append(dict(event, _id=qid, _fanout="running", _fanout_ms=now_ms + 3_600_000, _fanout_gen=0))
        queue.append({"_id": qid, "queued_ms": now_ms})
    db.audit.insert_many(audits)
    db.events.insert_many(events)
    db.event_queue.insert_many(queue)
    start = time.monotonic()
    sp = api.create_sp(minimal_body(legal_name=unique_name("Behind leftovers")))
    rcv.wait_about(sp["id"], "subprocessor.created", timeout=10)
    waited = time.monotonic() - start
    print(f"new event behind 250 busy ones delivered after {waited * 1000:.0f} ms")
    assert waited < 5.0, waited
    assert not rcv.matching(lambda r: b"sp_leftover" in r.body), "another instance's fan-out was taken over"
    wait_until(lambda: db.event_queue.count_documents({}) == 250, 10,
               message="the new event leaves the queue, the busy ones stay for their owner")


def test_redirect_is_not_followed(hook_server, hook_admin, subscribe, receivers):
    elsewhere = receivers()
    rcv = receivers([Answer(302, {"Location": elsewhere.url}), 200])
    hook = subscribe(rcv, ["subprocessor.*"])
    sp = hook_admin.create_sp(minimal_body(legal_name=unique_name("Redirect")))
    first, second = rcv.wait_about(sp["id"], "subprocessor.created", count=2)
    d = wait_state(hook_admin, delivery_for(hook_admin, hook["id"], first.webhook_id)["id"], "delivered")
    assert [a["status_code"] for a in d["attempt_log"]] == [302, 200]
    assert elsewhere.snapshot() == [], "a redirect must not be followed"


def test_schedule_exhausted_then_redeliver(hook_server, hook_admin, subscribe, receivers):
    rcv = receivers([503])
    hook = subscribe(rcv, ["subprocessor.*"])
    sp = hook_admin.create_sp(minimal_body(legal_name=unique_name("Exhausted")))
    recs = rcv.wait_about(sp["id"], "subprocessor.created", count=4, timeout=15)
    did = delivery_for(hook_admin, hook["id"], recs[0].webhook_id)["id"]
    d = wait_state(hook_admin, did, "failed", timeout=10)
    assert d["attempts"] == 4, d
    assert [a["n"] for a in d["attempt_log"]] == [1, 2, 3, 4]
    assert all(a["status_code"] == 503 for a in d["attempt_log"])
    assert d["next_attempt_at"] is None
    assert did in [x["id"] for x in deliveries_of(hook_admin, hook["id"], status="failed")]
    time.sleep(1.5)
    assert len(rcv.about(sp["id"])) == 4, "no fifth attempt after the schedule"
    h = get_hook(hook_admin, hook["id"])
    assert h["enabled"] is True and h.get("failing_since"), h

    # redeliver: 202, back on the schedule, delivered on the next attempt
    rcv.set_script([200])
    resp = hook_admin.post(f"{DELIVERIES}/{did}/redeliver")
    assert_status(resp, 202)
    assert resp.json()["id"] == did
    d = wait_state(hook_admin, did, "delivered", timeout=10)
    assert d["attempts"] == 5
    assert d["attempt_log"][-1]["status_code"] == 200
    recs = rcv.about(sp["id"])
    assert len(recs) == 5 and len({r.webhook_id for r in recs}) == 1
    assert verifies(recs[-1], hook["secret"])
    # the subscription is healthy again
    assert "failing_since" not in wait_until(
        lambda: (lambda h: h if "failing_since" not in h else None)(get_hook(hook_admin, hook["id"])),
        5, message="failing_since to be cleared")

    # a redelivery of a delivered delivery sends it once more (at-least-once)
    assert_status(hook_admin.post(f"{DELIVERIES}/{did}/redeliver"), 202)
    wait_state(hook_admin, did, "delivered", timeout=10, attempts=6)
    assert len(rcv.about(sp["id"])) == 6
    assert_problem(hook_admin.post(f"{DELIVERIES}/no-such-delivery/redeliver"), 404, "not-found")


def test_metrics_move(hook_server, hook_admin, subscribe, receivers):
    before = metrics(hook_server)
    for name in ("subreg_webhook_events_queued", "subreg_webhook_deliveries_pending",
                 "subreg_webhook_attempts_total",
                 "subreg_webhook_delivered_total", "subreg_webhook_failed_attempts_total",
                 "subreg_webhook_retried_total", "subreg_webhook_failed_total",
                 "subreg_webhook_latency_seconds_count", "subreg_webhook_latency_seconds_sum",
                 'subreg_webhook_latency_seconds_bucket{le="+Inf"}'):
        assert name in before, f"{name} missing from /metrics"
    # the dead receiver asks for 2 s between attempts: its delivery stays
    # pending for several seconds (the gauge is refreshed every 20 rounds)
    flaky, dead = receivers([500, 200]), receivers([Answer(503, {"Retry-After": "2"})])
    h1 = subscribe(flaky, ["subprocessor.*"])
    h2 = subscribe(dead, ["subprocessor.*"])
    sp = hook_admin.create_sp(minimal_body(legal_name=unique_name("Metrics")))
    rec = flaky.wait_about(sp["id"], "subprocessor.created", count=2)[0]
    # while the dead receiver's delivery waits for its retries, it is pending
    wait_until(lambda: metrics(hook_server)["subreg_webhook_deliveries_pending"] >= 1, 5, interval=0.1,
               message="subreg_webhook_deliveries_pending >= 1")
    wait_state(hook_admin, delivery_for(hook_admin, h2["id"], rec.webhook_id)["id"], "failed", timeout=15)
    wait_state(hook_admin, delivery_for(hook_admin, h1["id"], rec.webhook_id)["id"], "delivered")
    after = metrics(hook_server)

    def delta(name):
        return after[name] - before[name]
    assert delta("subreg_webhook_attempts_total") >= 6          # 2 + 4
    assert delta("subreg_webhook_delivered_total") >= 1
    assert delta("subreg_webhook_failed_attempts_total") >= 5   # 1 + 4
    assert delta("subreg_webhook_retried_total") >= 4           # 1 + 3
    assert delta("subreg_webhook_failed_total") >= 1
    assert delta("subreg_webhook_latency_seconds_count") >= 6
    assert delta("subreg_webhook_latency_seconds_sum") > 0
    buckets = sorted((float(k.split('"')[1]), v) for k, v in after.items()
                     if k.startswith("subreg_webhook_latency_seconds_bucket") and "+Inf" not in k)
    assert [v for _, v in buckets] == sorted(v for _, v in buckets), "cumulative buckets"
    assert after['subreg_webhook_latency_seconds_bucket{le="+Inf"}'] == \
        after["subreg_webhook_latency_seconds_count"]
    wait_until(lambda: metrics(hook_server)["subreg_webhook_deliveries_pending"] == 0, 6, interval=0.2,
               message="subreg_webhook_deliveries_pending back to 0")


# ---------------------------------------------------------------------------
# SSRF at delivery time


def test_address_is_checked_again_at_delivery(make_server, receivers):
    """The policy is applied to the address actually connected to, not only at
    creation. A DNS-rebinding hostname cannot be set up here without touching
    the system resolver (localhost resolves to 127.0.0.1 only, and a name must
    resolve to allowed addresses only to be accepted at creation), so the
    subscription is created while 127.0.0.0/8 is allowed and the service is
    restarted without the allow-list: the stored URL now points at a forbidden
    address, and the open-socket check must refuse the connection.
    (The creation-time check of every class, including a hostname resolving to
    loopback, is in test_webhooks.py.)"""
    rcv = receivers()
    srv = make_server(extra_env=WEBHOOK_ENV)
    api = srv.api(roles=["admin"], sub="ssrf")
    hook = create_hook(api, rcv, ["subprocessor.*"])
    by_name = create_hook(api, f"http://localhost:{rcv.port}/hook", ["subprocessor.*"])
    assert api.post(f"{HOOKS}/{hook['id']}/ping").json()["success"] is True
    assert len(rcv.snapshot()) == 1

    srv.restart(extra_env={"SUBREG_WEBHOOK_ALLOW_NETS": ""})
    api = srv.api(roles=["admin"], sub="ssrf")

    ping = api.post(f"{HOOKS}/{hook['id']}/ping")
    assert_status(ping, 200)
    result = ping.json()
    assert result["success"] is False, result
    assert result.get("error", "").startswith("refused address"), result
    assert "loopback" in result["error"]

    sp = api.create_sp(minimal_body(legal_name=unique_name("Rebinding")))
    items, _ = api.list_all("/v1/audit", entity_id=sp["id"])
    event_id = items[0]["id"]
    for h in (hook, by_name):
        # (the stopped instance's shard leases run out first)
        d = delivery_for(api, h["id"], event_id, timeout=4 * LEASE_S)
        d = wait_state(api, d["id"], "failed", timeout=4 * LEASE_S + 5)
        assert d["attempts"] == 4
        for a in d["attempt_log"]:
            assert a["error"] == "refused address (loopback)", a
            assert not a.get("status_code")
    assert len(rcv.snapshot()) == 1, "nothing may reach the forbidden address"

    # every write re-checks the URL: even a PATCH of the description is refused
    cur = api.get(f"{HOOKS}/{hook['id']}").json()
    resp = api.patch(f"{HOOKS}/{hook['id']}", {"description": "x"}, if_match=cur["version"])
    body = assert_problem(resp, 422, "unprocessable-entity")
    assert body["errors"][0]["pointer"] == "/url"


# ---------------------------------------------------------------------------
# crash safety


def event_id_of(api, entity_id, action="create", timeout=10):
    def find():
        items, _ = api.list_all("/v1/audit", entity_id=entity_id)
        hit = [e for e in items if e["action"] == action]
        return hit[0]["id"] if hit else None
    return wait_until(find, timeout, message=f"the {action} audit record of {entity_id}")


def test_crash_after_commit_still_delivers(make_server, receivers):
    """SUBREG_TEST_FAULT=exit_after_commit: the process exits right after the
    change is applied, before its audit record (the event) is committed. After a
    restart the claim sweep commits it and the event is delivered."""
    rcv = receivers()
    srv = make_server(extra_env=WEBHOOK_ENV)
    api = srv.api(roles=["admin"], sub="crash-a")
    hook = create_hook(api, rcv, ["subprocessor.*"])

    srv.restart(extra_env={"SUBREG_TEST_FAULT": "exit_after_commit"})
    name = unique_name("Exit after commit")
    try:
        api.post("/v1/subprocessors", sp_body(legal_name=name), timeout=10)
    except requests.RequestException:
        pass
    assert srv.wait_exit(timeout=20) == 99
    assert rcv.snapshot() == []

    srv.restart(expected_rc=99)  # the normal environment again
    api = srv.api(roles=["admin"], sub="crash-a")
    (rec,) = rcv.wait_for(lambda r: r.type == "subprocessor.created"
                          and r.event["data"]["object"]["legal_name"] == name,
                          timeout=4 * LEASE_S)  # the previous instance's leases run out first
    payload = verify(rec, hook["secret"])
    items, _ = api.list_all()
    (sp,) = [it for it in items if it["legal_name"] == name]
    assert payload["data"]["id"] == sp["id"]
    assert rec.webhook_id == event_id_of(api, sp["id"])
    time.sleep(1.0)
    assert len(rcv.snapshot()) == 1


def test_sigkill_during_a_delivery(make_server, receivers):
    """SIGKILL while the receiver holds the first attempt open: after the restart
    the event is delivered again (a duplicate is allowed, with the same webhook-id)."""
    rcv = receivers([Hang(1.5, then=200), 200])
    srv = make_server(extra_env=WEBHOOK_ENV)
    api = srv.api(roles=["admin"], sub="crash-b")
    hook = create_hook(api, rcv, ["subprocessor.*"])

    sp = api.create_sp(minimal_body(legal_name=unique_name("Killed mid-flight")))
    (first,) = rcv.wait_about(sp["id"], "subprocessor.created", timeout=10)
    sigkill(srv)                          # the receiver is still holding attempt 1
    assert time.monotonic() - first.mono < 1.5, "killed after the answer: too slow"

    srv.restart(expected_rc=-signal.SIGKILL)
    api = srv.api(roles=["admin"], sub="crash-b")
    # the dead instance's shard lease runs out first (at most two lease periods)
    recs = rcv.wait_about(sp["id"], "subprocessor.created", count=2, timeout=4 * LEASE_S)
    assert {r.webhook_id for r in recs} == {event_id_of(api, sp["id"])}
    for r in recs:
        assert verify(r, hook["secret"])["data"]["id"] == sp["id"]
    d = wait_state(api, delivery_for(api, hook["id"], recs[0].webhook_id)["id"], "delivered")
    assert d["attempt_log"][-1]["status_code"] == 200


def test_sigkill_right_after_the_201(make_server, receivers):
    """SIGKILL right after a change is acknowledged, before its event can have
    been delivered (the receiver is down then): after the restart it arrives."""
    rcv = receivers()
    srv = make_server(extra_env=WEBHOOK_ENV)
    api = srv.api(roles=["admin"], sub="crash-c")
    hook = create_hook(api, rcv, ["subprocessor.*"])
    # a slow delivery loop while the change is made, and nobody listening
    srv.restart(extra_env={"SUBREG_WEBHOOK_POLL_MS": "3000"})
    rcv.stop()
    api = srv.api(roles=["admin"], sub="crash-c")
    sp = api.create_sp(minimal_body(legal_name=unique_name("Killed after 201")))
    sigkill(srv)
    assert rcv.snapshot() == []

    rcv.start()
    srv.restart(expected_rc=-signal.SIGKILL)
    api = srv.api(roles=["admin"], sub="crash-c")
    recs = rcv.wait_about(sp["id"], "subprocessor.created", timeout=4 * LEASE_S)
    assert verify(recs[0], hook["secret"])["data"]["id"] == sp["id"]
    assert recs[0].webhook_id == event_id_of(api, sp["id"])
    time.sleep(1.0)
    assert len({r.webhook_id for r in rcv.snapshot()}) == 1


def test_crash_mid_fanout_resends_only_what_was_not_recorded(make_server, receivers):
    """SUBREG_TEST_FAULT=exit_after_fanout_record: the process exits once the
    first results of a fan-out are recorded, the fan-out unfinished. After the
    restart its claim lapses, the new instance takes the fan-out over, and sends
    nothing already recorded: the answered first attempt is not repeated, the
    failed one goes on with its retry (same webhook-id)."""
    ok, failing = receivers(), receivers([500, 200])
    srv = make_server(extra_env=WEBHOOK_ENV)
    api = srv.api(roles=["admin"], sub="crash-d")
    hooks = []
    for rcv in (ok, failing):
        hooks.append(create_hook(api, rcv, ["subprocessor.*"]))

    srv.restart(extra_env={"SUBREG_TEST_FAULT": "exit_after_fanout_record"})
    api = srv.api(roles=["admin"], sub="crash-d")
    sp = api.create_sp(minimal_body(legal_name=unique_name("Exit mid fan-out")))
    assert srv.wait_exit(timeout=20) == 98
    assert len(ok.of_type("subprocessor.created")) == 1
    assert len(failing.of_type("subprocessor.created")) == 1

    srv.restart(expected_rc=98)
    api = srv.api(roles=["admin"], sub="crash-d")
    # until the dead owner's claim lapses, the event waits in the queue
    wait_until(lambda: metrics(srv)["subreg_webhook_events_queued"] == 1, 4, interval=0.1,
               message="subreg_webhook_events_queued == 1")
    wait_until(lambda: any("taken over" in ln for ln in srv.stderr_path.read_text().splitlines()),
               4 * LEASE_S, message="the lapsed fan-out taken over")
    recs = failing.wait_about(sp["id"], "subprocessor.created", count=2, timeout=4 * LEASE_S)
    event_id = event_id_of(api, sp["id"])
    assert {r.webhook_id for r in recs} == {event_id}
    assert verify(recs[-1], hooks[1]["secret"])["data"]["id"] == sp["id"]
    d = wait_state(api, delivery_for(api, hooks[1]["id"], event_id)["id"], "delivered")
    assert [a["status_code"] for a in d["attempt_log"]] == [500, 200]
    time.sleep(1.0)
    assert len(ok.of_type("subprocessor.created")) == 1, "a recorded attempt was sent again"
    assert len(failing.of_type("subprocessor.created")) == 2
    d = delivery_for(api, hooks[0]["id"], event_id)
    assert d["state"] == "delivered" and d["attempts"] == 1
    wait_until(lambda: metrics(srv)["subreg_webhook_events_queued"] == 0, 6, interval=0.2,
               message="the queue empty again")


# ---------------------------------------------------------------------------
# two instances on one database


def test_two_instances_deliver_a_burst_once(make_server, receivers):
    rcv = receivers()
    one = make_server(extra_env=WEBHOOK_ENV)
    two = make_server(extra_env=WEBHOOK_ENV, share_db_with=one)
    a1 = one.api(roles=["admin"], sub="burst")
    a2 = two.api(roles=["admin"], sub="burst")
    hook = create_hook(a1, rcv, ["subprocessor.created"])

    # 30 changes through both instances, spread over more than one lease period
    # (8 s) so that shard ownership can move between the instances mid-burst.
    tag = uuid.uuid4().hex[:8]
    created = []
    start = time.monotonic()
    for i in range(30):
        api = a1 if i % 2 == 0 else a2
        created.append(api.create_sp(minimal_body(legal_name=f"Burst {tag} {i:02d} GmbH"))["id"])
        time.sleep(max(0.0, start + (i + 1) * (1.2 * LEASE_S / 30) - time.monotonic()))

    recs = rcv.wait_for(lambda r: r.type == "subprocessor.created", count=30, timeout=30,
                        message="30 burst events")
    time.sleep(2.0)  # let any duplicate show up
    recs = rcv.of_type("subprocessor.created")
    got = {r.event["data"]["id"] for r in recs}
    assert got == set(created), f"missing: {set(created) - got}"
    counts = Counter(r.webhook_id for r in recs)
    dup = {k: v for k, v in counts.items() if v > 1}
    assert not dup, f"delivered more than once while both instances were healthy: {dup}"
    for r in recs:
        assert verifies(r, hook["secret"])
    log = deliveries_of(a2, hook["id"])
    assert len(log) == 30 and all(d["state"] == "delivered" and d["attempts"] == 1 for d in log), \
        [(d["id"], d["state"], d["attempts"]) for d in log if d["state"] != "delivered" or d["attempts"] != 1]
    senders = Counter(d["attempt_log"][0]["instance"] for d in log)
    print(f"deliveries per instance: {dict(senders)}")
    assert one.proc.poll() is None and two.proc.poll() is None


def test_a_fan_out_longer_than_the_lease_stays_with_its_owner(make_server, receivers):
    """One attempt at a time (concurrency 1) to eight receivers that take 1.2 s
    each: the fan-out outlives its 8 s lease. Its owner renews the claim as it
    goes, so the second instance never takes it over (each receiver gets the
    event once), and results are written as it goes, not only at the end."""
    env = dict(WEBHOOK_ENV, SUBREG_WEBHOOK_CONCURRENCY="1")
    rcvs = [receivers([Hang(1.2, then=200)]) for _ in range(8)]
    one = make_server(extra_env=env)
    two = make_server(extra_env=env, share_db_with=one)
    api = one.api(roles=["admin"], sub="long-fanout")
    hooks = []
    for rcv in rcvs:
        hooks.append(create_hook(api, rcv, ["subprocessor.created"]))
    sp = api.create_sp(minimal_body(legal_name=unique_name("Long fan-out")))
    started = time.monotonic()

    # the third attempt is under way: the first one's result is written already
    arrived = wait_until(lambda: [r for r in rcvs if r.snapshot()], 10, interval=0.05,
                         message="the first attempts")
    wait_until(lambda: sum(1 for r in rcvs if r.snapshot()) >= 3, 10, interval=0.05,
               message="three attempts under way")
    first = next(h for h, r in zip(hooks, rcvs) if r is arrived[0])
    assert deliveries_of(api, first["id"]), "a result waits for the whole fan-out"

    for rcv in rcvs:
        rcv.wait_about(sp["id"], "subprocessor.created", timeout=30)
    assert time.monotonic() - started > LEASE_S, "the fan-out was meant to outlive one lease"
    time.sleep(2.0)  # a takeover would send again now
    ids = set()
    for rcv, hook in zip(rcvs, hooks):
        recs = rcv.of_type("subprocessor.created")
        assert len(recs) == 1, f"{hook['id']} got the event {len(recs)} times"
        assert verifies(recs[0], hook["secret"])
        ids.add(recs[0].webhook_id)
    assert len(ids) == 1
    for hook in hooks:
        (d,) = deliveries_of(api, hook["id"])
        assert d["state"] == "delivered" and d["attempts"] == 1


def test_two_instances_hand_over_when_the_sender_dies(make_server, receivers):
    """The instance holding the shard leases is SIGKILLed in the middle of a
    burst: the other one takes over once the leases run out; nothing is lost,
    and any repeat carries the same webhook-id."""
    rcv = receivers()
    one = make_server(extra_env=WEBHOOK_ENV)
    two = make_server(extra_env=WEBHOOK_ENV, share_db_with=one)
    servers = {"one": one, "two": two}
    api = one.api(roles=["admin"], sub="handover")
    hook = create_hook(api, rcv, ["subprocessor.created"])

    tag = uuid.uuid4().hex[:8]
    created = [api.create_sp(minimal_body(legal_name=f"Handover {tag} {i:02d} GmbH"))["id"]
               for i in range(10)]
    rcv.wait_for(lambda r: r.type == "subprocessor.created", count=10, timeout=20)

    def sent():  # attempts are counted when their answer is in
        counts = {name: metrics(srv)["subreg_webhook_attempts_total"] for name, srv in servers.items()}
        return counts if sum(counts.values()) >= 10 else None
    sending = wait_until(sent, 5, interval=0.1, message="10 attempts in the metrics")
    owner = max(sending, key=sending.get)
    survivor = servers["two" if owner == "one" else "one"]
    sigkill(servers[owner])

    api = survivor.api(roles=["admin"], sub="handover")
    created += [api.create_sp(minimal_body(legal_name=f"Handover {tag} {i:02d} GmbH"))["id"]
                for i in range(10, 20)]
    rcv.wait_for(lambda r: r.type == "subprocessor.created", count=20, timeout=4 * LEASE_S)
    time.sleep(1.0)
    recs = rcv.of_type("subprocessor.created")
    by_entity = {}
    for r in recs:
        assert verifies(r, hook["secret"])
        by_entity.setdefault(r.event["data"]["id"], set()).add(r.webhook_id)
    assert set(by_entity) == set(created)
    assert all(len(ids) == 1 for ids in by_entity.values()), by_entity
    assert metrics(survivor)["subreg_webhook_attempts_total"] >= 10, "the survivor took over"
    servers[owner].restart(expected_rc=-signal.SIGKILL)  # so that teardown sees a clean stop


def test_subscription_changes_on_one_instance_hold_on_the_other(make_server, receivers):
    """Subscriptions changed through one instance take effect at once for events
    fanned out by another: a new subscription gets the events created after its
    201, a disabled one gets none. Instance `api_only` runs its delivery loop
    once at start-up and then sleeps (SUBREG_WEBHOOK_POLL_MS=600000), so every
    fan-out is done by `worker` — deterministically the other instance."""
    warm, new = receivers(), receivers()
    api_only = make_server(extra_env=dict(WEBHOOK_ENV, SUBREG_WEBHOOK_POLL_MS="600000"))
    worker = make_server(extra_env=WEBHOOK_ENV, share_db_with=api_only)
    a_api = api_only.api(roles=["admin"], sub="two-instances")
    a_work = worker.api(roles=["admin"], sub="two-instances")
    create_hook(a_work, warm, ["subprocessor.created"])

    # the worker fans out an event (and so knows the subscriptions as of now)
    sp = a_work.create_sp(minimal_body(legal_name=unique_name("Warm-up")))
    warm.wait_about(sp["id"], "subprocessor.created", timeout=4 * LEASE_S)

    # (a) a subscription created through the other instance ...
    hook = create_hook(a_api, new, ["subprocessor.created"])
    # ... gets an event created after its 201 (fanned out by the worker)
    sp = a_api.create_sp(minimal_body(legal_name=unique_name("After subscribing")))
    warm.wait_about(sp["id"], "subprocessor.created", timeout=4 * LEASE_S)
    try:
        (rec,) = new.wait_about(sp["id"], "subprocessor.created", timeout=5)
    except AssertionError:
        raise AssertionError(
            "an event created after the subscription's 201 never reached it: the "
            "instance that fanned it out did not know the subscription yet (event lost)")
    assert verify(rec, hook["secret"])["data"]["id"] == sp["id"]

    # (b) disabled through the other instance: nothing more is sent to it
    time.sleep(5.5)  # whatever the worker caches now includes the subscription
    sp = a_work.create_sp(minimal_body(legal_name=unique_name("Still enabled")))
    new.wait_about(sp["id"], "subprocessor.created", timeout=4 * LEASE_S)
    cur = a_api.get(f"{HOOKS}/{hook['id']}").json()
    assert_status(a_api.patch(f"{HOOKS}/{hook['id']}", {"enabled": False},
                              if_match=cur["version"]), 200)
    sp = a_api.create_sp(minimal_body(legal_name=unique_name("After disabling")))
    warm.wait_about(sp["id"], "subprocessor.created", timeout=4 * LEASE_S)
    time.sleep(1.0)
    assert not new.about(sp["id"]), \
        "a subscription disabled through one instance still received an event created after the 200"
