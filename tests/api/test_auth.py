"""Bearer JWT authentication (attack matrix) and role-based authorisation."""

import base64
import hashlib
import hmac
import json
import time

import pytest
import requests

from helpers import assert_problem, assert_status, sp_body, unique_name

SP = "/v1/subprocessors"


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_jwt(header, payload, hmac_key=None, signature=None):
    """Build a JWT by hand: HMAC-SHA256 over the signing input when hmac_key is
    given, else the given (or an empty) signature."""
    signing_input = b64url(json.dumps(header, separators=(",", ":"))) + "." + \
        b64url(json.dumps(payload, separators=(",", ":")))
    if hmac_key is not None:
        sig = b64url(hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest())
    else:
        sig = signature or ""
    return signing_input + "." + sig


def swap_payload(token, payload):
    head, _, sig = token.split(".")
    return head + "." + b64url(json.dumps(payload, separators=(",", ":"))) + "." + sig


def get_with(server, token):
    return requests.get(server.url + SP, params={"limit": 1},
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)


def assert_invalid_token(resp):
    assert_problem(resp, 401, "unauthorized")
    www = resp.headers.get("WWW-Authenticate", "")
    assert "Bearer" in www, f"WWW-Authenticate: {www!r}"
    assert 'error="invalid_token"' in www, f"WWW-Authenticate: {www!r}"


# ---------------------------------------------------------------------------
# the attack matrix: every token here must be refused with 401


def _attacks():
    A = {}

    def add(name):
        def deco(fn):
            A[name] = fn
            return fn
        return deco

    @add("alg-none")
    def _(t, k):
        return hand_jwt({"alg": "none", "typ": "JWT"}, t.payload())

    @add("alg-None")
    def _(t, k):
        return hand_jwt({"alg": "None", "typ": "JWT"}, t.payload())

    @add("alg-NONE")
    def _(t, k):
        return hand_jwt({"alg": "NONE"}, t.payload())

    @add("alg-none-with-hmac-signature")
    def _(t, k):
        return hand_jwt({"alg": "none"}, t.payload(), hmac_key=k.hs256_secret.encode())

    @add("hs256-empty-signature")
    def _(t, k):
        return hand_jwt({"alg": "HS256", "typ": "JWT"}, t.payload())

    @add("no-alg")
    def _(t, k):
        return hand_jwt({"typ": "JWT"}, t.payload(), hmac_key=k.hs256_secret.encode())

    @add("alg-confusion-rsa-pem")
    def _(t, k):
        return hand_jwt({"alg": "HS256", "typ": "JWT"}, t.payload(), hmac_key=k.rsa_public_pem)

    @add("alg-confusion-rsa-pem-kid")
    def _(t, k):
        return hand_jwt({"alg": "HS256", "kid": "rsa1"}, t.payload(), hmac_key=k.rsa_public_pem)

    @add("alg-confusion-ec-pem-kid")
    def _(t, k):
        return hand_jwt({"alg": "HS256", "kid": "ec1"}, t.payload(), hmac_key=k.ec_public_pem)

    @add("expired")
    def _(t, k):
        return t(exp_delta=-120)

    @add("expired-rs256")
    def _(t, k):
        return t(alg="RS256", exp_delta=-3600)

    @add("missing-exp")
    def _(t, k):
        return t(exp_delta=None)

    @add("exp-as-string")
    def _(t, k):
        return t(extra={"exp": str(int(time.time()) + 300)})

    @add("nbf-future")
    def _(t, k):
        return t(nbf=300)

    @add("wrong-iss")
    def _(t, k):
        return t(iss="https://evil.test")

    @add("missing-iss")
    def _(t, k):
        return t(iss=None)

    @add("wrong-aud")
    def _(t, k):
        return t(aud="other-api")

    @add("aud-array-without-ours")
    def _(t, k):
        return t(aud=["other-api", "subreg-api-x"])

    @add("missing-aud")
    def _(t, k):
        return t(aud=None)

    @add("tampered-payload-hs256")
    def _(t, k):
        tok = t(roles=["reader"], sub="mallory")
        return swap_payload(tok, t.payload(roles=["admin"], sub="mallory"))

    @add("tampered-payload-rs256")
    def _(t, k):
        tok = t(alg="RS256", roles=["reader"])
        return swap_payload(tok, t.payload(roles=["admin"]))

    @add("tampered-payload-es256")
    def _(t, k):
        tok = t(alg="ES256", exp_delta=-3600)
        return swap_payload(tok, t.payload())

    @add("tampered-header-kid")
    def _(t, k):
        tok = t(alg="RS256")
        _, p, s = tok.split(".")
        return b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "ec1"})) + "." + p + "." + s

    @add("wrong-hs256-secret")
    def _(t, k):
        return t(key="another-secret-that-is-long-enough-0123456789")

    @add("wrong-rsa-key")
    def _(t, k):
        return t(alg="RS256", key=k.other_rsa)

    @add("wrong-ec-key")
    def _(t, k):
        return t(alg="ES256", key=k.other_ec)

    @add("unknown-kid")
    def _(t, k):
        return t(alg="RS256", kid="rsa2")

    @add("rs256-with-ec-kid")
    def _(t, k):
        return t(alg="RS256", kid="ec1")

    @add("es256-with-rsa-kid")
    def _(t, k):
        return t(alg="ES256", kid="rsa1")

    @add("hs512-not-configured")
    def _(t, k):
        return t(alg="HS512")

    @add("rs512-not-configured")
    def _(t, k):
        return t(alg="RS512", kid="rsa1")

    @add("ps256-not-configured")
    def _(t, k):
        return t(alg="PS256", kid="rsa1")

    @add("truncated-signature")
    def _(t, k):
        return t()[:-6]

    @add("garbage")
    def _(t, k):
        return "garbage"

    @add("garbage-three-parts")
    def _(t, k):
        return "a.b.c"

    @add("garbage-dots")
    def _(t, k):
        return ".."

    @add("two-parts")
    def _(t, k):
        return ".".join(t().split(".")[:2])

    @add("four-parts")
    def _(t, k):
        return t() + ".AAAA"

    @add("payload-not-json")
    def _(t, k):
        return hand_jwt({"alg": "HS256"}, {}, hmac_key=b"x").split(".")[0] + "." + b64url("nope") + ".x"

    @add("payload-not-json-signed")
    def _(t, k):
        si = b64url(json.dumps({"alg": "HS256", "typ": "JWT"})) + "." + b64url("[1,2")
        sig = b64url(hmac.new(k.hs256_secret.encode(), si.encode(), hashlib.sha256).digest())
        return si + "." + sig

    return A


ATTACKS = _attacks()


@pytest.mark.parametrize("case", list(ATTACKS))
def test_attack_is_401(server, tokens, keys, case):
    tok = ATTACKS[case](tokens, keys)
    assert_invalid_token(get_with(server, tok))


def test_attack_tokens_cannot_write(server, tokens, keys):
    """The refused tokens are refused for writes too, and nothing is stored."""
    name = unique_name("Attack")
    for case in ("alg-none", "alg-confusion-rsa-pem-kid", "tampered-payload-hs256", "expired"):
        tok = ATTACKS[case](tokens, keys)
        resp = requests.post(server.url + SP, json=sp_body(legal_name=name),
                             headers={"Authorization": f"Bearer {tok}"}, timeout=10)
        assert_invalid_token(resp)
    items, _ = server.api().list_all()
    assert name not in [it["legal_name"] for it in items]


def test_no_token_is_401_with_bearer_challenge(server):
    resp = requests.get(server.url + SP, timeout=10)
    assert_problem(resp, 401, "unauthorized")
    www = resp.headers.get("WWW-Authenticate", "")
    assert www.strip().startswith("Bearer"), f"WWW-Authenticate: {www!r}"
    assert "invalid_token" not in www


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNzd29yZA==", "Bearer", "Bearer ", "Token abc",
                                   "Bearer  "])
def test_bad_authorization_header_is_401(server, value):
    resp = requests.get(server.url + SP, headers={"Authorization": value}, timeout=10)
    assert_problem(resp, 401, "unauthorized")
    assert "Bearer" in resp.headers.get("WWW-Authenticate", "")


@pytest.mark.parametrize("path", ["/v1/subprocessors/sp_00000000000000000000000000", "/v1/audit"])
def test_other_v1_endpoints_need_token(server, path):
    resp = requests.get(server.url + path, timeout=10)
    assert_problem(resp, 401, "unauthorized")


# ---------------------------------------------------------------------------
# accepted tokens


@pytest.mark.parametrize("kw", [
    dict(alg="HS256"),
    dict(alg="RS256"),
    dict(alg="ES256"),
    dict(alg="HS256", aud=["other-api", "subreg-api"]),
    dict(alg="RS256", aud=["subreg-api"]),
    dict(alg="HS256", exp_delta=-30),          # expired, but within the 60 s leeway
    dict(alg="ES256", nbf=30),                 # not yet valid, but within leeway
    dict(alg="HS256", nbf=-10),
    dict(alg="HS256", roles="reader"),         # space-separated string form
    dict(alg="HS256", roles="editor reader"),
    dict(alg="HS256", exp_delta=86400 * 365),
], ids=["hs256", "rs256-rsa1", "es256-ec1", "aud-array-with-ours", "aud-array-only-ours",
        "exp-within-leeway", "nbf-within-leeway", "nbf-past", "roles-string", "roles-string-multi",
        "long-lived"])
def test_valid_token_accepted(server, tokens, kw):
    kw.setdefault("roles", ["reader"])
    resp = get_with(server, tokens(**kw))
    assert_status(resp, 200)
    assert isinstance(resp.json().get("items"), list)


def test_bearer_scheme_is_case_insensitive(server, tokens):
    resp = requests.get(server.url + SP, params={"limit": 1},
                        headers={"Authorization": f"bearer {tokens(roles=['reader'])}"}, timeout=10)
    assert_status(resp, 200)


# ---------------------------------------------------------------------------
# roles


def test_reader_can_read_not_write(server, admin):
    created = admin.create_sp(sp_body(legal_name=unique_name()))
    path = f"{SP}/{created['id']}"
    reader = server.api(roles=["reader"], sub="rita")
    assert_status(reader.get(SP), 200)
    assert_status(reader.get(path), 200)
    assert_status(reader.get("/v1/audit", params={"entity_id": created["id"]}), 200)
    assert_problem(reader.post(SP, sp_body(legal_name=unique_name())), 403, "forbidden")
    assert_problem(reader.patch(path, {"notes": "x"}, if_match=1), 403, "forbidden")
    assert_problem(reader.delete(path, if_match=1), 403, "forbidden")
    assert admin.get_sp(created["id"])["version"] == 1


def test_editor_can_write_not_delete(server, admin):
    editor = server.api(roles=["editor"], sub="eddie")
    resp = editor.post(SP, sp_body(legal_name=unique_name()))
    assert_status(resp, 201)
    sp_id = resp.json()["id"]
    path = f"{SP}/{sp_id}"
    assert_status(editor.get(path), 200)
    assert_status(editor.patch(path, {"notes": "edited"}, if_match=1), 200)
    assert_problem(editor.delete(path, if_match=2), 403, "forbidden")
    assert_status(admin.get(path), 200)
    assert_status(admin.delete(path, if_match=2), 204)


def test_admin_can_do_everything(server):
    adm = server.api(roles=["admin"], sub="ada")
    created = adm.create_sp(sp_body(legal_name=unique_name()))
    path = f"{SP}/{created['id']}"
    assert_status(adm.get(SP), 200)
    assert_status(adm.patch(path, {"notes": "x"}, if_match=1), 200)
    assert_status(adm.delete(path, if_match=2), 204)


@pytest.mark.parametrize("roles", [None, [], ["superuser"], ["Reader"], "", ["admin-ish"]],
                         ids=["no-claim", "empty", "unknown", "wrong-case", "empty-string",
                              "prefix"])
def test_no_usable_role_is_403(server, tokens, roles):
    tok = tokens(roles=roles, sub="nobody")
    resp = requests.get(server.url + SP, headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert_problem(resp, 403, "forbidden")
    resp = requests.post(server.url + SP, json=sp_body(),
                         headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert_problem(resp, 403, "forbidden")


def test_role_claim_with_wrong_type_is_not_a_role(server, tokens):
    tok = tokens(roles=None, extra={"roles": {"admin": True}})
    resp = requests.get(server.url + SP, headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert resp.status_code in (401, 403), resp.text
    assert resp.headers.get("Content-Type", "").startswith("application/problem+json")


@pytest.mark.parametrize("depth", [100, 900, 2_400])
def test_deeply_nested_token_parts_are_401_and_harmless(server, depth):
    # the header and payload are parsed before the signature is checked: a nested
    # header used to overflow the worker thread's stack without any valid key
    nested = b64url(b"[" * depth + b"]" * depth)
    empty, header = b64url(b"{}"), b64url(b'{"alg":"HS256"}')
    for token in (f"{nested}.{empty}.c2ln", f"{header}.{nested}.c2ln"):
        resp = requests.get(server.url + SP, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert_invalid_token(resp)
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "JWT", "jwt"])
def test_access_token_types_are_accepted(server, tokens, alg, typ):
    # RFC 9068 access tokens (e.g. Duende IdentityServer, Auth0) say typ "at+jwt"
    tok = tokens(alg=alg, roles=["reader"], headers={"typ": typ})
    assert requests.get(server.url + SP, headers={"Authorization": f"Bearer {tok}"}, timeout=10).status_code == 200


@pytest.mark.parametrize("typ", ["dpop+jwt", "logout+jwt", "secevent+jwt"])
def test_other_token_types_are_refused(server, tokens, typ):
    # a DPoP proof or a logout token is not an access token, however well signed
    tok = tokens(alg="RS256", roles=["admin"], headers={"typ": typ})
    assert_invalid_token(requests.get(server.url + SP, headers={"Authorization": f"Bearer {tok}"}, timeout=10))


def test_es256_signature_must_be_raw_r_and_s(server, tokens, keys):
    # JWS ES256 signatures are R||S (64 bytes); the DER form OpenSSL produces is refused
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    good = tokens(alg="ES256", roles=["reader"])
    head, payload, _ = good.split(".")
    der = keys.ec.sign(f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    for sig in (der, b"\x00" * 64, b"\x01" * 63):
        tok = f"{head}.{payload}.{b64url(sig)}"
        assert_invalid_token(requests.get(server.url + SP, headers={"Authorization": f"Bearer {tok}"}, timeout=10))
    assert requests.get(server.url + SP, headers={"Authorization": f"Bearer {good}"}, timeout=10).status_code == 200


def test_a_key_configured_without_kid_accepts_tokens_that_name_one(make_server, tokens, keys):
    # many identity providers always send a kid; a PEM key given without "kid="
    # is the one key of its algorithm, whatever kid the token names
    srv = make_server(extra_env={"SUBREG_JWT_PUBLIC_KEYS": f"{keys.rsa_pub_path},ec1={keys.ec_pub_path}"})
    for kid in ("some-idp-key-id", None):
        tok = tokens(alg="RS256", roles=["reader"], kid=kid)
        assert requests.get(srv.url + SP, headers={"Authorization": f"Bearer {tok}"}, timeout=10).status_code == 200
    # a kid that names another key still picks that key (and its algorithm)
    tok = tokens(alg="RS256", roles=["reader"], kid="ec1")
    assert_invalid_token(requests.get(srv.url + SP, headers={"Authorization": f"Bearer {tok}"}, timeout=10))
    # another RSA key's signature fails against the kid-less key
    tok = tokens(alg="RS256", roles=["reader"], kid="x", key=keys.other_rsa)
    assert_invalid_token(requests.get(srv.url + SP, headers={"Authorization": f"Bearer {tok}"}, timeout=10))


def test_padded_token_is_401(server, tokens):
    # base64url in a JWS has no padding: "token==" is not the same token
    good = tokens(roles=["reader"])
    assert requests.get(server.url + SP, headers={"Authorization": f"Bearer {good}"}, timeout=10).status_code == 200
    assert_invalid_token(requests.get(server.url + SP, headers={"Authorization": f"Bearer {good}=="}, timeout=10))
