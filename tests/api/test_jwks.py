"""Keys from a JSON Web Key Set (SUBREG_JWT_JWKS): a file, or a URL that an
identity provider serves and rotates. Tokens are minted with PyJWT, the key set
is written with PyJWT's own JWK export (an independent implementation of RFC 7517)."""
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ports import free_port
from stack import AUDIENCE, ISSUER

SP = "/v1/subprocessors"


def jwk(private_key, kid, **extra):
    alg = jwt.algorithms.RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    d = json.loads(alg.to_jwk(private_key.public_key()))
    d.update({"kid": kid, "use": "sig"}, **extra)
    return d


def mint(private_key, kid, alg=None, roles=("reader",)):
    alg = alg or ("RS256" if isinstance(private_key, rsa.RSAPrivateKey) else "ES256")
    now = int(time.time())
    claims = {"sub": "idp-user", "roles": list(roles), "iat": now, "exp": now + 300,
              "iss": ISSUER, "aud": AUDIENCE}
    return jwt.encode(claims, private_key, algorithm=alg, headers={"kid": kid} if kid else None)


def status(server, token):
    return requests.get(server.url + SP, headers={"Authorization": f"Bearer {token}"}, timeout=15).status_code


class IdP:
    """An identity provider's JWKS endpoint: serves `keys`, counts the reads,
    answers 500 while `down`."""

    def __init__(self, keys):
        self.keys = list(keys)
        self.down = False
        self.reads = 0
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                idp.reads += 1
                if idp.down:
                    self.send_response(500)
                    self.end_headers()
                    return
                body = json.dumps({"keys": idp.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/certs"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def idp():
    made = []

    def factory(keys):
        made.append(IdP(keys))
        return made[-1]

    yield factory
    for i in made:
        i.close()


def jwks_env(source, refresh="300"):
    # RS256/ES256 from the key set only: no PEM keys, no HS256 secret
    return {"SUBREG_JWT_ALGORITHMS": "RS256,ES256", "SUBREG_JWT_JWKS": source,
            "SUBREG_JWT_JWKS_REFRESH_SECONDS": refresh, "SUBREG_JWT_PUBLIC_KEYS": None,
            "SUBREG_JWT_HS256_SECRET": None}


def test_jwks_file_keys_are_chosen_by_kid(make_server, tmp_path, keys):
    r, e = rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(ec.SECP256R1())
    enc = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(r, "r1", alg="RS256"), jwk(e, "e1"),
                                         jwk(enc, "enc1", use="enc", alg="RSA-OAEP")]}))
    srv = make_server(extra_env=jwks_env(str(path)))
    assert status(srv, mint(r, "r1")) == 200
    assert status(srv, mint(e, "e1")) == 200
    # the kid picks the key: another key's signature, or the right key under another kid, fails
    assert status(srv, mint(keys.other_rsa, "r1")) == 401
    assert status(srv, mint(r, "e1")) == 401
    assert status(srv, mint(r, "unknown")) == 401
    # an encryption key is not a signing key
    assert status(srv, mint(enc, "enc1")) == 401
    # a token without kid: the one RSA signing key of the set
    assert status(srv, mint(r, None)) == 200
    # HS256 is not on this server's list, whatever the key
    hs = jwt.encode({"sub": "x", "exp": int(time.time()) + 60, "roles": ["admin"]}, "x" * 40, algorithm="HS256")
    assert status(srv, hs) == 401


def test_jwks_url_follows_the_providers_key_rotation(make_server, idp):
    old, new = rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(ec.SECP256R1())
    provider = idp([jwk(old, "2026-old")])
    srv = make_server(extra_env=jwks_env(provider.url, refresh="3600"))
    assert provider.reads == 1  # read at start
    old_token = mint(old, "2026-old")
    assert status(srv, old_token) == 200
    assert status(srv, old_token) == 200  # verified once, then remembered

    # the provider rotates: the first token with the new kid makes subreg read
    # the set again at once (the hourly read is far away), no restart
    provider.keys = [jwk(new, "2026-new")]
    assert status(srv, mint(new, "2026-new")) == 200
    assert provider.reads == 2
    assert status(srv, mint(old, "2026-old")) == 401  # withdrawn keys stop working
    assert status(srv, old_token) == 401  # also a token verified (and remembered) before

    # unknown kids do not hammer the provider: no further read within 30 s
    for i in range(20):
        assert status(srv, mint(new, f"forged-{i}")) == 401
    assert provider.reads == 2
    assert status(srv, mint(new, "2026-new")) == 200


def test_a_provider_outage_keeps_the_keys_read_before(make_server, idp):
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider = idp([jwk(k, "k1")])
    srv = make_server(extra_env=jwks_env(provider.url, refresh="1"))
    time.sleep(1.5)
    assert provider.reads >= 2  # re-read on its interval
    provider.down = True
    reads = provider.reads
    time.sleep(2.5)
    assert provider.reads > reads  # it kept trying
    assert status(srv, mint(k, "k1")) == 200
    assert "keeping the keys read before" in srv.stderr_path.read_text()


def test_a_jwks_that_cannot_be_read_stops_the_start(binaries, tmp_path, idp):
    provider = idp([])
    for source, why in [(str(tmp_path / "missing.json"), "cannot read"),
                        (provider.url, "no usable RS256 or ES256 signing key"),
                        ("http://192.0.2.1/certs", "plain http only to a loopback address")]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUBREG_")}
        env.update({k: v for k, v in jwks_env(source).items() if v is not None})
        res = subprocess.run([binaries[0], "serve"], env=env, capture_output=True, text=True, timeout=30)
        assert res.returncode == 2, res.stderr
        assert "SUBREG_JWT_JWKS" in res.stderr and why in res.stderr, res.stderr


def test_pem_key_without_kid_next_to_a_jwks(make_server, tmp_path, keys):
    # the PEM key configured without kid serves tokens without kid (and with a kid
    # no key names); the key set's keys serve their own kids
    j = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(j, "j1")]}))
    env = dict(jwks_env(str(path)), SUBREG_JWT_PUBLIC_KEYS=str(keys.rsa_pub_path))
    srv = make_server(extra_env=env)
    assert status(srv, mint(keys.rsa, None)) == 200
    assert status(srv, mint(keys.rsa, "not-a-known-kid")) == 200
    assert status(srv, mint(j, "j1")) == 200
    assert status(srv, mint(j, None)) == 401  # no kid: the kid-less PEM key, which did not sign it
    assert status(srv, mint(keys.rsa, "j1")) == 401  # j1 names the key set's key
