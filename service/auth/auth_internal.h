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

#endif
