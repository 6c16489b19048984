/* Inside auth: the key type shared by the PEM keys of SUBREG_JWT_PUBLIC_KEYS and
 * the keys of a JWKS, and the JWKS reader (jwks.c). */
#ifndef SUBREG_AUTH_INTERNAL_H
#define SUBREG_AUTH_INTERNAL_H

#include <openssl/evp.h>

#include "subreg/auth.h"
#include "subreg/util.h"

/* Checks an RS256 (RSA >= 2048 bits) or ES256 (P-256) public key and says which;
 * on error names var and what. */
bool auth_key_check(EVP_PKEY *pkey, key_kind *kind, const char *var, const char *what, char *err, size_t n);

/* "https://" or "http://" (else a file path). */
bool auth_jwks_is_url(const char *source);
/* A file, an https URL, or plain http to a loopback address. */
bool auth_jwks_source_ok(const char *source);
/* Reads the file or GETs the URL (5 s timeout, 1 MiB at most) into body. */
bool auth_jwks_fetch(const char *source, strbuf *body, char *err, size_t n);

/* Verified tokens, remembered until their exp (+ leeway) and only for the key
 * set they were verified with (keys_gen moves whenever the JWKS is read again):
 * a key removed from the set stops its tokens at the next read, and nothing is
 * valid longer than its exp says. Bounded: slots entries, each token in the
 * slot its hash names (a newer token replaces an older one). */
typedef struct token_cache token_cache;
token_cache *token_cache_new(int slots);
void token_cache_free(token_cache *c);
void token_hash(const char *token, unsigned char out[32]);
bool token_cache_get(token_cache *c, const unsigned char hash[32], uint64_t keys_gen, int64_t now, principal *out);
void token_cache_put(token_cache *c, const unsigned char hash[32], uint64_t keys_gen, int64_t valid_until,
                     const principal *who);

#endif
