#!/usr/bin/env python3
"""What subreg's store needs from the embedded database, checked one by one
against mongo-java-server (through tools/mongo-java-server) or FerretDB; prints
PASS/FAIL per item and exits 1 when any failed.

  ~/.cache/subreg/venv/bin/python bench/embedded-db/compat.py [--db mongo-java-server|ferretdb]
      [--kill-rounds 5]
"""

import argparse
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pymongo
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
