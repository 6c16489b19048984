"""The process harness of the subreg black-box API tests: embedded database and
`subreg serve` processes, the signing keys and the token minter, and the database +
subreg pair (`Stack`, `own_stack`). conftest.py builds its fixtures from these;
a test module that needs a stack of its own, or the issuer and audience the
service is configured with, imports them from here (never from conftest).

Process output goes to tests/api/.out/run-<timestamp>-<pid>/ (git-ignored).
Every service process is stopped with SIGTERM by PID and must exit 0 with no
AddressSanitizer / LeakSanitizer / UBSan report on its stderr.
"""

import atexit
import datetime as _dt
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from helpers import Api
from ports import free_port

HERE = Path(__file__).resolve().parent
OUT_ROOT = HERE / ".out"
RUN_DIR = OUT_ROOT / (
    "run-" + _dt.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
)

ISSUER = "https://issuer.test"
AUDIENCE = "subreg-api"
LEEWAY = 60
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

DEFAULT = object()

_live_procs = []  # safety net: (Popen) killed by PID at interpreter exit


@atexit.register
def _kill_leftovers():
    for proc in _live_procs:
        if proc.poll() is None:
            try:
                proc.kill()
                proc.wait(5)
            except Exception:
                pass


# ---------------------------------------------------------------------------
# small utilities


def tcp_ready(port, timeout=0.3):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path, n=60):
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no output file)"
    return "\n".join(lines[-n:])


def _terminate(proc, timeout):
    """SIGTERM by PID and wait; a process still running after `timeout` is
    killed. True when it exited by itself."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        return False


def run_bounded(cmd, timeout):
    """Run a tool in a process group of its own; (exit code, stdout, stderr) as
    bytes. On a timeout the whole group (a browser's or LibreOffice's helper
    processes too) is killed by its id and the test fails."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{Path(cmd[0]).name} did not finish within {timeout}s: {' '.join(cmd)}")
    return proc.returncode, out, err


def prune_old_runs(keep=5, min_age_s=1800):
    """Keep the newest `keep` run dirs; never touch one younger than min_age_s
    (another suite run may be using it right now)."""
    if not OUT_ROOT.is_dir():
        return
    runs = sorted(p for p in OUT_ROOT.iterdir() if p.is_dir() and p.name.startswith("run-"))
    for old in runs[:-keep]:
        try:
            if time.time() - old.stat().st_mtime > min_age_s:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass


# The embedded database the suite runs on (scripts/lib.sh): mongo-java-server (the
# launcher jar in MJS_JAR, built by scripts/mongo-java-server-build) by default,
# FerretDB (FERRETDB_BIN) with SUBREG_EMBEDDED_DB=ferretdb.
EMBEDDED_DB = os.environ.get("SUBREG_EMBEDDED_DB", "mongo-java-server")
DB_BINARY_VAR = {"mongo-java-server": "MJS_JAR", "ferretdb": "FERRETDB_BIN"}
MJS_JAVA_OPTS = os.environ.get("SUBREG_MJS_JAVA_OPTS", "-Xmx256m -XX:+UseSerialGC").split()  # as scripts/lib.sh


def require_binaries():
    if EMBEDDED_DB not in DB_BINARY_VAR:
        pytest.exit(f"SUBREG_EMBEDDED_DB must be one of {sorted(DB_BINARY_VAR)}", returncode=3)
    missing = []
    for var in ("SUBREG_BIN", DB_BINARY_VAR[EMBEDDED_DB]):
        val = os.environ.get(var)
        if not val:
            missing.append(f"{var} is not set")
        elif not os.path.isfile(val) or (var != "MJS_JAR" and not os.access(val, os.X_OK)):
            missing.append(f"{var}={val!r} is not an executable file")
    if missing:
        pytest.exit(
            f"subreg API tests need SUBREG_BIN (the subreg binary) and {DB_BINARY_VAR[EMBEDDED_DB]} "
            f"({EMBEDDED_DB}): " + "; ".join(missing),
            returncode=3,
        )
    return os.environ["SUBREG_BIN"], os.environ[DB_BINARY_VAR[EMBEDDED_DB]]


# ---------------------------------------------------------------------------
# keys and tokens


def _pem_public(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Keys:
    """Signing material: the configured keys and some foreign ones for attacks."""

    def __init__(self, directory):
        directory.mkdir(parents=True, exist_ok=True)
        self.hs256_secret = secrets.token_urlsafe(36)  # 48 characters
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa_public_pem = _pem_public(self.rsa)
        self.ec_public_pem = _pem_public(self.ec)
        self.rsa_pub_path = directory / "rsa.pub.pem"
        self.ec_pub_path = directory / "ec.pub.pem"
        self.rsa_pub_path.write_bytes(self.rsa_public_pem)
        self.ec_pub_path.write_bytes(self.ec_public_pem)

    @property
    def public_keys_env(self):
        return f"rsa1={self.rsa_pub_path},ec1={self.ec_pub_path}"


class Tokens:
    """Mint JWTs with PyJWT.

    tokens(sub, roles, alg, exp_delta, nbf, iss, aud, kid, iat, key, extra, headers)
      roles=None omits the claim; exp_delta=None omits exp; nbf is seconds relative
      to now (None omits); iss/aud/kid/iat=None omit them, DEFAULT uses the configured
      value (kid: rsa1 for RS256, ec1 for ES256, none for HS256); key overrides the
      signing key; extra adds/overrides claims.
    """

    def __init__(self, keys, issuer=ISSUER, audience=AUDIENCE):
        self.keys = keys
        self.issuer = issuer
        self.audience = audience

    def payload(self, sub="alice", roles=("admin",), exp_delta=300, nbf=None,
                iss=DEFAULT, aud=DEFAULT, iat=DEFAULT, extra=None):
        now = int(time.time())
        claims = {}
        if sub is not None:
            claims["sub"] = sub
        if roles is not None:
            claims["roles"] = list(roles) if isinstance(roles, (list, tuple)) else roles
        if exp_delta is not None:
            claims["exp"] = now + exp_delta
        if nbf is not None:
            claims["nbf"] = now + nbf
        if iat is DEFAULT:
            claims["iat"] = now
        elif iat is not None:
            claims["iat"] = iat
        if iss is DEFAULT:
            claims["iss"] = self.issuer
        elif iss is not None:
            claims["iss"] = iss
        if aud is DEFAULT:
            claims["aud"] = self.audience
        elif aud is not None:
            claims["aud"] = aud
        if extra:
            claims.update(extra)
        return claims

    def signing_key(self, alg):
        if alg.startswith("HS"):
            return self.keys.hs256_secret
        if alg.startswith("RS") or alg.startswith("PS"):
            return self.keys.rsa
        if alg.startswith("ES"):
            return self.keys.ec
        raise ValueError(alg)

    def __call__(self, sub="alice", roles=("admin",), alg="HS256", exp_delta=300,
                 nbf=None, iss=DEFAULT, aud=DEFAULT, kid=DEFAULT, iat=DEFAULT,
                 key=None, extra=None, headers=None):
        claims = self.payload(sub=sub, roles=roles, exp_delta=exp_delta, nbf=nbf,
                              iss=iss, aud=aud, iat=iat, extra=extra)
        hdrs = dict(headers or {})
        if kid is DEFAULT:
            kid = {"RS256": "rsa1", "ES256": "ec1"}.get(alg)
        if kid is not None:
            hdrs["kid"] = kid
        return jwt.encode(claims, key if key is not None else self.signing_key(alg),
                          algorithm=alg, headers=hdrs or None)

    def auth(self, **kw):
        return {"Authorization": f"Bearer {self(**kw)}"}


# ---------------------------------------------------------------------------
# processes


class EmbeddedDB:
    """One embedded database process (EMBEDDED_DB) with its own data dir; can be
    stopped (or frozen) and restarted on the same port and data dir."""

    def __init__(self, binary, workdir, name):
        self.binary = binary
        self.name = name
        self.data_dir = workdir / f"{name}-data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = workdir
        self.port = free_port()
        self.proc = None
        self.starts = 0

    @property
    def uri(self):
        return f"mongodb://127.0.0.1:{self.port}/?serverSelectionTimeoutMS=1500"

    def start(self, timeout=20):
        assert self.proc is None or self.proc.poll() is not None, f"{EMBEDDED_DB} already running"
        self.starts += 1
        log = open(self.log_dir / f"{self.name}.{self.starts}.log", "wb")
        if EMBEDDED_DB == "mongo-java-server":  # self.binary is the launcher jar
            argv = ["java", *MJS_JAVA_OPTS, "-jar", self.binary,
                    f"--listen-addr=127.0.0.1:{self.port}",
                    f"--data-file={self.data_dir}/subreg.mv.db"]
        else:
            argv = [self.binary, f"--listen-addr=127.0.0.1:{self.port}",
                    f"--sqlite-url=file:{self.data_dir}/", "--log-level=warn"]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _live_procs.append(self.proc)
        deadline = time.monotonic() + timeout
        while not tcp_ready(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{EMBEDDED_DB} exited with {self.proc.returncode} on start:\n"
                    + tail(self.log_dir / f"{self.name}.{self.starts}.log"))
            if time.monotonic() > deadline:
                raise RuntimeError(f"{EMBEDDED_DB} did not listen on port {self.port} in {timeout}s")
            time.sleep(0.05)

    def stop(self, timeout=15):
        if self.proc is None or self.proc.poll() is not None:
            return
        _terminate(self.proc, timeout)
        # make sure the port is really closed before anyone relies on the outage
        deadline = time.monotonic() + 5
        while tcp_ready(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)


class Server:
    """One `subreg serve` process bound to an embedded database instance."""

    def __init__(self, binary, db, keys, tokens, workdir, name, extra_env=None):
        self.binary = binary
        self.db = db
        self.keys = keys
        self.tokens = tokens
        self.workdir = workdir
        self.name = name
        self.port = free_port()
        self.base_extra_env = dict(extra_env or {})
        self.proc = None
        self.starts = 0
        self.stderr_path = None
        self.stdout_path = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def env(self, extra_env=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUBREG_")}
        env.update({
            "SUBREG_LISTEN": f"127.0.0.1:{self.port}",
            "SUBREG_MONGODB_URI": self.db.uri,
            "SUBREG_MONGODB_DB": "subreg_test",
            "SUBREG_JWT_ALGORITHMS": "HS256,RS256,ES256",
            "SUBREG_JWT_HS256_SECRET": self.keys.hs256_secret,
            "SUBREG_JWT_PUBLIC_KEYS": self.keys.public_keys_env,
            "SUBREG_JWT_ISSUER": ISSUER,
            "SUBREG_JWT_AUDIENCE": AUDIENCE,
            "SUBREG_RELAY_INTERVAL_MS": "300",
            # Interrupted writes are settled after this lease (the crash tests wait for it).
            "SUBREG_CLAIM_LEASE_MS": "1500",
            "SUBREG_PUBLISH_POLL_MS": "200",
            # The public rate limit is tested on its own server; everything else is exempt.
            "SUBREG_RATE_LIMIT_EXEMPT": "127.0.0.0/8",
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        })
        env.update(self.base_extra_env)
        env.update(extra_env or {})
        return {k: v for k, v in env.items() if v is not None}  # None removes a variable

    def migrate(self):
        out = self.workdir / f"{self.name}.migrate.log"
        with open(out, "wb") as fh:
            res = subprocess.run([self.binary, "migrate"], stdin=subprocess.DEVNULL,
                                 env=self.env({"SUBREG_TEST_FAULT": None}),
                                 stdout=fh, stderr=subprocess.STDOUT, timeout=120)
        text = out.read_text(errors="replace")
        assert res.returncode == 0, f"`subreg migrate` exited {res.returncode}:\n{text[-4000:]}"
        bad = [ln for ln in text.splitlines() if any(m in ln for m in SANITIZER_MARKERS)]
        assert not bad, f"sanitizer report from `subreg migrate`:\n{text[-4000:]}"

    def start(self, extra_env=None, timeout=45):
        assert self.proc is None or self.proc.poll() is not None, "service already running"
        self.starts += 1
        self.stdout_path = self.workdir / f"{self.name}.serve.{self.starts}.stdout"
        self.stderr_path = self.workdir / f"{self.name}.serve.{self.starts}.stderr"
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([self.binary, "serve"], env=self.env(extra_env),
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     start_new_session=True)
        out.close()
        err.close()
        _live_procs.append(self.proc)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"subreg serve exited with {self.proc.returncode} during start-up; stderr:\n"
                    + tail(self.stderr_path))
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"subreg serve: GET /healthz not 200 within {timeout}s; stderr:\n"
                                   + tail(self.stderr_path))
            time.sleep(0.1)

    def sanitizer_reports(self):
        if self.stderr_path is None or not self.stderr_path.exists():
            return []
        return [ln for ln in self.stderr_path.read_text(errors="replace").splitlines()
                if any(m in ln for m in SANITIZER_MARKERS)]

    def wait_exit(self, timeout=20):
        """Wait for the process to exit by itself; return its exit code."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"subreg serve did not exit within {timeout}s")

    def stop(self, expected_rc=0, timeout=20):
        """SIGTERM by PID, wait, then check the exit code and the sanitizer output."""
        if self.proc is None:
            return None
        if self.proc.poll() is None and not _terminate(self.proc, timeout):
            raise AssertionError(
                f"subreg serve ({self.name}) did not exit within {timeout}s of SIGTERM; "
                f"killed. stderr tail:\n{tail(self.stderr_path)}")
        rc = self.proc.returncode
        bad = self.sanitizer_reports()
        assert not bad, (
            f"SANITIZER REPORT from subreg serve ({self.name}), see {self.stderr_path}:\n"
            + "\n".join(bad[:20]) + "\n--- stderr tail ---\n" + tail(self.stderr_path, 120))
        if expected_rc is not None:
            assert rc == expected_rc, (
                f"subreg serve ({self.name}) exited with {rc}, expected {expected_rc}; "
                f"stderr tail:\n{tail(self.stderr_path)}")
        return rc

    def restart(self, extra_env=None, expected_rc=0):
        """Stop (expecting `expected_rc`; a process that already exited is just
        checked) and start again with the same env plus `extra_env`."""
        self.stop(expected_rc=expected_rc)
        self.start(extra_env=extra_env)

    # -- clients -------------------------------------------------------------
    def api(self, roles=("admin",), sub="alice", **token_kw):
        return Api(self.url, token=self.tokens(sub=sub, roles=roles, **token_kw))

    def anon(self):
        return Api(self.url)


class Stack:
    """Database + subreg pair; `make_server` and the session fixture build these.
    With `shared_db` the stack runs another subreg on an existing database (and
    leaves that database alone on teardown)."""

    def __init__(self, subreg_bin, db_bin, keys, tokens, name, extra_env=None,
                 shared_db=None):
        self.workdir = RUN_DIR / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.owns_db = shared_db is None
        self.db = EmbeddedDB(db_bin, self.workdir, "db") if self.owns_db else shared_db
        self.server = Server(subreg_bin, self.db, keys, tokens, self.workdir, "subreg",
                             extra_env=extra_env)

    def up(self):
        if self.owns_db:
            self.db.start()
        try:
            if self.owns_db:  # a shared database was migrated by its owner
                self.server.migrate()
            self.server.start()
        except BaseException:
            if self.owns_db:
                self.db.stop()
            raise
        return self.server

    def down(self):
        try:
            self.server.stop(expected_rc=0)
        finally:
            if self.owns_db:
                self.db.stop()


@contextlib.contextmanager
def own_stack(binaries, keys, tokens, name, extra_env=None):
    """A module's own database + subreg pair (for tests whose data is global to a
    database, e.g. publications); stopped with the exit-code and sanitizer checks."""
    stack = Stack(binaries[0], binaries[1], keys, tokens, name, extra_env=extra_env)
    stack.up()
    try:
        yield stack.server
    finally:
        stack.down()  # SIGTERM, exit 0, no sanitizer report


# ---------------------------------------------------------------------------
# Toxiproxy: TCP faults between the service and its database (test_faults.py)

TOXIPROXY_VERSION = "2.12.0"  # as scripts/lib.sh and tools/toxiproxy/go.mod


def toxiproxy_binary():
    """TOXIPROXY_BIN, or where scripts/bootstrap builds it."""
    path = os.environ.get("TOXIPROXY_BIN") or os.path.expanduser(
        f"~/.cache/subreg/toxiproxy-{TOXIPROXY_VERSION}/toxiproxy-server")
    if not os.access(path, os.X_OK):
        pytest.fail(f"Toxiproxy not found at {path}: run scripts/bootstrap (or set TOXIPROXY_BIN)",
                    pytrace=False)
    return path


class Toxiproxy:
    """A toxiproxy-server process (its HTTP API on a free loopback port) with
    one proxy per upstream; toxics are added and removed through the API."""

    def __init__(self, binary, workdir):
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        log = open(workdir / "toxiproxy.log", "wb")
        self.proc = subprocess.Popen([binary, "-host", "127.0.0.1", "-port", str(self.api_port)],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        _live_procs.append(self.proc)
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(self.api + "/version", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"toxiproxy-server did not start:\n{tail(workdir / 'toxiproxy.log')}")
            time.sleep(0.05)

    def proxy(self, name, upstream_port):
        """A proxy to 127.0.0.1:upstream_port; returns the port it listens on."""
        port = free_port()
        resp = requests.post(self.api + "/proxies", timeout=5, json={
            "name": name, "listen": f"127.0.0.1:{port}", "upstream": f"127.0.0.1:{upstream_port}",
            "enabled": True})
        assert resp.status_code == 201, resp.text
        return port

    def add_toxic(self, proxy, name, kind, stream="downstream", **attributes):
        resp = requests.post(f"{self.api}/proxies/{proxy}/toxics", timeout=5, json={
            "name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attributes})
        assert resp.status_code == 200, resp.text

    def remove_toxic(self, proxy, name):
        resp = requests.delete(f"{self.api}/proxies/{proxy}/toxics/{name}", timeout=5)
        assert resp.status_code == 204, resp.text

    def stop(self):
        _terminate(self.proc, 10)
