"""Loopback webhook receivers for the delivery tests (test_webhooks.py,
test_delivery.py).

A `Receiver` is a small threaded HTTP server on 127.0.0.1 that records every
request (method, path, headers, raw body, arrival time) and answers according
to a programmable script. The script is applied per `webhook-id`: the k-th
request carrying one webhook-id gets script[k] (the last entry repeats), so a
retry of one delivery walks through the script while an unrelated event that
happens to reach the same receiver starts at the beginning.

Script entries:
    200, 204, 500, 410, ...           answer with that status
    Answer(429, {"Retry-After": "2"}) a status with headers (and optional body)
    Hang(seconds, then=200)           hold the connection open, then answer
    a function                        called per request, returns one of the above

`stop()` closes the listening socket (the port refuses connections: "receiver
down"); `start()` opens it again on the same port. Tests take receivers from the
`receivers` fixture (conftest.py), which closes them after the test.

Signatures are checked by the tests with the official Standard Webhooks
library (`standardwebhooks` on PyPI), never with our own HMAC code:
`verify(record, secret)` below is a thin wrapper around
`standardwebhooks.webhooks.Webhook(secret).verify(body, headers)`.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ports import free_port


@dataclass
class Answer:
    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b"ok"


@dataclass
class Hang:
    seconds: float
    then: object = 200


@dataclass
class Record:
    method: str
    path: str
    headers: dict          # lower-cased names
    body: bytes
    at: float              # time.time() on arrival (before the answer)
    mono: float            # time.monotonic() on arrival
    answered: object = None

    @property
    def webhook_id(self):
        return self.headers.get("webhook-id")

    @property
    def event(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def type(self):
        ev = self.event
        return ev.get("type") if isinstance(ev, dict) else None

    @property
    def signatures(self):
        return self.headers.get("webhook-signature", "").split()


def verify(record, secret):
    """Verify one recorded request with the official standardwebhooks library;
    returns the parsed payload, raises WebhookVerificationError."""
    return Webhook(secret).verify(record.body, dict(record.headers))


def verifies(record, secret):
    try:
        verify(record, secret)
        return True
    except WebhookVerificationError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True          # hanging handlers never block shutdown
    allow_reuse_address = True
    request_queue_size = 128


class Receiver:
    def __init__(self, script=(200,), port=None, start=True):
        self.script = list(script) or [200]
        self.port = port or free_port()
        self.records = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._per_id = {}
        self._httpd = None
        self._thread = None
        if start:
            self.start()

    # -- lifecycle ----------------------------------------------------------
    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def up(self):
        return self._httpd is not None

    def start(self):
        assert self._httpd is None, "receiver already up"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rec = Record(self.command, self.path,
                             {k.lower(): v for k, v in self.headers.items()}, body,
                             time.time(), time.monotonic())
                action = receiver._next_action(rec)
                rec.answered = action
                with receiver.cond:
                    receiver.records.append(rec)
                    receiver.cond.notify_all()
                if isinstance(action, Hang):
                    time.sleep(action.seconds)
                    action = action.then
                if callable(action):
                    action = action()
                if isinstance(action, int):
                    action = Answer(action)
                try:
                    self.send_response(action.status)
                    for k, v in action.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(action.body)))
                    self.end_headers()
                    self.wfile.write(action.body)
                except OSError:
                    pass  # the client gave up (timeout, killed): fine

            do_POST = _handle
            do_GET = _handle
            do_PUT = _handle

        # The port may be in TIME_WAIT after a stop(): retry binding briefly.
        deadline = time.monotonic() + 5
        while True:
            try:
                self._httpd = _Server(("127.0.0.1", self.port), Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Close the port (connections are refused from now on)."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
        self._httpd = None
        self._thread = None

    close = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- the script ----------------------------------------------------------
    def set_script(self, script):
        with self.lock:
            self.script = list(script) or [200]
            self._per_id.clear()

    def _next_action(self, rec):
        with self.lock:
            key = rec.webhook_id or "-"
            k = self._per_id.get(key, 0)
            self._per_id[key] = k + 1
            return self.script[min(k, len(self.script) - 1)]

    # -- queries -------------------------------------------------------------
    def snapshot(self):
        with self.lock:
            return list(self.records)

    def matching(self, pred=None):
        return [r for r in self.snapshot() if pred is None or pred(r)]

    def of_type(self, type_):
        return self.matching(lambda r: r.type == type_)

    def about(self, entity_id, type_=None):
        """Records of registry events whose data.id is entity_id."""
        def pred(r):
            ev = r.event
            return (isinstance(ev, dict) and isinstance(ev.get("data"), dict)
                    and ev["data"].get("id") == entity_id
                    and (type_ is None or ev.get("type") == type_))
        return self.matching(pred)

    def wait_for(self, pred, count=1, timeout=15, message="webhook requests"):
        """Block until at least `count` recorded requests satisfy pred; return them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [r for r in self.records if pred(r)]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(r.type, r.webhook_id, r.answered) for r in self.records]
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {count} {message} on "
                        f"{self.url}; got {len(got)}; all requests: {seen!r}")
                self.cond.wait(min(left, 0.2))

    def wait_type(self, type_, count=1, timeout=15):
        return self.wait_for(lambda r: r.type == type_, count, timeout, message=f"{type_!r} events")

    def wait_about(self, entity_id, type_, count=1, timeout=15):
        return self.wait_for(
            lambda r: r.type == type_ and (r.event or {}).get("data", {}).get("id") == entity_id,
            count, timeout, message=f"{type_!r} events about {entity_id}")

    def quiet_for(self, pred, seconds):
        """Assert that no request satisfying pred arrives within `seconds`."""
        before = len(self.matching(pred))
        time.sleep(seconds)
        after = self.matching(pred)
        assert len(after) == before, (
            f"unexpected requests on {self.url}: "
            f"{[(r.type, r.webhook_id) for r in after[before:]]!r}")
