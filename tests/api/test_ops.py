"""Operational endpoints and behaviour during a database outage."""

import json
import os
import signal
import socket
import threading
import time

import requests

from helpers import assert_problem, assert_status, media_type, sp_body, unique_name, wait_until

SP = "/v1/subprocessors"


def test_healthz(server):
    resp = requests.get(server.url + "/healthz", timeout=10)
    assert_status(resp, 200)
    assert media_type(resp) == "application/json"
    assert resp.json() == {"status": "ok"}


def test_readyz(server):
    resp = requests.get(server.url + "/readyz", timeout=10)
    assert_status(resp, 200)
    assert media_type(resp) == "application/json"
    assert resp.json() == {"status": "ready"}


def test_metrics(server, admin):
    admin.get(SP)  # at least one API request has been served
    resp = requests.get(server.url + "/metrics", timeout=10)
    assert_status(resp, 200)
    assert media_type(resp) == "text/plain", resp.headers.get("Content-Type")
    assert "subreg_" in resp.text
    # Prometheus text format: every sample line is "<name>[{labels}] <value>"
    for line in resp.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            assert name, line
            float(value)
    # the gauge does not count the /metrics request itself, and it returns to 0
    # once the shared server has finished what earlier tests left in flight (a
    # client that stalls mid-body holds its request until civetweb's 30 s timeout)
    wait_until(lambda: "\nsubreg_http_requests_in_flight 0\n" in requests.get(server.url + "/metrics", timeout=10).text,
               45, message="subreg_http_requests_in_flight 0")  # request_timeout_ms is 30 s


def test_openapi(server):
    resp = requests.get(server.url + "/openapi.yaml", timeout=10)
    assert_status(resp, 200)
    assert "yaml" in media_type(resp), resp.headers.get("Content-Type")
    assert resp.text.startswith("openapi:"), resp.text[:200]
    assert "/v1/subprocessors" in resp.text


def test_ops_endpoints_have_request_id(server):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.yaml"):
        resp = requests.get(server.url + path, headers={"X-Request-Id": "ops-check-1"}, timeout=10)
        assert resp.headers.get("X-Request-Id") == "ops-check-1", path


def test_database_outage_and_recovery(make_server):
    srv = make_server()
    api = srv.api(roles=["admin"], sub="ops")
    pid = srv.proc.pid
    before = api.create_sp(sp_body(legal_name=unique_name("Before outage")))

    srv.db.stop()

    def not_ready():
        resp = requests.get(srv.url + "/readyz", timeout=10)
        return resp if resp.status_code == 503 else None

    resp = wait_until(not_ready, 10, message="/readyz 503 while the database is down")
    assert_problem(resp, 503, "service-unavailable")
    assert "\nsubreg_ready 0\n" in requests.get(srv.url + "/metrics", timeout=10).text

    assert_status(requests.get(srv.url + "/healthz", timeout=10), 200)

    failed_name = unique_name("During outage")
    t0 = time.monotonic()
    resp = api.post(SP, sp_body(legal_name=failed_name), timeout=20)
    assert_problem(resp, 503, "service-unavailable")
    assert resp.headers.get("Retry-After") == "5", resp.headers.get("Retry-After")
    assert time.monotonic() - t0 < 15, "the failed write took too long"

    resp = api.get(SP, timeout=20)
    assert_problem(resp, 503, "service-unavailable")
    assert resp.headers.get("Retry-After") == "5"

    assert_status(requests.get(srv.url + "/healthz", timeout=10), 200)

    srv.db.start()

    def ready():
        resp = requests.get(srv.url + "/readyz", timeout=10)
        return resp if resp.status_code == 200 else None

    resp = wait_until(ready, 30, interval=0.5, message="/readyz 200 after the database is back")
    assert "\nsubreg_ready 1\n" in requests.get(srv.url + "/metrics", timeout=10).text
    assert resp.json() == {"status": "ready"}
    assert srv.proc.poll() is None and srv.proc.pid == pid, "subreg restarted"

    after = api.create_sp(sp_body(legal_name=unique_name("After outage")))
    items, _ = api.list_all()
    assert [it["id"] for it in items] == [before["id"], after["id"]], (
        "only the successful writes may be stored: "
        + repr([it["legal_name"] for it in items]))
    assert failed_name not in [it["legal_name"] for it in items]

    # the audit relay works again too
    def audited():
        got, _ = api.list_all("/v1/audit", actor="ops")
        return got if len(got) >= 2 else None

    entries = wait_until(audited, 10, message="audit entries after recovery")
    assert [e["entity_id"] for e in entries] == [before["id"], after["id"]]


def test_readyz_503_has_retry_after(make_server):
    srv = make_server()
    srv.db.stop()
    try:
        resp = wait_until(lambda: (lambda r: r if r.status_code == 503 else None)(
            requests.get(srv.url + "/readyz", timeout=10)), 10, message="/readyz 503")
        assert_problem(resp, 503, "service-unavailable")
        assert resp.headers.get("Retry-After") == "5"
    finally:
        srv.db.start()


def test_readyz_answers_within_a_second_while_the_database_is_frozen(make_server):
    """A frozen database (SIGSTOP: connections open, no answer) holds a ping until the
    socket timeout; /readyz answers at once from the prober's last result (a ping a
    second, stale after 2.5 s): 503 within 3.5 s of the freeze, 200 again soon after."""
    srv = make_server()
    assert_status(requests.get(srv.url + "/readyz", timeout=10), 200)
    os.kill(srv.db.proc.pid, signal.SIGSTOP)
    try:
        t_freeze, slowest, first_503 = time.monotonic(), 0.0, None
        while time.monotonic() - t_freeze < 6:
            t0 = time.monotonic()
            resp = requests.get(srv.url + "/readyz", timeout=10)
            slowest = max(slowest, time.monotonic() - t0)
            if resp.status_code == 503 and first_503 is None:
                first_503 = time.monotonic() - t_freeze
                assert_problem(resp, 503, "service-unavailable")
                assert resp.headers.get("Retry-After") == "5"
            time.sleep(0.2)
    finally:
        os.kill(srv.db.proc.pid, signal.SIGCONT)
    assert first_503 is not None and first_503 < 4.0, first_503
    assert slowest < 1.0, f"/readyz took {slowest:.2f} s"
    wait_until(lambda: requests.get(srv.url + "/readyz", timeout=10).status_code == 200, 15,
               message="/readyz 200 after the freeze")


def test_migrate_is_idempotent(server):
    """`subreg migrate` again on a migrated database (as on every deploy) exits 0,
    and the running service is unaffected."""
    for _ in range(2):
        server.migrate()
    assert_status(requests.get(server.url + "/readyz", timeout=10), 200)
    assert_status(server.api(roles=["reader"]).get(SP), 200)


def test_a_database_stall_mid_write_leaves_no_change_unaudited(make_server):
    """Writes that time out while the database is frozen (SIGSTOP, longer than the
    socket timeout) have an unknown outcome: the database may apply them after
    subreg gave up. Every change that ends up stored must still get its audit
    record, and every audit record must describe a stored change."""
    srv = make_server()
    # The lease must exceed how late the database can still apply a write
    # (docs/configuration.md, SUBREG_CLAIM_LEASE_MS): here the freezes (1.5 s) plus
    # the socket timeout. With the harness's 1.5 s lease the sweep could remove a
    # claim whose insert the database applied just after waking up.
    srv.restart(extra_env={"SUBREG_MONGODB_URI": srv.db.uri + "&socketTimeoutMS=800",
                           "SUBREG_CLAIM_LEASE_MS": "5000"})
    api = srv.api(roles=["admin"], sub="stall")
    stop, results = threading.Event(), []

    def writer(k):
        while not stop.is_set():
            try:
                r = api.post(SP, sp_body(legal_name=unique_name(f"Stall {k}")), timeout=30)
                results.append((r.status_code, r.json().get("id") if r.status_code == 201 else None))
            except requests.RequestException:
                results.append((None, None))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        for _ in range(3):
            os.kill(srv.db.proc.pid, signal.SIGSTOP)
            time.sleep(1.5)
            os.kill(srv.db.proc.pid, signal.SIGCONT)
            time.sleep(0.7)
    finally:
        os.kill(srv.db.proc.pid, signal.SIGCONT)
        stop.set()
        for t in threads:
            t.join(60)
    statuses = [st for st, _ in results]
    assert 503 in statuses and 201 in statuses, statuses

    def settled():
        # the recovery sweep settles pending claims after their lease (1.5 s here)
        items, _ = api.list_all()
        audit, _ = api.list_all("/v1/audit", entity_type="subprocessor", action="create")
        stored, audited = {it["id"] for it in items}, {a["entity_id"] for a in audit}
        return (stored, audited) if stored == audited else None

    stored, audited = wait_until(settled, 30, interval=0.5,
                                 message="every stored subprocessor audited, every audit record stored")
    assert {i for st, i in results if st == 201} <= stored


def test_sigterm_lets_requests_in_flight_finish(make_server):
    """On SIGTERM every request the service has started is answered in full — the
    writes in flight and the ones that follow on open connections with their 201
    (the later ones with Connection: close) — and a request whose body is still
    arriving is read to its end and handled."""
    srv = make_server()
    api = srv.api(roles=["admin"], sub="stopper")
    answered, stop = {}, threading.Event()

    def writer(k):
        n = 0
        while not stop.is_set():
            rid = f"stop-{k}-{n}"
            n += 1
            try:
                r = api.post(SP, sp_body(legal_name=unique_name(f"Stop {k}")), headers={"X-Request-Id": rid},
                             timeout=30)
                answered[rid] = r.status_code
            except requests.RequestException:
                pass  # a connection refused or closed before the request was read

    # a POST whose body is still on its way when the signal arrives
    body = json.dumps(sp_body(legal_name=unique_name("Slow upload"))).encode()
    slow = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    slow.sendall((f"POST {SP} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.token}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                  f"X-Request-Id: slow-upload\r\n\r\n").encode() + body[:20])
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    slow.sendall(body[20:])
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = slow.recv(65536)
        if not chunk:
            break
        reply += chunk
    slow.close()
    assert srv.wait_exit(30) == 0
    stop.set()
    for t in threads:
        t.join(30)
    assert reply.startswith(b"HTTP/1.1 201"), reply[:200]

    logged = {}
    for line in srv.stderr_path.read_text().splitlines():
        if line.startswith("{") and '"msg":"request"' in line:
            rec = json.loads(line)
            if rec["request_id"].startswith("stop-"):
                logged[rec["request_id"]] = rec["status"]
    assert any(st == 201 for st in logged.values())
    # every request the service handled reached its client, with the same status
    lost = {rid: st for rid, st in logged.items() if answered.get(rid) != st}
    assert not lost, f"handled but not received by the client: {lost}"
    assert set(answered.values()) == {201}, set(answered.values())


class _Lost(Exception):
    """A request that got no complete answer: kind is reset, eof (closed before
    any byte of the answer), truncated (part of it) or hung."""

    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind


def _post_head(token, length):
    return (f"POST {SP} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def _cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _exchange(sock, *parts):
    """One request on a raw socket, sent in parts 0.3 s apart; (status, the
    answer says Connection: close)."""
    try:
        for i, part in enumerate(parts):
            if i:
                time.sleep(0.3)
            sock.sendall(part)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise _Lost("truncated" if data else "eof")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip().lower() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        while len(body) < int(fields.get("content-length", "0")):
            chunk = sock.recv(65536)
            if not chunk:
                raise _Lost("truncated")
            body += chunk
        return int(lines[0].split()[1]), fields.get("connection") == "close"
    except (ConnectionResetError, BrokenPipeError):
        raise _Lost("reset") from None
    except socket.timeout:
        raise _Lost("hung") from None


def test_sigterm_under_load_answers_or_refuses_every_request(make_server):
    """Ten SIGTERMs under load (keep-alive clients writing, clients opening a
    connection per read, more connections than worker threads): every request
    on a connection the service accepted is answered in full, the connections
    it did not accept are refused (ECONNREFUSED) — never a reset, a connection
    closed without its answer, or a truncated answer."""
    srv = make_server(extra_env={"SUBREG_THREADS": "8"})
    token = srv.tokens(roles=["admin"], sub="stopper")
    body = json.dumps(sp_body(legal_name="Load")).encode()
    post = _post_head(token, len(body)) + body
    get = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    outcomes, lock = {}, threading.Lock()

    def client(request, keep_alive, deadline):
        """Requests until the service refuses the connection."""
        sock = None
        while time.monotonic() < deadline:
            if sock is None:
                try:
                    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                except ConnectionRefusedError:
                    kind = "refused"
                    break
                except ConnectionResetError:  # accepted by the kernel, then reset
                    kind = "reset (connecting)"
                    break
                reused = False
            try:
                status, closing = _exchange(sock, request)
                kind = status
            except _Lost as lost:
                kind = lost.kind + (" (reused connection)" if reused else "")
                closing = True
            with lock:
                outcomes[kind] = outcomes.get(kind, 0) + 1
            reused = True
            if closing or not keep_alive:
                sock.close()
                sock = None
        else:
            kind = "still running at the deadline"
        if sock is not None:
            sock.close()
        with lock:
            outcomes[kind] = outcomes.get(kind, 0) + 1

    rounds, writers, readers = 10, 6, 10
    for n in range(rounds):
        if n:
            srv.start()
        deadline = time.monotonic() + 20
        threads = [threading.Thread(target=client, args=(post, True, deadline)) for _ in range(writers)]
        threads += [threading.Thread(target=client, args=(get, False, deadline)) for _ in range(readers)]
        for t in threads:
            t.start()
        time.sleep(0.6)
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.wait_exit(30) == 0
        for t in threads:
            t.join(30)
        srv.stop()  # exited: the exit code and the sanitizer report checked
    answered = sum(v for k, v in outcomes.items() if isinstance(k, int))
    print(f"{answered} answered, outcomes {outcomes}")
    assert outcomes.get("refused") == rounds * (writers + readers), outcomes
    assert set(k for k in outcomes if k != "refused") <= {200, 201}, outcomes


def test_sigterm_stops_accepting_then_answers_the_open_connections(make_server):
    """SIGTERM while a request body is still arriving (which holds the stop):
    new connections are refused; a request on a keep-alive connection is
    answered as usual with Connection: close, and the service closes that
    connection; an answer given before the body was read (a 401) still lets
    the client send all of its body (read and dropped: no reset); the service
    waits without spinning; idle keep-alive connections end with a FIN soon
    after the last request (not at their keep-alive timeout, 20 s here)."""
    srv = make_server(extra_env={"SUBREG_KEEP_ALIVE_MS": "20000"})
    token = srv.tokens(roles=["admin"], sub="stopper")
    addr = ("127.0.0.1", srv.port)
    body = json.dumps(sp_body(legal_name=unique_name("Slow upload"))).encode()
    slow, kept, unauthorized, idle = [socket.create_connection(addr, timeout=10) for _ in range(4)]
    for sock in (kept, unauthorized, idle):
        assert _exchange(sock, HEALTHZ) == (200, False)
    slow.sendall(_post_head(token, len(body)) + body[:20])
    time.sleep(0.3)  # the request has begun
    srv.proc.send_signal(signal.SIGTERM)

    def refused():
        try:
            socket.create_connection(addr, timeout=5).close()
        except ConnectionRefusedError:
            return True
        return False

    wait_until(refused, 10, message="a new connection refused")
    cpu = _cpu_seconds(srv.proc.pid)
    time.sleep(1.0)
    cpu = _cpu_seconds(srv.proc.pid) - cpu
    assert cpu < 0.3, f"{cpu:.2f} s of CPU in 1 s of waiting for one request"

    assert _exchange(kept, HEALTHZ) == (200, True)
    kept.settimeout(5)
    assert kept.recv(1) == b"", "the service closes the connection after its answer"
    big = b"x" * 10000
    assert _exchange(unauthorized, _post_head("not-a-token", len(big)) + big[:1000], big[1000:5000],
                     big[5000:]) == (401, True)

    slow.sendall(body[20:])
    assert _exchange(slow) == (201, False)  # begun before the stop
    idle.settimeout(10)
    assert idle.recv(1) == b"", "an idle keep-alive connection is closed (FIN, no reset)"
    assert srv.wait_exit(30) == 0
    for sock in (slow, kept, unauthorized, idle):
        sock.close()


def test_sigterm_answers_a_connection_still_waiting_for_a_worker(make_server):
    """Both worker threads held by idle keep-alive connections, a third
    connection's request waits in civetweb's queue: after SIGTERM it is still
    answered (once a keep-alive timeout frees a worker), not dropped."""
    srv = make_server(extra_env={"SUBREG_THREADS": "2", "SUBREG_KEEP_ALIVE_MS": "3000"})
    addr = ("127.0.0.1", srv.port)
    holders = [socket.create_connection(addr, timeout=10) for _ in range(2)]
    for sock in holders:
        assert _exchange(sock, HEALTHZ) == (200, False)
    queued = socket.create_connection(addr, timeout=10)
    queued.sendall(HEALTHZ)
    time.sleep(0.3)
    srv.proc.send_signal(signal.SIGTERM)
    assert _exchange(queued) == (200, True)
    assert srv.wait_exit(30) == 0
    for sock in holders + [queued]:
        sock.close()


def test_request_logs_are_json_lines_without_tokens(server, tokens):
    token = tokens(roles=["reader"], sub="log-reader")
    rid = f"log-{time.monotonic_ns()}"
    resp = requests.get(server.url + SP, headers={"Authorization": f"Bearer {token}", "X-Request-Id": rid},
                        params={"limit": 1}, timeout=10)
    assert_status(resp, 200)
    bad = requests.get(server.url + SP, headers={"Authorization": f"Bearer {token}x"}, timeout=10)
    assert bad.status_code == 401

    def logged():
        for line in server.stderr_path.read_text().splitlines():
            if rid in line:
                return json.loads(line)
        return None

    rec = wait_until(logged, 5, message="the request's log line")
    assert rec["msg"] == "request" and rec["level"] == "info" and rec["ts"].endswith("Z")
    assert (rec["request_id"], rec["method"], rec["path"], rec["status"], rec["sub"]) == (
        rid, "GET", SP, 200, "log-reader")
    assert isinstance(rec["duration_ms"], int)
    text = server.stderr_path.read_text()
    for line in text.splitlines():
        if line.strip():
            json.loads(line)  # every line is one JSON object
    # neither the token nor its signature ever reaches the log
    assert token not in text and token.rsplit(".", 1)[1] not in text


def test_cors_is_off_by_default_and_exact_when_set(server, make_server):
    origin = {"Origin": "https://legal.example.com"}
    pre = requests.options(server.url + SP, headers=dict(origin, **{"Access-Control-Request-Method": "GET"}),
                           timeout=10)
    assert "Access-Control-Allow-Origin" not in pre.headers
    assert "Access-Control-Allow-Origin" not in requests.get(server.url + "/healthz", headers=origin,
                                                             timeout=10).headers
    srv = make_server(extra_env={"SUBREG_CORS_ORIGIN": "https://legal.example.com"})
    got = requests.get(srv.url + "/healthz", headers=origin, timeout=10)
    assert got.headers["Access-Control-Allow-Origin"] == "https://legal.example.com"
    assert "ETag" in got.headers["Access-Control-Expose-Headers"]
