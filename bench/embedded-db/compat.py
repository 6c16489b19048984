#!/usr/bin/env python3
"""What subreg's store needs from the embedded database, checked one by one
against mongo-java-server (through tools/mongo-java-server) or FerretDB; prints
PASS/FAIL per item and exits 1 when any failed.

  ~/.cache/subreg/venv/bin/python bench/embedded-db/compat.py [--db mongo-java-server|ferretdb]
      [--kill-rounds 5] [--ref-jar PATH]

With mongo-java-server it also compares the launcher's query planning (secondary
indexes, ordered _id scans, counts) with a reference server that scans like
upstream does: --ref-jar (default $MJS_REF_JAR, else the jar built before the
planner, ~/.cache/subreg/mongo-java-server-1.47.0/embedded-mongo.jar, if it is a
different file than the one tested). Without a reference the same queries are
compared with a Python evaluation of the simple filters only.
"""

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pymongo
from bson import ObjectId
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe import FerretDB, MongoJavaServer, mjs_jar  # noqa: E402

results = []


def check(name):
    def deco(fn):
        def run(*a, **kw):
            try:
                detail = fn(*a, **kw)
                ok = True
            except Exception as e:  # noqa: BLE001
                ok = False
                detail = f"{type(e).__name__}: {str(e)[:300]}"
                if not isinstance(e, AssertionError):
                    detail += "\n" + "".join(traceback.format_exc().splitlines(True)[-3:])
            results.append((name, ok, detail))
            print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else ""), flush=True)
        run()  # the decorated check runs where it is defined
        return run
    return deco


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["mongo-java-server", "ferretdb"], default="mongo-java-server")
    ap.add_argument("--kill-rounds", type=int, default=5)
    ap.add_argument("--ref-jar", default=os.environ.get("MJS_REF_JAR"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="embedded-db-compat-"))

    def new_db(sub="db"):
        d = work / sub
        d.mkdir(parents=True, exist_ok=True)
        return MongoJavaServer(d, mjs_jar()) if args.db == "mongo-java-server" else FerretDB(d)

    db = new_db()
    db.start()
    client = pymongo.MongoClient(db.uri)
    t = client.compat
    try:
        run_checks(client, t)
        client.close()
        db.stop()
        if args.db == "mongo-java-server":
            ref_jar = args.ref_jar or default_ref_jar()
            index_parity(new_db, (lambda: MongoJavaServer(work / "ref", ref_jar)) if ref_jar else None)
        durability(new_db, args.kill_rounds)
    finally:
        client.close()
        db.stop(signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)

    failed = [r for r in results if not r[1]]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


def run_checks(client, t):
    c = t.items

    @check("hello command")
    def _():
        r = client.admin.command("hello")
        assert r.get("ok") == 1 and r.get("isWritablePrimary") is True, r
        return f"maxWireVersion={r.get('maxWireVersion')}"

    @check("isMaster command")
    def _():
        r = client.admin.command("isMaster")
        assert r.get("ok") == 1 and r.get("ismaster") is True, r

    @check("ping command")
    def _():
        assert client.admin.command("ping").get("ok") == 1
        assert t.command("ping").get("ok") == 1

    @check("duplicate _id insert -> 11000")
    def _():
        c.insert_one({"_id": "dup", "v": 1})
        try:
            c.insert_one({"_id": "dup", "v": 2})
        except DuplicateKeyError as e:
            assert e.code == 11000, e.code
            return None
        raise AssertionError("second insert accepted")

    @check("createIndexes unique compound (3 fields) refuses duplicate -> 11000")
    def _():
        a = t.audit
        r = t.command({"createIndexes": "audit", "indexes": [
            {"key": {"entity_type": 1, "entity_id": 1, "entity_version": 1},
             "name": "claim", "unique": True}]})
        assert r.get("ok") == 1, r
        a.insert_one({"_id": "a1", "entity_type": "sp", "entity_id": "x", "entity_version": 1})
        a.insert_one({"_id": "a2", "entity_type": "sp", "entity_id": "x", "entity_version": 2})
        a.insert_one({"_id": "a3", "entity_type": "doc", "entity_id": "x", "entity_version": 1})
        try:
            a.insert_one({"_id": "a4", "entity_type": "sp", "entity_id": "x", "entity_version": 1})
        except DuplicateKeyError as e:
            assert e.code == 11000, e.code
            return None
        raise AssertionError("duplicate accepted")

    @check("createIndexes run twice is idempotent")
    def _():
        spec = {"createIndexes": "audit", "indexes": [
            {"key": {"entity_type": 1, "entity_id": 1, "entity_version": 1}, "name": "claim", "unique": True},
            {"key": {"entity_id": 1}, "name": "entity_id_1"}]}
        r1 = t.command(spec)
        r2 = t.command(spec)
        assert r1.get("ok") == 1 and r2.get("ok") == 1, (r1, r2)
        names = sorted(i["name"] for i in t.audit.list_indexes())
        assert names.count("claim") == 1, names
        return f"indexes {names}"

    @check("update with filter {_id, version: N} matches 0 when version differs")
    def _():
        c.insert_one({"_id": "v1", "version": 3, "x": 0})
        r = c.update_one({"_id": "v1", "version": 2}, {"$set": {"x": 1}})
        assert r.matched_count == 0 and r.modified_count == 0, r.raw_result
        r = c.replace_one({"_id": "v1", "version": 2}, {"version": 3, "x": 2})
        assert r.matched_count == 0, r.raw_result
        r = c.update_one({"_id": "v1", "version": 3}, {"$set": {"x": 1}, "$inc": {"version": 1}})
        assert r.matched_count == 1, r.raw_result
        assert c.find_one({"_id": "v1"}) == {"_id": "v1", "version": 4, "x": 1}

    s = t.sorts
    s.insert_many([{"_id": f"id{i:03d}", "n": i, "kind": "even" if i % 2 == 0 else "odd",
                    "tags": ["a", "b"] if i % 3 == 0 else ["c"], "opt": i if i % 5 == 0 else None}
                   for i in range(100)])
    s.update_many({"opt": None}, {"$unset": {"opt": ""}})

    @check("sort + limit")
    def _():
        docs = list(s.find({"kind": "odd"}).sort("n", -1).limit(3))
        assert [d["n"] for d in docs] == [99, 97, 95], [d["n"] for d in docs]
        docs = list(s.find({}).sort("_id", 1).skip(10).limit(2))
        assert [d["_id"] for d in docs] == ["id010", "id011"]

    @check("filters with _id and more fields ({_id: X, f: v}, {_id: {$in}, f: v}, {_id: {$gt}, f: v})")
    def _():
        assert [d["n"] for d in s.find({"_id": "id001", "kind": "odd"})] == [1]
        assert list(s.find({"_id": "id001", "kind": "even"})) == []
        assert s.count_documents({"_id": "id002", "kind": "even", "n": {"$gte": 2}}) == 1
        got = sorted(d["n"] for d in s.find({"_id": {"$in": ["id001", "id002", "id003"]}, "kind": "odd"}))
        assert got == [1, 3], got
        got = [d["n"] for d in s.find({"_id": {"$gt": "id090"}, "kind": "even"}).sort("_id", 1)]
        assert got == [92, 94, 96, 98], got
        assert s.delete_one({"_id": "id004", "kind": "odd"}).deleted_count == 0
        assert s.update_one({"_id": "id004", "kind": "even"}, {"$set": {"seen": 1}}).modified_count == 1
        assert s.find_one({"_id": "id004"})["seen"] == 1

    @check("count_documents with a filter")
    def _():
        assert s.count_documents({"kind": "even"}) == 50
        assert s.count_documents({"n": {"$gte": 90}}) == 10
        assert s.count_documents({}) == 100

    @check("$in")
    def _():
        assert sorted(d["n"] for d in s.find({"_id": {"$in": ["id001", "id005", "nope"]}})) == [1, 5]
        assert s.count_documents({"n": {"$in": [1, 2, 3]}}) == 3

    @check("$gt/$lt on strings")
    def _():
        got = [d["_id"] for d in s.find({"_id": {"$gt": "id010", "$lt": "id014"}}).sort("_id", 1)]
        assert got == ["id011", "id012", "id013"], got
        got = [d["_id"] for d in s.find({"_id": {"$gt": "id095"}}).sort("_id", 1).limit(50)]
        assert got == ["id096", "id097", "id098", "id099"], got

    @check("$exists")
    def _():
        assert s.count_documents({"opt": {"$exists": True}}) == 20
        assert s.count_documents({"opt": {"$exists": False}}) == 80

    @check("$ne")
    def _():
        assert s.count_documents({"kind": {"$ne": "odd"}}) == 50
        assert s.count_documents({"opt": {"$ne": None}}) == 20

    @check("array field equality ({tags: 'a'}) and $elemMatch")
    def _():
        assert s.count_documents({"tags": "a"}) == 34
        assert s.count_documents({"tags": {"$elemMatch": {"$eq": "b"}}}) == 34
        t.arr.insert_one({"_id": 1, "items": [{"k": "x", "v": 1}, {"k": "y", "v": 2}]})
        assert t.arr.count_documents({"items": {"$elemMatch": {"k": "y", "v": 2}}}) == 1
        assert t.arr.count_documents({"items": {"$elemMatch": {"k": "y", "v": 1}}}) == 0

    unordered = {}

    @check("insert_many ordered=false: 11000 reported, the rest inserted")
    def _():
        u = t.unordered
        u.insert_many([{"_id": 2}, {"_id": 4}])
        try:
            u.insert_many([{"_id": i} for i in range(1, 7)], ordered=False)
        except BulkWriteError as e:
            errs = e.details["writeErrors"]
            codes = sorted({w["code"] for w in errs})
            assert codes == [11000], codes
            assert sorted(w["index"] for w in errs) == [1, 3], errs
            unordered["nInserted"] = e.details["nInserted"]
        else:
            raise AssertionError("no BulkWriteError")
        assert sorted(d["_id"] for d in u.find()) == [1, 2, 3, 4, 5, 6]

    @check("insert_many ordered=false: nInserted counts only the inserted (4 of 6)")
    def _():
        assert unordered.get("nInserted") == 4, f"nInserted={unordered.get('nInserted')}"

    @check("delete_many with $in on _id")
    def _():
        d = t.dels
        d.insert_many([{"_id": f"d{i}"} for i in range(10)])
        r = d.delete_many({"_id": {"$in": ["d1", "d3", "d5", "zz"]}})
        assert r.deleted_count == 3, r.raw_result
        assert d.count_documents({}) == 7

    @check("projection (include, exclude, _id:0, dotted)")
    def _():
        p = t.proj
        p.insert_one({"_id": "p", "a": 1, "b": {"c": 2, "d": 3}, "e": 4})
        assert p.find_one({}, {"a": 1}) == {"_id": "p", "a": 1}
        assert p.find_one({}, {"b": 0, "e": 0}) == {"_id": "p", "a": 1}
        assert p.find_one({}, {"_id": 0, "e": 1}) == {"e": 4}
        assert p.find_one({}, {"b.c": 1, "_id": 0}) == {"b": {"c": 2}}

    @check("find_one_and_update (returns the new document)")
    def _():
        c.insert_one({"_id": "fam", "n": 1})
        r = c.find_one_and_update({"_id": "fam"}, {"$inc": {"n": 1}},
                                  return_document=pymongo.ReturnDocument.AFTER)
        assert r == {"_id": "fam", "n": 2}, r

    @check("upsert")
    def _():
        r = c.update_one({"_id": "ups"}, {"$set": {"n": 1}}, upsert=True)
        assert r.upserted_id == "ups", r.raw_result
        assert c.find_one({"_id": "ups"}) == {"_id": "ups", "n": 1}


def default_ref_jar():
    ref = Path.home() / ".cache/subreg/mongo-java-server-1.47.0/embedded-mongo.jar"
    tested = os.environ.get("MJS_JAR")
    if ref.is_file() and tested and Path(tested).resolve() != ref.resolve():
        return str(ref)
    return None


# --- index parity: the launcher's planned queries against a reference that scans

COUNTRIES = ["DE", "FR", "US", "IE", "NL"]


def parity_docs(rng, n, mixed_ids=False):
    docs = []
    for i in range(n):
        if mixed_ids and i % 4 == 1:
            _id = i  # int
        elif mixed_ids and i % 4 == 2:
            _id = ObjectId("%024x" % rng.getrandbits(96))  # the same in both servers
        elif mixed_ids and i % 4 == 3:
            _id = float(i) + 0.5
        else:
            _id = f"id_{rng.randrange(10**6):06d}_{i:04d}"
        d = {"_id": _id, "i": i, "pad": "p" * rng.randrange(50)}
        r = rng.random()
        if r < 0.85:
            d["k"] = f"k{rng.randrange(8)}"
        elif r < 0.9:
            d["k"] = rng.randrange(8)  # a number where most are strings
        elif r < 0.95:
            d["k"] = None
        # else: no k
        if rng.random() < 0.9:
            d["n"] = rng.choice([rng.randrange(30), float(rng.randrange(30)), rng.randrange(30) + 0.5])
        d["flag"] = rng.random() < 0.5
        d["at"] = "2026-01-%02dT%02d:00:00Z" % (rng.randrange(1, 15), rng.randrange(24))
        m = rng.randrange(5)
        if m == 4:
            d["locations"] = {"country": rng.choice(COUNTRIES)}  # a subdocument, not an array
        elif m > 0:
            d["locations"] = [{"country": rng.choice(COUNTRIES), "city": "c"} for _ in range(m)]
        if rng.random() < 0.7:
            d["tags"] = rng.sample(["a", "b", "c", "d"], rng.randrange(0, 4))
        if rng.random() < 0.1:
            d["tags"] = [["a", "b"], "c"]  # nested array
        docs.append(d)
    return docs


PARITY_INDEXES = [
    {"key": {"k": 1}, "name": "k_1"},
    {"key": {"n": 1}, "name": "n_1"},
    {"key": {"at": 1}, "name": "at_1"},
    {"key": {"locations.country": 1}, "name": "loc_1"},
    {"key": {"tags": 1}, "name": "tags_1"},
    {"key": {"k": 1, "n": -1}, "name": "k_1_n_-1"},
    {"key": {"flag": 1, "k": 1}, "name": "flag_1_k_1"},
]


def parity_filters(mid, lo_id, hi_id):
    return [
        {}, {"k": "k3"}, {"k": {"$eq": "k3"}}, {"k": {"$in": ["k1", "k4", "zz"]}}, {"k": {"$in": ["k2"]}},
        {"k": 5}, {"k": 5.0}, {"k": None}, {"k": {"$exists": False}}, {"k": {"$ne": "k1"}},
        {"k": {"$gte": "k2", "$lt": "k5"}}, {"k": {"$gt": "k6"}}, {"k": {"$in": []}},
        {"k": {"$regex": "^k1"}}, {"k": {"$in": ["k1", None]}},
        {"n": 3}, {"n": 3.0}, {"n": 3.5}, {"n": {"$in": [1, 2.0, 7, 7.5]}}, {"n": {"$gte": 10, "$lt": 20}},
        {"n": {"$gt": 5.5}}, {"n": {"$lte": 2}}, {"n": {"$gte": "a"}}, {"n": {"$gt": 3, "$lt": "z"}},
        {"at": {"$gte": "2026-01-05", "$lt": "2026-01-09"}}, {"at": {"$lte": "2026-01-03"}},
        {"at": "2026-01-07T05:00:00Z"},
        {"locations.country": "DE"}, {"locations.country": {"$in": ["FR", "US"]}},
        {"locations.country": {"$gte": "I", "$lt": "O"}}, {"locations.0.country": "DE"},
        {"tags": "a"}, {"tags": {"$in": ["b", "c"]}}, {"tags": ["a", "b"]}, {"tags": {"$gt": "b"}},
        {"flag": True}, {"flag": True, "k": "k1"},
        {"k": "k3", "n": {"$gt": 10}}, {"k": "k3", "flag": True}, {"k": "k3", "locations.country": "DE"},
        {"k": "k2", "_id": {"$gt": mid}}, {"k": "k2", "_id": {"$lt": mid}},
        {"k": "k2", "_id": {"$gte": lo_id, "$lte": hi_id}},
        {"_id": {"$gt": mid}}, {"_id": {"$lt": mid}}, {"_id": {"$gte": lo_id, "$lte": hi_id}},
        {"_id": {"$gt": 5}}, {"_id": {"$in": [lo_id, hi_id, "nope"]}, "k": {"$exists": True}},
        {"k": "k1", "$or": [{"n": {"$lt": 5}}, {"flag": False}]}, {"$or": [{"k": "k1"}, {"k": "k2"}]},
        {"k": {"$in": ["k1", "k2"]}, "tags": "a", "_id": {"$gt": mid}},
        # a range of another field with a lower bound on _id (the audit by time)
        {"at": {"$gte": "2026-01-05"}, "_id": {"$gte": lo_id}}, {"n": {"$gte": 10}, "_id": {"$gt": mid}},
        {"at": {"$gte": "2026-01-03"}, "_id": {"$gte": lo_id, "$lt": hi_id}},
    ]


PARITY_SORTS = [None, [("_id", 1)], [("_id", -1)], [("$natural", 1)], [("$natural", -1)],
                [("n", 1)], [("at", -1), ("_id", 1)], [("k", 1)]]


def parity_run(coll, mid, lo_id, hi_id):
    """Every query's answer (or error code), in a comparable form."""
    out = []
    for f in parity_filters(mid, lo_id, hi_id):
        for s in PARITY_SORTS:
            for skip, limit in [(0, 0), (0, 5), (3, 5), (0, 51)]:
                key = (repr(f), repr(s), skip, limit)
                try:
                    cur = coll.find(f, skip=skip, limit=limit)
                    if s:
                        cur = cur.sort(s)
                    out.append((key, [repr(d) for d in cur]))
                except OperationFailure as e:
                    out.append((key, f"error {e.code}"))
        for skip, limit in [(0, 0), (2, 5)]:
            key = ("count", repr(f), skip, limit)
            try:
                kw = {"skip": skip} if skip else {}
                if limit:
                    kw["limit"] = limit
                out.append((key, coll.count_documents(f, **kw)))
            except OperationFailure as e:
                out.append((key, f"error {e.code}"))
    # projection on a served query
    key = ("projection",)
    out.append((key, [repr(d) for d in coll.find({"k": "k1"}, {"k": 1, "_id": 0}).sort("_id", 1).limit(7)]))
    out.append((("distinct",), sorted(map(repr, coll.distinct("n", {"k": "k2"})))))
    return out


def py_match_simple(d, f):
    """A Python evaluation of the simple filters (equality on a string, possibly through
    arrays); None if the filter is not one of those."""
    if len(f) != 1:
        return None
    (path, want), = f.items()
    if not isinstance(want, str) or any(p.isdigit() for p in path.split(".")):
        return None

    def values(v, parts):
        # MongoDB: arrays are expanded one level, at the leaf and for subdocuments
        # on the way; an array nested in an array is a value, not more elements
        if not parts:
            yield v
            if isinstance(v, list):
                yield from v
            return
        if isinstance(v, list):
            for e in v:
                if isinstance(e, dict):
                    yield from values(e, parts)
            return
        if isinstance(v, dict) and parts[0] in v:
            yield from values(v[parts[0]], parts[1:])

    return any(v == want for v in values(d, path.split(".")))


def parity_mutate(coll, rng):
    coll.update_many({"k": "k1"}, {"$set": {"k": "k7", "n": 99}})
    coll.update_many({"k": "k2", "flag": True}, {"$unset": {"k": ""}})
    coll.update_many({"locations.country": "FR"}, {"$set": {"locations": [{"country": "ES"}, {"country": "DE"}]}})
    coll.update_many({"tags": "d"}, {"$push": {"tags": "e"}})
    coll.update_one({"k": "k3"}, {"$set": {"k": "k4"}})
    coll.delete_many({"k": "k5"})
    coll.delete_many({"n": {"$gte": 25}})
    coll.delete_one({"tags": "a"})
    coll.insert_many(parity_docs(rng, 60))
    ids = [d["_id"] for d in coll.find({}, {"_id": 1}).sort("_id", 1).limit(40)]
    for _id in ids[::3]:
        coll.replace_one({"_id": _id}, {"k": "k0", "n": 1, "at": "2026-01-01T00:00:00Z", "tags": ["z"]})


def index_parity(new_db, ref_factory):
    dbs = {"tested": new_db("parity")}
    if ref_factory:
        dbs["reference"] = ref_factory()
    for d in dbs.values():
        d.start()
    clients = {name: pymongo.MongoClient(d.uri) for name, d in dbs.items()}
    state = {}

    def load():
        for name, cl in clients.items():
            rng = random.Random(7)
            for cname, mixed in [("ix", False), ("mixed", True)]:
                c = cl.parity[cname]
                # half inserted before the indexes exist (built from the data), half after
                docs = parity_docs(rng, 600, mixed)
                c.insert_many(docs[:300])
                cl.parity.command({"createIndexes": cname, "indexes": PARITY_INDEXES})
                c.insert_many(docs[300:])
        c = clients["tested"].parity.ix
        ids = sorted(d["_id"] for d in c.find({}, {"_id": 1}))
        state["bounds"] = (ids[len(ids) // 2], ids[len(ids) // 5], ids[len(ids) * 3 // 5])

    def compare(label):
        for cname in ["ix", "mixed"]:
            answers = {name: parity_run(cl.parity[cname], *state["bounds"]) for name, cl in clients.items()}
            tested = answers["tested"]
            if "reference" in answers:
                diffs = [(a[0], a[1], b[1]) for a, b in zip(tested, answers["reference"]) if a != b]
                if diffs:
                    k, got, want = diffs[0]
                    raise AssertionError(f"{cname}: {len(diffs)} of {len(tested)} answers differ from the reference; "
                                         f"first {k}: got {str(got)[:300]} want {str(want)[:300]}")
            # and against Python for the simple equality filters
            docs = list(clients["tested"].parity[cname].find({}))
            n_py = 0
            for f in parity_filters(*state["bounds"]):
                want = [d for d in docs if py_match_simple(d, f)] if py_match_simple({}, f) is not None else None
                if want is None:
                    continue
                got = list(clients["tested"].parity[cname].find(f))
                assert sorted(map(repr, got)) == sorted(map(repr, want)), f"{cname} {f}: {len(got)} vs {len(want)}"
                n_py += 1
        return f"{len(tested)} answers per collection" + (" = reference" if "reference" in answers else "") \
            + f"; {n_py} filters = Python"

    def restart_tested(kill):
        """Stops the tested server (SIGTERM, or kill -9), starts it on its data, reconnects."""
        clients["tested"].close()
        if kill:
            dbs["tested"].proc.send_signal(signal.SIGKILL)
            dbs["tested"].proc.wait()
        else:
            dbs["tested"].stop(signal.SIGTERM)
        dbs["tested"].start()
        clients["tested"] = pymongo.MongoClient(dbs["tested"].uri)

    try:
        @check("index parity: load (indexes built from data and maintained on insert)")
        def _():
            load()

        @check("index parity: equality/$in/range/array filters, sorts asc/desc, limits, _id cursors, counts")
        def _():
            return compare("initial")

        @check("index parity: after updates that change indexed fields, replaces, deletes, inserts")
        def _():
            for name, cl in clients.items():
                rng = random.Random(11)
                parity_mutate(cl.parity.ix, rng)
                parity_mutate(cl.parity.mixed, rng)
            return compare("mutated")

        @check("index parity: after a restart (SIGTERM) of the tested server")
        def _():
            restart_tested(kill=False)
            return compare("restarted")

        @check("index parity: writes, kill -9, restart")
        def _():
            for name, cl in clients.items():
                cl.parity.ix.update_many({"k": "k6"}, {"$set": {"k": "k0"}})
                cl.parity.ix.delete_many({"tags": "b"})
            restart_tested(kill=True)
            return compare("killed")

        @check("index parity: dropIndex, then the same answers without the index")
        def _():
            for name, cl in clients.items():
                cl.parity.ix.drop_index("k_1")
                cl.parity.ix.drop_index("k_1_n_-1")
                cl.parity.ix.drop_index("flag_1_k_1")
            names = sorted(i["name"] for i in clients["tested"].parity.ix.list_indexes())
            assert "k_1" not in names, names
            return compare("dropped")

        @check("count_documents on a missing collection and with no match -> 0")
        def _():
            cl = clients["tested"]
            assert cl.parity.nope.count_documents({}) == 0
            assert cl.parity.nope.count_documents({"k": "x"}) == 0
            assert cl.parity.ix.count_documents({"k": "no-such"}) == 0
            r = cl.parity.command({"aggregate": "ix", "pipeline": [
                {"$match": {"k": "k0"}}, {"$skip": 1}, {"$limit": 3}, {"$group": {"_id": None, "c": {"$sum": 1}}}],
                "cursor": {}})
            assert r["cursor"]["firstBatch"] == [{"_id": None, "c": 3}], r
    finally:
        for cl in clients.values():
            cl.close()
        for d in dbs.values():
            d.stop(signal.SIGKILL)


def durability(new_db, kill_rounds):
    @check("restart durability (write, SIGTERM, start, read back)")
    def _():
        db = new_db("restart")
        db.start()
        try:
            cl = pymongo.MongoClient(db.uri)
            cl.d.c.insert_many([{"_id": i, "a": i, "b": i % 7, "x": "y" * 100} for i in range(500)])
            cl.d.c.create_index([("a", 1), ("b", 1)], unique=True, name="ab")
            cl.d.c.update_one({"_id": 7}, {"$set": {"x": "z"}})
            cl.d.c.delete_one({"_id": 8})
            cl.close()
            db.stop(signal.SIGTERM)
            rc = db.proc.returncode
            db.start()
            cl = pymongo.MongoClient(db.uri)
            assert cl.d.c.count_documents({}) == 499
            assert cl.d.c.find_one({"_id": 7})["x"] == "z"
            assert "ab" in [i["name"] for i in cl.d.c.list_indexes()]
            # the unique index still works after the restart
            cl.d.c.insert_one({"_id": "u1", "a": -1, "b": -1})
            try:
                cl.d.c.insert_one({"_id": "u2", "a": -1, "b": -1})
                raise AssertionError("unique index not enforced after restart")
            except DuplicateKeyError:
                pass
            cl.close()
        finally:
            db.stop(signal.SIGKILL)
        return f"exit code on SIGTERM: {rc}"

    for rnd in range(1, kill_rounds + 1):
        @check(f"kill -9 durability round {rnd}: 200 acknowledged writes, kill -9 after the last ack")
        def _():
            db = new_db(f"kill{rnd}")
            db.start()
            try:
                cl = pymongo.MongoClient(db.uri)
                c = cl.d.c
                # a mix of writes, each acknowledged before the next
                for i in range(200):
                    c.insert_one({"_id": i, "v": 0, "pad": "p" * 500})
                    if i % 4 == 3:
                        c.update_one({"_id": i - 1}, {"$set": {"v": 1}})
                db.proc.send_signal(signal.SIGKILL)  # immediately after the last ack
                db.proc.wait()
                cl.close()
                db.start()
                cl = pymongo.MongoClient(db.uri)
                n = cl.d.c.count_documents({})
                v1 = cl.d.c.count_documents({"v": 1})
                last = cl.d.c.find_one({"_id": 199})
                cl.close()
            finally:
                db.stop(signal.SIGKILL)
            assert n == 200 and v1 == 50 and last is not None, f"{n}/200 documents, {v1}/50 updates after kill -9"
            return f"{n}/200 documents, {v1}/50 updates"


if __name__ == "__main__":
    main()
