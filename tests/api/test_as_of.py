"""?as_of=DATE: findings, the expiry report and a registry document as they were
at the end of a past day (service/api/as_of.c), reconstructed from the audit
trail, evaluated against the reference law in force that day, in the legal
team's time zone (SUBREG_TIMEZONE, default Europe/Berlin).

The service has no test clock, so history is planted: every change is made
through the API (real documents, real audit records), then its audit records
are moved into the past — the same records with another `at`, another `_id`
(whose first digits are the time, as the service's ids) and the documents'
created_at/updated_at to match. The module has its own database: the planted
records are the earliest of its audit trail."""

import datetime as dt
import secrets
from zoneinfo import ZoneInfo

import pymongo
import pytest

from helpers import assert_problem, assert_status, minimal_body, sp_body, unique_name
from stack import own_stack

FINDINGS = "/v1/compliance/findings"
EXPIRING = "/v1/reports/expiring"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def utc(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def audit_id(when):
    """An audit record id as new_id("au_") gives it at `when`: 48 bits of
    milliseconds, 80 random bits, 26 Crockford base32 digits."""
    v = (int(when.timestamp() * 1000) << 80) | secrets.randbits(80)
    return "au_" + "".join(CROCKFORD[(v >> (5 * (25 - i))) & 31] for i in range(26))


def rfc(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def replant(db, collection, entity_id, times):
    """Move the audit records of an entity (versions 1..n) to the given times."""
    recs = sorted(db.audit.find({"entity_id": entity_id}), key=lambda r: r["entity_version"])
    assert len(recs) == len(times), recs
    created = rfc(utc(times[0]))
    prev = None
    for rec, t in zip(recs, times):
        when = utc(t)
        moved = dict(rec, _id=audit_id(when), at=rfc(when))
        for side, stamp in (("before", prev), ("after", rfc(when))):
            if isinstance(moved[side], dict):
                moved[side] = dict(moved[side], created_at=created, updated_at=stamp)
        db.audit.delete_one({"_id": rec["_id"]})  # (entity, version) is unique
        db.audit.insert_one(moved)
        prev = rfc(when)
    db[collection].update_one({"_id": entity_id}, {"$set": {"created_at": created, "updated_at": prev}})


# subprocessor A: proposed, then active (no DPA yet), renamed at 23:30 UTC on
# 28 Feb (1 March in Berlin), renamed again; its DPA signed on 10 March, expiring 20 March
A_TIMES = ["2025-02-10T10:00:00Z", "2025-02-20T09:00:00Z", "2025-02-28T23:30:00Z", "2025-03-05T12:00:00Z"]
DPA_TIMES = ["2025-03-10T08:00:00Z"]
# subprocessor B: created, deleted on 2 March
B_TIMES = ["2025-02-10T11:00:00Z", "2025-03-02T10:00:00Z"]
# subprocessor C with a DPF transfer to the US, a week before the DPF decision (10 July 2023)
C_TIMES = ["2023-07-01T10:00:00Z"]
D_START = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
D_VERSIONS = 1200


@pytest.fixture(scope="module")
def as_of_server(binaries, keys, tokens):
    """The module's own stack. Rebuilding a day reads the audit trail up to it:
    on FerretDB, which sorts the whole range again for every query, setting up and
    reading the planted history of 1,200 versions is slow; a past as_of has 60 s
    beyond the deadline (test_a_past_day_is_not_cut_off_by_the_request_deadline),
    the module's other requests 15 s."""
    with own_stack(binaries, keys, tokens, "as_of-module", {"SUBREG_REQUEST_DEADLINE_MS": "15000"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def history(as_of_server):
    admin = as_of_server.api(roles=["admin"], sub="auditor-setup")
    db = pymongo.MongoClient(as_of_server.db.uri)["subreg_test"]
    h = {"srv": as_of_server, "api": admin}

    a = admin.create_sp(sp_body(legal_name="A1", status="proposed", hq_country="DE",
                                locations=[{"country": "DE", "role": "hosting"}], certifications=[]))
    h["a_states"] = [a,
                     admin.patch_sp(a["id"], {"legal_name": "A2", "status": "active"}, 1),
                     admin.patch_sp(a["id"], {"legal_name": "A3"}, 2),
                     admin.patch_sp(a["id"], {"legal_name": "A4"}, 3)]
    replant(db, "subprocessors", a["id"], A_TIMES)
    resp = admin.post("/v1/agreements", {"subprocessor_id": a["id"], "type": "dpa", "title": "AVV",
                                         "status": "active", "signed_on": "2025-03-10",
                                         "expires_on": "2025-03-20"})
    assert_status(resp, 201)
    h["dpa"] = resp.json()
    replant(db, "agreements", h["dpa"]["id"], DPA_TIMES)

    b = admin.create_sp(sp_body(legal_name=unique_name("B"), hq_country="DE",
                                locations=[{"country": "DE", "role": "hosting"}]))
    assert_status(admin.delete(f"/v1/subprocessors/{b['id']}", if_match=b["version"]), 204)
    replant(db, "subprocessors", b["id"], B_TIMES)

    c = admin.create_sp(sp_body(legal_name=unique_name("C"), status="active", hq_country="US",
                                locations=[{"country": "US", "role": "hosting"}],
                                dpf={"participating": True}))
    replant(db, "subprocessors", c["id"], C_TIMES)
    resp = admin.post("/v1/transfers", {"subprocessor_id": c["id"], "destination_country": "US",
                                        "basis": "dpf"})
    assert_status(resp, 201)
    h["transfer"] = resp.json()
    replant(db, "transfers", h["transfer"]["id"], C_TIMES)

    # subprocessor D: 1,200 versions an hour apart from 1 January 2025 (the trail is
    # read in pages of 1,000)
    d = admin.create_sp(minimal_body(legal_name="D v1", status="active", hq_country="DE",
                                     locations=[{"country": "DE", "role": "hosting"}]))
    replant(db, "subprocessors", d["id"], [rfc(D_START)])
    first = db.audit.find_one({"entity_id": d["id"]})
    prev, records = first["after"], []
    for v in range(2, D_VERSIONS + 1):
        when = D_START + dt.timedelta(hours=v - 1)
        after = dict(prev, version=v, legal_name=f"D v{v}", updated_at=rfc(when))
        records.append(dict(first, _id=audit_id(when), at=rfc(when), action="update", entity_version=v,
                            before=prev, after=after))
        prev = after
    db.audit.insert_many(records)
    db.subprocessors.update_one({"_id": d["id"]}, {"$set": {k: prev[k] for k in ("version", "legal_name",
                                                                                "updated_at")}})
    h.update(a=a, b=b, c=c, d=d)
    return h


def as_of_state(state, created, updated):
    return dict(state, created_at=rfc(utc(created)), updated_at=rfc(utc(updated)))


def get_as_of(api, path, day):
    return api.get(path, params={"as_of": day})


# ---------------------------------------------------------------------------
# a registry document as it was


def test_document_as_it_was_after_each_change(history):
    api, a = history["api"], history["a"]
    path = f"/v1/subprocessors/{a['id']}"
    states = history["a_states"]
    # each day shows the last change recorded by its end (in Berlin)
    for day, k in (("2025-02-10", 0), ("2025-02-19", 0), ("2025-02-20", 1), ("2025-02-28", 1),
                   ("2025-03-01", 2), ("2025-03-04", 2), ("2025-03-05", 3), ("2025-12-31", 3)):
        resp = get_as_of(api, path, day)
        assert_status(resp, 200)
        assert resp.json() == as_of_state(states[k], A_TIMES[0], A_TIMES[k]), (day, resp.json())
        # a past state cannot be written against: no ETag
        assert "ETag" not in resp.headers
    # as_of today is today's document
    today = api.get(FINDINGS, params={"rule": "expiring", "subprocessor_id": "sp_none"}).json()["as_of"]
    resp = get_as_of(api, path, today)
    assert_status(resp, 200)
    assert resp.json()["legal_name"] == "A4" and resp.json() == api.get(path).json()


def test_document_deleted_or_not_yet_created_is_404(history):
    api, b = history["api"], history["b"]
    path = f"/v1/subprocessors/{b['id']}"
    resp = get_as_of(api, path, "2025-03-01")
    assert_status(resp, 200)
    assert resp.json()["legal_name"] == b["legal_name"]
    for day in ("2025-03-02", "2026-01-01"):
        resp = get_as_of(api, path, day)
        assert_problem(resp, 404, "not-found")
        assert f"existed at the end of {day} (Europe/Berlin)" in resp.json()["detail"]
    # the agreement did not exist before it was signed on 10 March
    dpa = f"/v1/agreements/{history['dpa']['id']}"
    assert_problem(get_as_of(api, dpa, "2025-03-09"), 404, "not-found")
    assert_status(get_as_of(api, dpa, "2025-03-10"), 200)
    # never-existing id
    assert_problem(get_as_of(api, "/v1/subprocessors/sp_00000000000000000000000000", "2025-03-10"), 404,
                   "not-found")


def test_time_zone_decides_the_day(history):
    """23:30 UTC on 28 February is 00:30 on 1 March in Berlin: a service whose
    day is UTC's sees the rename on 28 February already."""
    path = f"/v1/subprocessors/{history['a']['id']}"
    assert get_as_of(history["api"], path, "2025-02-28").json()["legal_name"] == "A2"
    assert get_as_of(history["api"], path, "2025-03-01").json()["legal_name"] == "A3"


def test_utc_service_day(history, make_server):
    other = make_server(extra_env={"SUBREG_TIMEZONE": "UTC"}, share_db_with=history["srv"])
    api = other.api(roles=["reader"], sub="utc-reader")
    path = f"/v1/subprocessors/{history['a']['id']}"
    assert get_as_of(api, path, "2025-02-27").json()["legal_name"] == "A2"
    assert get_as_of(api, path, "2025-02-28").json()["legal_name"] == "A3"
    body = api.get(FINDINGS, params={"as_of": "2025-02-28", "rule": "no_active_dpa"}).json()
    assert body["time_zone"] == "UTC" and body["as_of"] == "2025-02-28"


def test_every_registry_resource_takes_as_of(history):
    api = history["api"]
    tr = history["transfer"]
    resp = get_as_of(api, f"/v1/transfers/{tr['id']}", "2023-07-01")
    assert_status(resp, 200)
    assert resp.json()["basis"] == "dpf" and resp.json()["created_at"] == "2023-07-01T10:00:00Z"
    # as_of is the only query parameter a document's GET takes
    resp = api.get(f"/v1/transfers/{tr['id']}", params={"as_of": "2023-07-01", "x": "1"})
    assert_problem(resp, 400, "malformed-request")
    # reference data too (its seed is recorded today: before that, it did not exist here)
    assert_problem(get_as_of(api, "/v1/reference/countries/DE", "2025-03-01"), 404, "not-found")
    # deliveries and events are not in the audit trail
    resp = get_as_of(api, "/v1/events/ev_00000000000000000000000000", "2025-03-01")
    assert_problem(resp, 400, "malformed-request")
    assert "audit trail" in resp.json()["detail"]


def test_long_history_read_page_by_page(history):
    """The end of 10 January 2025 in Berlin is 23:00 UTC: the last version before
    it is the 239th (an hour apart from 00:00 UTC on 1 January)."""
    api, sp_id = history["api"], history["d"]["id"]
    path = f"/v1/subprocessors/{sp_id}"
    for day, name in (("2025-01-01", "D v23"), ("2025-01-10", "D v239"), ("2025-02-19", "D v1199"),
                      ("2025-03-01", f"D v{D_VERSIONS}")):
        resp = get_as_of(api, path, day)
        assert_status(resp, 200)
        assert resp.json()["legal_name"] == name, (day, resp.json()["legal_name"])
        [f] = findings(api, day, rule="no_active_dpa", subprocessor_id=sp_id)
        assert name in f["message"]["en"], (day, f)


def test_a_past_day_is_not_cut_off_by_the_request_deadline(history, make_server):
    """Rebuilding a day reads the audit trail up to it (linear in its length): a
    past as_of gets 60 s beyond SUBREG_REQUEST_DEADLINE_MS, so even a service
    with a 100 ms deadline rebuilds the 1,200-version history. (The URI keeps
    each single operation's socket timeout at 10 s: a loaded machine may take
    longer than 100 ms for one page.)"""
    srv = history["srv"]
    uri = srv.db.uri + ("&" if "?" in srv.db.uri else "?") + "socketTimeoutMS=10000"
    other = make_server(extra_env={"SUBREG_REQUEST_DEADLINE_MS": "100", "SUBREG_MONGODB_URI": uri},
                        share_db_with=srv)
    api = other.api(roles=["reader"], sub="short-deadline")
    resp = api.get(FINDINGS, params={"as_of": "2025-03-01", "rule": "no_active_dpa",
                                     "subprocessor_id": history["d"]["id"]})
    assert_status(resp, 200)
    [f] = resp.json()["items"]
    assert f"D v{D_VERSIONS}" in f["message"]["en"]


# ---------------------------------------------------------------------------
# bad dates


@pytest.mark.parametrize("path", [FINDINGS, EXPIRING, "/v1/subprocessors/sp_00000000000000000000000000"])
def test_bad_as_of(history, path):
    api = history["api"]
    for bad in ("2025-02-30", "yesterday", "2025-3-1", ""):
        resp = get_as_of(api, path, bad)
        assert_problem(resp, 400, "malformed-request")
        assert "as_of" in resp.json()["detail"]
    tomorrow = (dt.date.fromisoformat(api.get(FINDINGS).json()["as_of"]) + dt.timedelta(days=1)).isoformat()
    resp = get_as_of(api, path, tomorrow)
    assert_problem(resp, 422, "unprocessable-entity")
    assert "in the future" in resp.json()["detail"]
    # before the first audit record (1 July 2023): nothing to reconstruct
    resp = get_as_of(api, path, "2023-06-30")
    assert_problem(resp, 422, "unprocessable-entity")
    assert "earliest day available is 2023-07-01 (Europe/Berlin)" in resp.json()["detail"]
    if path != FINDINGS and path != EXPIRING:
        assert_problem(get_as_of(api, path, "2023-07-01"), 404, "not-found")
    else:
        assert_status(get_as_of(api, path, "2023-07-01"), 200)


# ---------------------------------------------------------------------------
# findings as of a date: both sides of every boundary


def findings(api, day, **params):
    resp = api.get(FINDINGS, params=dict(params, as_of=day))
    assert_status(resp, 200)
    body = resp.json()
    assert body["as_of"] == day and body["computed_on"] == day, body
    assert body["time_zone"] == "Europe/Berlin"
    return body["items"]


def test_default_is_today_in_berlin(history):
    body = history["api"].get(FINDINGS, params={"rule": "expiring"}).json()
    assert body["time_zone"] == "Europe/Berlin"
    assert body["as_of"] == body["computed_on"]
    assert body["as_of"] == dt.datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat()
    rep = history["api"].get(EXPIRING).json()
    assert rep["as_of"] == body["as_of"] and rep["time_zone"] == "Europe/Berlin"


def test_no_active_dpa_on_both_sides_of_each_change(history):
    api, sp_id = history["api"], history["a"]["id"]
    expect = {
        "2025-02-19": False,  # proposed: no DPA needed yet
        "2025-02-20": True,   # active from that day, without a DPA
        "2025-03-09": True,
        "2025-03-10": False,  # the DPA was signed (recorded) that day
        "2025-03-20": False,  # its last day
        "2025-03-21": True,   # expired the day before
    }
    for day, present in expect.items():
        items = findings(api, day, rule="no_active_dpa", subprocessor_id=sp_id)
        assert bool(items) == present, (day, items)
    since = findings(api, "2025-03-21", rule="no_active_dpa", subprocessor_id=sp_id)[0]
    assert since["since"] == "2025-03-21"
    # the name in the message is the name of that day
    assert "A2" in findings(api, "2025-02-28", rule="no_active_dpa", subprocessor_id=sp_id)[0]["message"]["en"]
    assert "A3" in findings(api, "2025-03-01", rule="no_active_dpa", subprocessor_id=sp_id)[0]["message"]["en"]


def test_adequacy_decision_counts_from_its_adoption(history):
    """The DPF decision was adopted on 10 July 2023: a DPF transfer the day
    before had no valid basis."""
    api, tr_id, sp_id = history["api"], history["transfer"]["id"], history["c"]["id"]
    before = findings(api, "2023-07-09", rule="no_valid_basis", subprocessor_id=sp_id)
    assert [f["entity_id"] for f in before] == [tr_id], before
    assert findings(api, "2023-07-10", rule="no_valid_basis", subprocessor_id=sp_id) == []


def test_expiring_report_as_of(history):
    api, dpa = history["api"], history["dpa"]["id"]

    def report(day, within):
        resp = api.get(EXPIRING, params={"as_of": day, "within_days": within})
        assert_status(resp, 200)
        body = resp.json()
        assert body["as_of"] == day and body["computed_on"] == day and body["time_zone"] == "Europe/Berlin"
        return [i for i in body["items"] if i["entity_id"] == dpa]

    assert report("2025-03-09", 30) == []  # not signed yet
    assert report("2025-03-10", 9) == []   # 20 March is 10 days away
    [due] = report("2025-03-10", 10)
    assert due["date"] == "2025-03-20" and due["overdue"] is False
    [due] = report("2025-03-20", 0)
    assert due["overdue"] is False
    [due] = report("2025-03-21", 0)
    assert due["overdue"] is True
