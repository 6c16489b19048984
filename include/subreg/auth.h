/* auth: bearer token → principal. Verifies JWS signatures with OpenSSL (HS256
 * secret, RS256/ES256 PEM public keys or a JWKS file/URL, keys chosen by kid)
 * against an algorithm allow-list, checks exp (required),
 * nbf, iat, iss and aud with leeway — libjwt checks none of these claims — and maps
 * a configurable roles claim onto reader ⊂ editor ⊂ admin. Default: deny. */
#ifndef SUBREG_AUTH_H
#define SUBREG_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { ROLE_NONE = 0, ROLE_READER = 1, ROLE_EDITOR = 2, ROLE_ADMIN = 3 } role;

typedef struct {
    char sub[256];
    role role; /* the highest role granted */
} principal;

typedef struct auth_ctx auth_ctx;

typedef struct {
    const char *algorithms; /* "HS256,RS256,ES256" */
    const char *hs256_secret;
    const char *public_keys; /* "[kid=]path,..." */
    const char *jwks;        /* JWKS file path or URL, or NULL */
    int jwks_refresh_s;      /* re-read the JWKS this often */
    const char *issuer;
    const char *audience;
    int leeway;
    const char *roles_claim; /* dotted path */
    const char *role_map;    /* "ext=reader|editor|admin,..." or NULL */
} auth_settings;

/* Builds the verifier; loads and checks keys. NULL with a message on error. */
auth_ctx *auth_new(const auth_settings *s, char *err, size_t errlen);
void auth_free(auth_ctx *a);

/* Verifies a compact JWS at time now (seconds). On failure returns false and
 * writes the reason (for logs and the 401 detail; never includes the token). */
bool auth_verify(const auth_ctx *a, const char *token, int64_t now, principal *out, char *why, size_t whylen);

/* Mints an HS256 token (for `subreg token`). Returns NULL without a secret. */
char *auth_mint_hs256(const char *secret, const char *sub, const char *roles_csv, const char *issuer,
                      const char *audience, int64_t now, int ttl);

/* One public key for RS256 or ES256, parsed once. A key without kid matches
 * tokens without kid. */
typedef enum { KEY_RSA, KEY_EC } key_kind;
struct evp_pkey_st;
typedef struct {
    char *kid;
    key_kind kind;
    struct evp_pkey_st *pkey;
} auth_key;

#define AUTH_JWKS_MAX_KEYS 64
/* Parses a JSON Web Key Set into *keys (RSA >= 2048 bits and P-256 signing keys;
 * others skipped). Returns the number of keys, or -1 with a reason in err. */
int auth_jwks_parse(const char *json, size_t len, auth_key **keys, char *err, size_t errlen);
void auth_key_clear(auth_key *k);
void auth_keys_free(auth_key *keys, int n);

const char *role_name(role r);
role role_parse(const char *s); /* ROLE_NONE if unknown */

/* Claim checks as a pure function (unit-tested): claims is the JSON payload. */
struct cJSON;
bool auth_check_claims(const struct cJSON *claims, const char *issuer, const char *audience, int leeway,
                       int64_t now, char *why, size_t whylen);
role auth_roles_from_claims(const struct cJSON *claims, const char *path, const char *role_map);

#endif
