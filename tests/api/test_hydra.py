"""A real OAuth 2.0 server as the token issuer (issue 10 #1): Ory Hydra (built by
scripts/bootstrap from tools/hydra, HYDRA_BIN) in memory with JWT access tokens.
subreg knows only Hydra's JWKS URL, its issuer and the audience; roles come from
Hydra's `scp` claim through SUBREG_JWT_ROLE_MAP (docs/configuration.md).

Hydra runs on two free loopback ports (public: tokens and the JWKS; admin:
clients and keys) and is stopped by its PID.
"""

import base64
import json
import os
import signal
import subprocess
import time

import pytest
import requests

from helpers import assert_problem, minimal_body, unique_name
from ports import free_port
from stack import RUN_DIR

ROLE_MAP = "subreg.read=reader,subreg.write=editor,subreg.admin=admin"
SECRET = "legal-team-client-secret-0123456789"


class Hydra:
    def __init__(self, binary):
        self.public_port, self.admin_port = free_port(), free_port()
        self.issuer = f"http://127.0.0.1:{self.public_port}/"
        env = dict(os.environ, DSN="memory", STRATEGIES_ACCESS_TOKEN="jwt", URLS_SELF_ISSUER=self.issuer,
                   SECRETS_SYSTEM="subreg-test-system-secret-0123456789",
                   SERVE_PUBLIC_HOST="127.0.0.1", SERVE_PUBLIC_PORT=str(self.public_port),
                   SERVE_ADMIN_HOST="127.0.0.1", SERVE_ADMIN_PORT=str(self.admin_port),
                   LOG_LEVEL="warn")
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        self.log = open(RUN_DIR / f"hydra-{self.public_port}.log", "wb")
        # --dev: the issuer may be plain http (loopback, tests only)
        self.proc = subprocess.Popen([binary, "serve", "all", "--dev"], env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.admin}/health/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert self.proc.poll() is None, f"hydra exited with {self.proc.returncode}, see {self.log.name}"
            assert time.monotonic() < deadline, f"hydra not ready after 60 s, see {self.log.name}"
            time.sleep(0.2)
        # Hydra makes its signing keys on the first request for them (RSA key
        # generation: seconds on a loaded machine); make them now, so subreg's
        # first JWKS fetch (5 s timeout at start-up) finds them made.
        assert requests.get(f"{self.public}/.well-known/jwks.json", timeout=60).status_code == 200

    @property
    def admin(self):
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def public(self):
        return f"http://127.0.0.1:{self.public_port}"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()

    def register(self, client_id, scope, audience):
        resp = requests.post(f"{self.admin}/admin/clients", timeout=10, json={
            "client_id": client_id, "client_secret": SECRET, "grant_types": ["client_credentials"],
            "scope": scope, "audience": audience, "token_endpoint_auth_method": "client_secret_basic"})
        assert resp.status_code == 201, resp.text

    def token(self, client_id, scope, audience="subreg"):
        resp = requests.post(f"{self.public}/oauth2/token", auth=(client_id, SECRET), timeout=10,
                             data={"grant_type": "client_credentials", "scope": scope, "audience": audience})
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    def rotate(self, alg):
        """A new signing key for access tokens through the admin API (Hydra signs
        with the newest key of the set)."""
        resp = requests.post(f"{self.admin}/admin/keys/hydra.jwt.access-token", timeout=30,
                             json={"alg": alg, "use": "sig"})
        assert resp.status_code == 201, resp.text
        return resp.json()["keys"][0]["kid"]


def header_of(token):
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture(scope="module")
def hydra():
    binary = os.environ.get("HYDRA_BIN")
    if not binary or not os.access(binary, os.X_OK):
        pytest.fail("HYDRA_BIN must name the Ory Hydra binary (scripts/bootstrap builds it)", pytrace=False)
    h = Hydra(binary)
    h.register("legal-reader", "subreg.read", ["subreg"])
    h.register("legal-editor", "subreg.read subreg.write", ["subreg", "another-api"])
    h.register("legal-admin", "subreg.read subreg.write subreg.admin", ["subreg"])
    yield h
    h.stop()


def hydra_env(h, **over):
    env = {
        "SUBREG_JWT_ALGORITHMS": "RS256,ES256",
        "SUBREG_JWT_HS256_SECRET": None,
        "SUBREG_JWT_PUBLIC_KEYS": None,
        "SUBREG_JWT_JWKS": f"{h.public}/.well-known/jwks.json",
        "SUBREG_JWT_ISSUER": h.issuer,
        "SUBREG_JWT_AUDIENCE": "subreg",
        "SUBREG_JWT_ROLES_CLAIM": "scp",
        "SUBREG_JWT_ROLE_MAP": ROLE_MAP,
    }
    env.update(over)
    return env


def call(srv, method, path, token, body=None):
    return requests.request(method, srv.url + path, json=body, timeout=10,
                            headers={"Authorization": f"Bearer {token}"})


def test_hydra_tokens_with_roles_from_scopes(hydra, make_server):
    srv = make_server(extra_env=hydra_env(hydra))
    reader = hydra.token("legal-reader", "subreg.read")
    editor = hydra.token("legal-editor", "subreg.read subreg.write")
    admin = hydra.token("legal-admin", "subreg.read subreg.write subreg.admin")
    assert header_of(reader)["alg"] == "RS256"

    assert call(srv, "GET", "/v1/subprocessors", reader).status_code == 200
    assert_problem(call(srv, "POST", "/v1/subprocessors", reader, minimal_body(legal_name=unique_name("Hydra"))),
                   403, "forbidden")
    created = call(srv, "POST", "/v1/subprocessors", editor, minimal_body(legal_name=unique_name("Hydra")))
    assert created.status_code == 201, created.text
    # the audit trail names Hydra's subject (the client)
    audit = call(srv, "GET", f"/v1/audit?entity_id={created.json()['id']}", admin)
    assert audit.status_code == 200, audit.text
    assert audit.json()["items"][0]["actor"] == "legal-editor"
    # admin only: subscriptions
    hook = {"url": "https://receiver.example/hook", "event_types": ["subprocessor.*"]}
    assert_problem(call(srv, "POST", "/v1/webhooks", editor, hook), 403, "forbidden")
    assert call(srv, "GET", "/v1/webhooks", admin).status_code == 200


def test_a_token_for_another_audience_or_issuer_is_refused(hydra, make_server):
    srv = make_server(extra_env=hydra_env(hydra))
    other_audience = hydra.token("legal-editor", "subreg.read", audience="another-api")
    assert_problem(call(srv, "GET", "/v1/subprocessors", other_audience), 401, "unauthorized")
    # the same valid signature, but this subreg trusts another issuer
    elsewhere = make_server(extra_env=hydra_env(hydra, SUBREG_JWT_ISSUER="https://login.other.example/"))
    token = hydra.token("legal-reader", "subreg.read")
    assert call(srv, "GET", "/v1/subprocessors", token).status_code == 200
    assert_problem(call(elsewhere, "GET", "/v1/subprocessors", token), 401, "unauthorized")


def test_rotating_hydras_keys_needs_no_restart(hydra, make_server):
    srv = make_server(extra_env=hydra_env(hydra))
    before = hydra.token("legal-reader", "subreg.read")
    assert call(srv, "GET", "/v1/subprocessors", before).status_code == 200
    for alg in ("ES256", "RS256"):
        kid = hydra.rotate(alg)
        after = hydra.token("legal-reader", "subreg.read")
        assert header_of(after) == {"alg": alg, "kid": kid, "typ": "JWT"}, header_of(after)
        # an unknown kid makes subreg read the JWKS again (at most every 30 s; the first at once)
        deadline = time.monotonic() + 35
        while True:
            resp = call(srv, "GET", "/v1/subprocessors", after)
            if resp.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert resp.status_code == 200, f"{alg} token after rotation: {resp.status_code} {resp.text}"
    # tokens signed before the rotations stay valid while Hydra publishes their key
    assert call(srv, "GET", "/v1/subprocessors", before).status_code == 200
    assert srv.proc.poll() is None and srv.starts == 1, "no restart"
