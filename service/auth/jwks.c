/* JWKS (RFC 7517): the public keys of an identity provider as a JSON Web Key Set,
 * read from a file or fetched over HTTPS, turned into OpenSSL public keys. Only
 * signing keys for the algorithms subreg accepts are kept: RSA
 * (RS256, at least 2048 bits) and EC on P-256 (ES256); keys marked for
 * encryption (`use` other than "sig") or for other algorithms are skipped. */
#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_internal.h"
#include "subreg/json.h"
#include "subreg/util.h"

#define JWKS_MAX_BYTES (1024 * 1024)
#define JWKS_TIMEOUT_MS 5000

bool auth_key_check(EVP_PKEY *pkey, key_kind *kind, const char *var, const char *what, char *err, size_t n)
{
    int id = EVP_PKEY_get_base_id(pkey);
    if (id == EVP_PKEY_RSA) {
        *kind = KEY_RSA;
        if (EVP_PKEY_get_bits(pkey) < 2048) {
            snprintf(err, n, "%s: RSA key %s is shorter than 2048 bits", var, what);
            return false;
        }
        return true;
    }
    if (id == EVP_PKEY_EC) {
        *kind = KEY_EC;
        char group[64] = "";
        size_t glen = 0;
        EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen);
        if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0) {
            snprintf(err, n, "%s: EC key %s is not on P-256 (ES256)", var, what);
            return false;
        }
        return true;
    }
    snprintf(err, n, "%s: %s is neither an RSA nor an EC key", var, what);
    return false;
}

static bool b64_member(const cJSON *jwk, const char *name, unsigned char **out, size_t *len)
{
    const char *s = json_get_str(jwk, name);
    return s && *s && b64url_decode(s, strlen(s), out, len) && *len > 0;
}

/* The EVP_PKEY of one RSA or EC public JWK; NULL with a reason. */
static EVP_PKEY *jwk_pkey(const cJSON *jwk, bool rsa, char *why, size_t n)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    unsigned char *a = NULL, *b = NULL;
    unsigned char point[65]; /* the builder keeps a pointer to it until to_param */
    size_t alen = 0, blen = 0;
    if (rsa) {
        if (!b64_member(jwk, "n", &a, &alen) || !b64_member(jwk, "e", &b, &blen)) {
            snprintf(why, n, "RSA key without valid base64url n and e");
            goto done;
        }
        bn_n = BN_bin2bn(a, (int)alen, NULL);
        bn_e = BN_bin2bn(b, (int)blen, NULL);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e);
    } else {
        if (!b64_member(jwk, "x", &a, &alen) || !b64_member(jwk, "y", &b, &blen) || alen != 32 || blen != 32) {
            snprintf(why, n, "P-256 key without 32-byte base64url x and y");
            goto done;
        }
        point[0] = 0x04; /* uncompressed */
        memcpy(point + 1, a, 32);
        memcpy(point + 33, b, 32);
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point);
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, rsa ? "RSA" : "EC", NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        snprintf(why, n, "not a valid %s public key", rsa ? "RSA" : "P-256");
        pkey = NULL;
    }
    if (pkey && !rsa) {
        /* the point must lie on the curve */
        EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!check || EVP_PKEY_public_check(check) != 1) {
            snprintf(why, n, "P-256 point is not on the curve");
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        EVP_PKEY_CTX_free(check);
    }
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(a);
    free(b);
    return pkey;
}

void auth_key_clear(auth_key *k)
{
    free(k->kid);
    EVP_PKEY_free(k->pkey);
    *k = (auth_key){0};
}

void auth_keys_free(auth_key *keys, int n)
{
    for (int i = 0; i < n; i++) auth_key_clear(&keys[i]);
    free(keys);
}

int auth_jwks_parse(const char *json, size_t len, auth_key **out, char *err, size_t n)
{
    *out = NULL;
    char why[128] = "";
    cJSON *set = json_parse_strict(json, len, why, sizeof why);
    const cJSON *list = cJSON_IsObject(set) ? json_get(set, "keys") : NULL;
    if (!cJSON_IsArray(list)) {
        snprintf(err, n, "not a JSON Web Key Set (an object with a \"keys\" array)%s%s", *why ? ": " : "", why);
        cJSON_Delete(set);
        return -1;
    }
    int count = 0, max = cJSON_GetArraySize(list);
    if (max > AUTH_JWKS_MAX_KEYS) {
        snprintf(err, n, "more than %d keys", AUTH_JWKS_MAX_KEYS);
        cJSON_Delete(set);
        return -1;
    }
    auth_key *keys = xcalloc((size_t)(max ? max : 1), sizeof *keys);
    char skipped[200] = ""; /* why the first unusable key was skipped */
    int index = 0;
    for (const cJSON *jwk = list->child; jwk; jwk = jwk->next, index++) {
        const char *kty = json_get_str(jwk, "kty");
        const char *use = json_get_str(jwk, "use");
        const char *alg = json_get_str(jwk, "alg");
        const char *crv = json_get_str(jwk, "crv");
        const cJSON *kidv = json_get(jwk, "kid");
        bool rsa = kty && strcmp(kty, "RSA") == 0;
        bool ec = kty && strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0;
        if (!cJSON_IsObject(jwk) || (!rsa && !ec) || (use && strcmp(use, "sig") != 0) ||
            (alg && strcmp(alg, rsa ? "RS256" : "ES256") != 0))
            continue; /* not a key subreg verifies with */
        /* A key that cannot be used is skipped, not fatal: a provider's set
         * may carry a legacy key next to the current ones. */
        if (kidv && !cJSON_IsString(kidv)) {
            if (!*skipped) snprintf(skipped, sizeof skipped, "key %d: kid is not a string", index);
            continue;
        }
        EVP_PKEY *pkey = jwk_pkey(jwk, rsa, why, sizeof why);
        if (!pkey) {
            if (!*skipped) snprintf(skipped, sizeof skipped, "key %d: %s", index, why);
            continue;
        }
        auth_key *k = &keys[count];
        char what[160];
        snprintf(what, sizeof what, "%d (kid %.100s)", index, kidv ? kidv->valuestring : "none");
        if (!auth_key_check(pkey, &k->kind, "key", what, why, sizeof why)) {
            if (!*skipped) snprintf(skipped, sizeof skipped, "%s", why);
            EVP_PKEY_free(pkey);
            continue;
        }
        k->pkey = pkey;
        k->kid = kidv ? xstrdup(kidv->valuestring) : NULL;
        count++;
    }
    cJSON_Delete(set);
    if (count == 0) {
        snprintf(err, n, "no usable RS256 or ES256 signing key in the set%s%s%s", *skipped ? " (" : "", skipped,
                 *skipped ? ")" : "");
        free(keys);
        return -1;
    }
    *out = keys;
    return count;
}

bool auth_jwks_is_url(const char *source)
{
    return str_istarts(source, "https://") || str_istarts(source, "http://");
}

/* Plain http only to this machine: a key set fetched in clear over a network
 * would let anyone on the path mint tokens. */
bool auth_jwks_source_ok(const char *source)
{
    if (!str_istarts(source, "http://")) return true;
    /* the host as libcurl will connect to it ("http://localhost:80@evil/" is evil) */
    CURLU *u = curl_url();
    char *host = NULL, *user = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, source, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_OK &&
              (strcmp(host, "127.0.0.1") == 0 || str_ieq(host, "localhost") || strcmp(host, "[::1]") == 0);
    curl_free(host);
    curl_free(user);
    curl_url_cleanup(u);
    return ok;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    strbuf *sb = user;
    size_t n = size * nmemb;
    if (sb->len + n > JWKS_MAX_BYTES) return 0; /* aborts the transfer */
    sb_append(sb, data, n);
    return n;
}

bool auth_jwks_fetch(const char *source, strbuf *body, char *err, size_t n)
{
    if (!auth_jwks_is_url(source)) {
        FILE *f = fopen(source, "rb");
        if (!f) {
            snprintf(err, n, "cannot read %s", source);
            return false;
        }
        char buf[4096];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, f)) > 0 && body->len <= JWKS_MAX_BYTES) sb_append(body, buf, got);
        fclose(f);
        if (body->len > JWKS_MAX_BYTES) {
            snprintf(err, n, "%s is larger than %d bytes", source, JWKS_MAX_BYTES);
            return false;
        }
        return true;
    }
    CURL *e = curl_easy_init();
    if (!e) {
        snprintf(err, n, "cannot create an HTTP client");
        return false;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, source);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)JWKS_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "subreg-jwks");
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (rc != CURLE_OK) {
        snprintf(err, n, "fetching %s failed: %s", source, *curl_err ? curl_err : curl_easy_strerror(rc));
        return false;
    }
    if (status != 200) {
        snprintf(err, n, "fetching %s answered HTTP %ld", source, status);
        return false;
    }
    return true;
}
