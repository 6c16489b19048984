#!/usr/bin/env python3
"""bench/registry.d/tokens.py DIR SECRET ISSUER AUDIENCE — signing keys for the
token-cost runs of bench/registry: writes DIR/rsa.pub.pem, DIR/ec.pub.pem and
DIR/jwks.json (another EC key, kid "jwks1"), and prints four admin tokens valid
for an hour, one per line: HS256, RS256 (PEM key), ES256 (PEM key), ES256 (JWKS key)."""
import json
import pathlib
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

out, secret, iss, aud = pathlib.Path(sys.argv[1]), *sys.argv[2:5]
pem = dict(encoding=serialization.Encoding.PEM, format=serialization.PublicFormat.SubjectPublicKeyInfo)
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec_key = ec.generate_private_key(ec.SECP256R1())
jwks_key = ec.generate_private_key(ec.SECP256R1())
(out / "rsa.pub.pem").write_bytes(rsa_key.public_key().public_bytes(**pem))
(out / "ec.pub.pem").write_bytes(ec_key.public_key().public_bytes(**pem))
jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(jwks_key.public_key()))
(out / "jwks.json").write_text(json.dumps({"keys": [dict(jwk, kid="jwks1", alg="ES256", use="sig")]}))
now = int(time.time())
claims = {"sub": "bench", "roles": ["admin"], "iss": iss, "aud": aud, "iat": now, "exp": now + 3600}
print(jwt.encode(claims, secret, algorithm="HS256"))
print(jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "rsa1"}))
print(jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "ec1"}))
print(jwt.encode(claims, jwks_key, algorithm="ES256", headers={"kid": "jwks1"}))
