"""Optimistic locking under concurrency: no lost updates."""

import threading
import uuid

from helpers import Api, assert_problem, assert_status, sp_body, unique_country, unique_name

SP = "/v1/subprocessors"
N = 8

FIELDS = {  # eight independent optional fields, one per writer
    "trading_name": "Trading {i}",
    "notes": "note from writer {i}",
    "website": "https://w{i}.example.com/",
    "privacy_policy_url": "https://p{i}.example.com/privacy",
    "dpa_url": "https://d{i}.example.com/dpa",
    "subprocessor_list_url": "https://s{i}.example.com/list",
    "last_review_on": "2026-0{i}-01",
    "next_review_on": "2027-0{i}-01",
}


def _fresh(admin):
    body = sp_body(legal_name=unique_name("Concurrent"))
    for key in FIELDS:
        body.pop(key, None)
    return admin.create_sp(body)


def _run_threads(target, n=N):
    barrier = threading.Barrier(n)
    results = [None] * n
    errors = []

    def run(i):
        try:
            barrier.wait(10)
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(f"thread {i}: {exc!r}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a request hung"
    assert not errors, errors
    return results


def test_concurrent_patch_same_version_exactly_one_wins(server, admin):
    created = _fresh(admin)
    path = f"{SP}/{created['id']}"
    token = admin.token

    def patch(i):
        api = Api(server.url, token=token)  # own connection per thread
        return api.patch(path, {"notes": f"writer {i}"}, if_match=1)

    responses = _run_threads(patch)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [412] * (N - 1), codes
    winner = next(r for r in responses if r.status_code == 200)
    for r in responses:
        if r.status_code == 412:
            assert_problem(r, 412, "precondition-failed")
    assert winner.json()["version"] == 2
    assert winner.headers.get("ETag") == '"2"'
    final = admin.get_sp(created["id"])
    assert final["version"] == 2
    assert final["notes"] == winner.json()["notes"]

    # sequential patches, each with the right version, all succeed; nothing lost
    version = 2
    for i, (key, template) in enumerate(FIELDS.items(), start=1):
        resp = admin.patch(path, {key: template.format(i=i)}, if_match=version)
        assert_status(resp, 200)
        version += 1
        assert resp.json()["version"] == version
    final = admin.get_sp(created["id"])
    assert final["version"] == 2 + len(FIELDS)
    for i, (key, template) in enumerate(FIELDS.items(), start=1):
        assert final[key] == template.format(i=i), key


def test_concurrent_writers_with_retry_lose_nothing(server, admin):
    """Eight writers each set their own field, retrying on 412 with a fresh
    read: every write lands, and the version counts every change exactly once."""
    created = _fresh(admin)
    path = f"{SP}/{created['id']}"
    token = admin.token
    keys = list(FIELDS)

    def writer(i):
        api = Api(server.url, token=token)
        key = keys[i]
        value = FIELDS[key].format(i=i + 1)
        for attempt in range(60):
            cur = api.get(path)
            assert cur.status_code == 200, cur.text
            resp = api.patch(path, {key: value}, if_match=cur.headers["ETag"])
            if resp.status_code == 200:
                return attempt
            assert resp.status_code == 412, resp.text
        raise AssertionError(f"writer {i} never succeeded")

    _run_threads(writer)
    final = admin.get_sp(created["id"])
    assert final["version"] == 1 + N
    for i, key in enumerate(keys):
        assert final[key] == FIELDS[key].format(i=i + 1), key


def test_concurrent_creates_are_distinct(server, admin):
    country = unique_country()
    token = admin.token

    def create(i):
        api = Api(server.url, token=token)
        return api.post(SP, sp_body(legal_name=unique_name(f"Parallel {i}"),
                                    locations=[{"country": country, "role": "hosting"}]))

    responses = _run_threads(create)
    assert [r.status_code for r in responses] == [201] * N
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == N
    items, _ = admin.list_all(country=country)
    assert sorted(it["id"] for it in items) == sorted(ids)


def test_concurrent_idempotent_posts_create_one(server, admin):
    country = unique_country()
    body = sp_body(legal_name=unique_name("Idem parallel"),
                   locations=[{"country": country, "role": "hosting"}])
    key = f"idem-{uuid.uuid4()}"
    token = admin.token

    def create(i):
        return Api(server.url, token=token).post(SP, body, headers={"Idempotency-Key": key})

    responses = _run_threads(create)
    ok = [r for r in responses if r.status_code == 201]
    assert ok, [r.status_code for r in responses]
    # losers of the race may get 409 while the first request is in flight
    assert all(r.status_code in (201, 409) for r in responses), [r.status_code for r in responses]
    assert len({r.json()["id"] for r in ok}) == 1
    items, _ = admin.list_all(country=country)
    assert len(items) == 1, "concurrent requests with one Idempotency-Key created several resources"


def test_concurrent_delete_exactly_one_wins(server, admin):
    created = _fresh(admin)
    path = f"{SP}/{created['id']}"
    token = admin.token

    def delete(i):
        return Api(server.url, token=token).delete(path, if_match=1)

    codes = sorted(r.status_code for r in _run_threads(delete))
    assert codes[0] == 204 and codes.count(204) == 1, codes
    assert all(c in (404, 412) for c in codes[1:]), codes
    assert_problem(admin.get(path), 404, "not-found")


def test_two_instances_same_version_exactly_one_wins(make_server):
    """Two service processes on one database (a scaled-out deployment): the
    optimistic lock must hold across processes, not only within one."""
    first = make_server()
    second = make_server(share_db_with=first)
    apis = [first.api(roles=["admin"]), second.api(roles=["admin"])]
    for round_no in range(3):
        created = apis[0].create_sp(sp_body(legal_name=unique_name(f"Scaled {round_no}")))
        path = f"{SP}/{created['id']}"

        def patch(i):
            api = Api((first if i % 2 == 0 else second).url, token=apis[0].token)
            return api.patch(path, {"notes": f"writer {i}"}, if_match=1)

        responses = _run_threads(patch)
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] + [412] * (N - 1), f"round {round_no}: {codes}"
        final = apis[1].get_sp(created["id"])
        assert final["version"] == 2
        winner = next(r for r in responses if r.status_code == 200)
        assert final["notes"] == winner.json()["notes"]


def _plant_claim(db, sp, version, claimed_ms):
    """The claim a writer cut off by the database leaves (store.h): version
    claimed, the change not applied."""
    record = {"id": f"au_cut{uuid.uuid4().hex[:12]}", "at": sp["updated_at"], "actor": "cut-off-writer",
              "action": "update", "entity_type": "subprocessor", "entity_id": sp["id"],
              "entity_version": version, "request_id": "cut-off", "before": None, "after": None}
    db.claims.insert_one({"_id": f"subprocessor/{sp['id']}/{version}", "collection": "subprocessors",
                          "claimed_ms": claimed_ms, "emits": True, "record": record})
    return record["id"]


def test_a_leftover_claim_never_answers_412_to_the_current_etag(make_server):
    """A write cut off by the database leaves its version claimed. A client holding
    the current ETag is not told its ETag is stale: while the claim's outcome
    cannot be told (within its lease) the answer is 503 with Retry-After naming
    the wait; after it the leftover is settled on the spot and the write goes
    through. The cut-off write is never audited."""
    import time
    import pymongo
    srv = make_server(extra_env={"SUBREG_CLAIM_LEASE_MS": "4000"})
    api = srv.api(roles=["admin"], sub="holder")
    db = pymongo.MongoClient(srv.db.uri)["subreg_test"]
    sp = api.create_sp(sp_body(legal_name=unique_name("Leftover")))
    cut = _plant_claim(db, sp, 2, int(time.time() * 1000))
    resp = api.patch(f"{SP}/{sp['id']}", {"notes": "current ETag"}, if_match=1)
    assert_problem(resp, 503, "write-in-progress")
    wait = int(resp.headers["Retry-After"])
    assert 1 <= wait <= 4, resp.headers
    assert api.get(f"{SP}/{sp['id']}").json()["version"] == 1  # nothing changed
    time.sleep(wait + 0.2)
    resp = api.patch(f"{SP}/{sp['id']}", {"notes": "current ETag"}, if_match=1)
    assert_status(resp, 200)
    assert resp.json()["version"] == 2
    audit, _ = api.list_all("/v1/audit", entity_id=sp["id"])
    assert sorted((a["entity_version"], a["actor"]) for a in audit) == [(1, "holder"), (2, "holder")], audit
    assert all(a["id"] != cut for a in audit)
    assert db.claims.count_documents({}) == 0


def test_a_stale_etag_is_still_412_when_a_claim_is_left(server, admin):
    """The same leftover claim in front of a client whose ETag really is stale:
    the document's version tells, and the answer is 412 at once."""
    import time
    import pymongo
    sp = admin.create_sp(sp_body(legal_name=unique_name("Stale behind leftover")))
    path = f"{SP}/{sp['id']}"
    assert_status(admin.patch(path, {"notes": "v2"}, if_match=1), 200)
    db = pymongo.MongoClient(server.db.uri)["subreg_test"]
    _plant_claim(db, sp, 2, int(time.time() * 1000))  # as if v2's writer had not cleaned up
    t0 = time.monotonic()
    assert_problem(admin.patch(path, {"notes": "stale"}, if_match=1), 412, "precondition-failed")
    assert time.monotonic() - t0 < 2
    db.claims.delete_one({"_id": f"subprocessor/{sp['id']}/2"})
