#!/usr/bin/env python3
"""Which embedded database for tests and `make run`: throughput of the operations
subreg's store does, measured against each candidate with a fresh data dir.

  ~/.cache/subreg/venv/bin/python bench/embedded-db/probe.py [--seconds 5] [--threads 8]
      [--only ferretdb|mongo-java-server] [--fsync]

Candidates: FerretDB 1.24.2 on SQLite (scripts/bootstrap builds it) and
mongo-java-server on H2 MVStore through tools/mongo-java-server
(scripts/mongo-java-server-build builds it). Each operation runs for --seconds
with --threads client threads, at a collection history of 10^3 and then 2*10^4
audit-shaped (~1 KB) documents. Prints ops/s per operation, start-up time, RSS
(idle, peak under the probe) and the data size.
"""

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymongo

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SUBREG_CACHE", Path.home() / ".cache/subreg"))
sys.path.insert(0, str(ROOT / "tests/api"))
from ports import free_port  # noqa: E402

FERRETDB_BIN = CACHE / "ferretdb-1.24.2/ferretdb"
TYPES = ["subprocessor", "document", "notice", "subscription"]
ACTORS = [f"user-{i}" for i in range(10)]
ACTIONS = ["create", "update", "delete", "publish", "archive"]


# ---------------------------------------------------------------------------
# candidates


class Candidate:
    name = "?"

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.proc = None
        self.start_s = None

    def argv(self):
        raise NotImplementedError

    def start(self):
        log = open(self.workdir / f"{self.name}.log", "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        client = None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.workdir}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=2000)
                client.admin.command("ping")
                break
            except (OSError, pymongo.errors.PyMongoError):
                if client is not None:
                    client.close()
                    client = None
                if time.monotonic() - t0 > 60:
                    raise RuntimeError(f"{self.name} did not answer ping in 60 s")
                time.sleep(0.02)
        client.close()
        self.start_s = time.monotonic() - t0

    @property
    def uri(self):
        return f"mongodb://127.0.0.1:{self.port}/?serverSelectionTimeoutMS=3000&maxPoolSize=32"

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rss_kb(self, field="VmRSS"):
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        except OSError:
            pass
        return None

    def data_bytes(self):
        return sum(p.stat().st_size for p in self.data_dir.rglob("*") if p.is_file())


class FerretDB(Candidate):
    name = "ferretdb-sqlite"

    def __init__(self, workdir, binary=FERRETDB_BIN):
        super().__init__(workdir)
        self.binary = str(binary)
        self.data_dir = self.workdir / "ferretdb-data"
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def argv(self):
        return [self.binary, f"--listen-addr=127.0.0.1:{self.port}",
                f"--sqlite-url=file:{self.data_dir}/", "--log-level=warn"]


class MongoJavaServer(Candidate):
    name = "mongo-java-server-h2"

    def __init__(self, workdir, jar, fsync=False):
        super().__init__(workdir)
        self.jar = str(jar)
        self.fsync = fsync
        self.data_dir = self.workdir / "mjs-data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if fsync:
            self.name += "+fsync"

    def argv(self):
        java_opts = os.environ.get("MJS_JAVA_OPTS", "").split()  # e.g. -Xmx256m
        extra = os.environ.get("MJS_ARGS", "").split()  # e.g. --commit=auto
        return (["java", *java_opts, "-jar", self.jar, f"--listen-addr=127.0.0.1:{self.port}",
                 f"--data-file={self.data_dir}/subreg.mv.db"] + (["--fsync"] if self.fsync else [])
                + extra)


def mjs_jar():
    jar = os.environ.get("MJS_JAR")
    if jar:
        return jar
    out = subprocess.run([str(ROOT / "scripts/mongo-java-server-build")], check=True,
                         stdout=subprocess.PIPE, text=True)
    return out.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------------------
# workload


_seq = [0]
_seq_lock = threading.Lock()


def new_id():
    with _seq_lock:
        _seq[0] += 1
        n = _seq[0]
    # time-ordered like the service's ids
    return f"aud_{n:010d}{random.getrandbits(32):08x}"


PAD = "x" * 420
N_ENTITIES = 5000


def audit_doc(_id=None, etype=None, entity_version=None):
    """An audit-shaped document (~1 KB); random where not given."""
    etype = etype or random.choice(TYPES)
    return {
        "_id": _id or new_id(),
        "entity_type": etype,
        "entity_id": f"{etype[:3]}_{random.randrange(N_ENTITIES):06d}",
        "entity_version": entity_version or random.randrange(1, 50),
        "version": 1,
        "actor": random.choice(ACTORS),
        "action": random.choice(ACTIONS),
        "at": "2026-01-%02dT%02d:%02d:%02dZ" % (random.randrange(1, 29), random.randrange(24),
                                                 random.randrange(60), random.randrange(60)),
        "request_id": "%032x" % random.getrandbits(128),
        "remote_addr": "10.0.%d.%d" % (random.randrange(256), random.randrange(256)),
        "user_agent": "subreg-client/1.0 (probe)",
        "before": {"name": "Acme Hosting GmbH", "country": "DE", "purpose": "hosting",
                   "status": "active", "notes": PAD[:150]},
        "after": {"name": "Acme Hosting GmbH", "country": "IE", "purpose": "hosting",
                  "status": "active", "notes": PAD[:150]},
    }


def run_threads(fn, seconds, threads):
    """Runs fn(rng, state) in `threads` threads for `seconds`; returns ops/s.
    fn returns False to stop its thread early (nothing left to do)."""
    counts = [0] * threads
    errors = []
    stop_at = time.monotonic() + seconds

    def worker(i):
        rng = random.Random(i * 7919 + int(time.time()))
        n = 0
        try:
            while time.monotonic() < stop_at:
                if fn(rng) is False:
                    break
                n += 1
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e)[:300])
        counts[i] = n

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.monotonic() - t0
    if errors:
        print(f"    errors: {errors[:3]}", file=sys.stderr)
    return sum(counts) / elapsed


def grow_to(coll, ids, target):
    while len(ids) < target:
        batch = [audit_doc() for _ in range(min(500, target - len(ids)))]
        coll.insert_many(batch, ordered=False)
        ids.extend(d["_id"] for d in batch)


def measure(cand, seconds, threads, histories, rss_peak):
    client = pymongo.MongoClient(cand.uri)
    db = client.probe
    coll = db.audit
    coll.drop()
    # the service's audit indexes (mongo-java-server uses only the unique one)
    coll.create_index([("entity_type", 1), ("entity_id", 1), ("entity_version", 1)], name="claim",
                      unique=False)
    coll.create_index("entity_id")
    coll.create_index("actor")
    coll.create_index("at")
    coll.create_index("_state")
    ids = []
    versions = {}
    vlock = threading.Lock()
    results = {}
    for hist in histories:
        t0 = time.monotonic()
        grow_to(coll, ids, hist)
        print(f"  [{cand.name}] history {hist}: loaded in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        base = list(ids)  # the history the reads/updates pick from
        r = {}

        def find(rng):
            assert coll.find_one({"_id": rng.choice(base)}) is not None

        def update(rng):
            coll.update_one({"_id": rng.choice(base)}, {"$set": {"_state": "committed",
                                                                  "at": "2026-02-01T00:00:00Z"}})

        def replace(rng):
            _id = rng.choice(base)
            with vlock:
                v = versions.get(_id, 1)
            doc = audit_doc(_id)
            doc["version"] = v + 1
            res = coll.replace_one({"_id": _id, "version": v}, doc)
            if res.matched_count == 1:
                with vlock:
                    if versions.get(_id, 1) == v:
                        versions[_id] = v + 1

        def list50(rng):
            docs = list(coll.find({"actor": rng.choice(ACTORS)}).sort("_id", 1).limit(51))
            assert len(docs) == 51

        def count(rng):
            coll.count_documents({"entity_type": rng.choice(TYPES)})

        def range50(rng):
            start = rng.choice(base[: max(1, len(base) - 100)])
            docs = list(coll.find({"_id": {"$gt": start}}).sort("_id", 1).limit(50))
            assert len(docs) == 50

        inserted = []
        ins_lock = threading.Lock()

        def insert(rng):
            d = audit_doc()
            coll.insert_one(d)
            with ins_lock:
                inserted.append(d["_id"])

        def delete(rng):
            with ins_lock:
                if not inserted:
                    return False
                _id = inserted.pop()
            assert coll.delete_one({"_id": _id}).deleted_count == 1

        for name, fn in [("find by _id", find), ("update by _id ($set)", update),
                         ("replace by _id+version", replace), ("list 50 (eq, sort _id, limit 51)", list50),
                         ("count (filter)", count), ("_id range ($gt, sort, limit 50)", range50),
                         ("insert", insert), ("delete by _id", delete)]:
            ops = run_threads(fn, seconds, threads)
            rss = cand.rss_kb()
            if rss:
                rss_peak[0] = max(rss_peak[0], rss)
            r[name] = ops
            print(f"  [{cand.name}] {hist:>6} {name:34s} {ops:9.0f} ops/s", file=sys.stderr)
        results[hist] = r
        # deletes may not have removed all inserts: keep the history at its size
        if inserted:
            coll.delete_many({"_id": {"$in": inserted}})
    client.close()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--only", choices=["ferretdb", "mongo-java-server"])
    ap.add_argument("--fsync", action="store_true", help="also mongo-java-server with --fsync")
    ap.add_argument("--histories", default="1000,20000")
    args = ap.parse_args()
    histories = [int(h) for h in args.histories.split(",")]

    work = Path(tempfile.mkdtemp(prefix="embedded-db-probe-"))
    cands = []
    if args.only in (None, "ferretdb"):
        cands.append(FerretDB(work / "ferretdb"))
    if args.only in (None, "mongo-java-server"):
        jar = mjs_jar()
        cands.append(MongoJavaServer(work / "mjs", jar))
        if args.fsync:
            cands.append(MongoJavaServer(work / "mjs-fsync", jar, fsync=True))
    for c in cands:
        c.workdir.mkdir(parents=True, exist_ok=True)

    table = {}
    meta = {}
    try:
        for c in cands:
            c.start()
            time.sleep(2)
            idle = c.rss_kb()
            peak = [idle or 0]
            res = measure(c, args.seconds, args.threads, histories, peak)
            hwm = c.rss_kb("VmHWM")
            size = c.data_bytes()
            c.stop()
            table[c.name] = res
            meta[c.name] = dict(start=c.start_s, idle=idle, peak=max(peak[0], hwm or 0), size=size)
    finally:
        for c in cands:
            c.stop(signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)

    names = list(table)
    ops = list(next(iter(table.values()))[histories[0]])
    print(f"\nops/s, {args.threads} threads, {args.seconds:g} s each, audit-shaped ~1 KB documents\n")
    header = f"| {'operation':34s} |" + "".join(
        f" {n[:22] + ' @' + str(h):>30s} |" for n in names for h in histories)
    print(header)
    print("|" + "-" * 36 + "|" + "|".join("-" * 32 for _ in names for _ in histories) + "|")
    for op in ops:
        print(f"| {op:34s} |" + "".join(f" {table[n][h][op]:30.0f} |" for n in names for h in histories))
    print()
    for n in names:
        m = meta[n]
        print(f"{n}: ready (ping answered) {m['start']:.2f}s after exec; RSS idle {m['idle'] / 1024:.0f} MiB, "
              f"peak {m['peak'] / 1024:.0f} MiB; data on disk after the probe {m['size'] / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
