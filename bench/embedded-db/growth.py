#!/usr/bin/env python3
"""How mongo-java-server's query costs grow with the collection: 10^3, 10^4 and
10^5 audit-shaped (~1 KB) documents in one collection (the audit indexes of
service/store/store.c), the JVM as tests/api/stack.py starts it (-Xmx256m
-XX:+UseSerialGC). Per size: insert rate, then ms per operation (mean of up to
--reps runs, at most --seconds each op) and the JVM's RSS. An operation that
fails (the client sees the connection close on OutOfMemoryError) prints FAIL.

  MJS_JAR=path/to/embedded-mongo.jar ~/.cache/subreg/venv/bin/python \\
      bench/embedded-db/growth.py [--sizes 1000,10000,100000] [--reps 20] [--seconds 3]
"""

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import pymongo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe import ACTORS, N_ENTITIES, TYPES, MongoJavaServer, audit_doc, mjs_jar  # noqa: E402



def doc(i):
    # time-ordered ids like the service's; entity_version unique (the claim index is)
    return audit_doc(f"aud_{i:010d}{random.getrandbits(32):08x}", TYPES[i % len(TYPES)], i + 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--java-opts", default="-Xmx256m -XX:+UseSerialGC")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    os.environ["MJS_JAVA_OPTS"] = args.java_opts
    jar = mjs_jar()
    work = Path(tempfile.mkdtemp(prefix="embedded-db-growth-"))
    db = MongoJavaServer(work, jar)
    db.start()
    print(f"jar {jar}\nJVM {args.java_opts}; ready in {db.start_s:.2f} s", flush=True)
    client = pymongo.MongoClient(db.uri, socketTimeoutMS=120000)
    coll = client.growth.audit
    for spec in [{"key": {"entity_type": 1, "entity_id": 1, "entity_version": 1}, "name": "claim", "unique": True},
                 {"key": {"entity_id": 1}, "name": "entity_id_1"},
                 {"key": {"actor": 1}, "name": "actor_1"},
                 {"key": {"at": 1}, "name": "at_1"}]:
        client.growth.command({"createIndexes": "audit", "indexes": [spec]})

    rows = []
    have = 0
    ids = []
    try:
        for n in sizes:
            t0 = time.monotonic()
            while have < n:
                batch = [doc(have + k) for k in range(min(1000, n - have))]
                coll.insert_many(batch)
                ids.extend(d["_id"] for d in batch)
                have += len(batch)
            ins = (n - (rows[-1]["n"] if rows else 0)) / (time.monotonic() - t0)
            row = {"n": n, "insert docs/s": ins}
            mid = ids[len(ids) // 2]
            rnd = random.Random(n)

            def eid():
                t = rnd.choice(TYPES)
                return f"{t[:3]}_{rnd.randrange(N_ENTITIES):06d}"

            ops = [
                ("entity_id eq, sort _id, limit 51",
                 lambda: list(coll.find({"entity_id": eid()}).sort("_id", 1).limit(51))),
                ("actor eq, sort _id desc, $lt cursor, limit 51",
                 lambda: list(coll.find({"actor": rnd.choice(ACTORS), "_id": {"$lt": mid}}).sort("_id", -1).limit(51))),
                ("{} sort _id, limit 51",
                 lambda: list(coll.find({}).sort("_id", 1).limit(51))),
                ("_id $gt middle, sort _id, limit 51",
                 lambda: list(coll.find({"_id": {"$gt": mid}}).sort("_id", 1).limit(51))),
                ("at range (1 day), sort _id, limit 51",
                 lambda: list(coll.find({"at": {"$gte": "2026-01-10T00:00:00Z", "$lt": "2026-01-11T00:00:00Z"}})
                              .sort("_id", 1).limit(51))),
                ("at range (1 day), count",
                 lambda: coll.count_documents({"at": {"$gte": "2026-01-10T00:00:00Z", "$lt": "2026-01-11T00:00:00Z"}})),
                ("count_documents({})", lambda: coll.count_documents({})),
                ("count_documents(entity_id eq)", lambda: coll.count_documents({"entity_id": eid()})),
                ("count_documents(actor eq)", lambda: coll.count_documents({"actor": rnd.choice(ACTORS)})),
            ]
            for name, fn in ops:
                times = []
                err = None
                deadline = time.monotonic() + args.seconds
                for _ in range(args.reps):
                    t = time.monotonic()
                    try:
                        fn()
                    except Exception as e:  # noqa: BLE001
                        err = f"{type(e).__name__}: {str(e)[:80]}"
                        break
                    times.append(time.monotonic() - t)
                    if time.monotonic() > deadline:
                        break
                row[name] = "FAIL (" + err + ")" if err else sum(times) / len(times) * 1000
                print(f"  n={n:>6} {name:<45} " + (row[name] if err else f"{row[name]:9.2f} ms  ({len(times)} runs)"),
                      flush=True)
                if db.proc.poll() is not None:
                    raise RuntimeError("the JVM exited")
            row["RSS MiB"] = (db.rss_kb() or 0) / 1024
            row["peak RSS MiB"] = (db.rss_kb("VmHWM") or 0) / 1024
            print(f"  n={n:>6} insert {ins:.0f} docs/s; RSS {row['RSS MiB']:.0f} MiB, peak {row['peak RSS MiB']:.0f} MiB",
                  flush=True)
            rows.append(row)
    finally:
        client.close()
        db.stop(signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)

    # markdown table: operations down, sizes across
    names = [k for k in rows[0] if k != "n"] if rows else []
    print("\n| operation (ms, mean) | " + " | ".join(f"{r['n']:,}" for r in rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for k in names:
        cells = []
        for r in rows:
            v = r.get(k, "")
            cells.append(v if isinstance(v, str) else (f"{v:.0f}" if v >= 100 else f"{v:.2f}"))
        print(f"| {k} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
