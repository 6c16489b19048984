#include <ctype.h>
#include <jwt.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_internal.h"
#include "subreg/auth.h"
#include "subreg/log.h"
#include "subreg/json.h"
#include "subreg/util.h"

#define MAX_KEYS 16
#define JWKS_WAIT_MS 5000        /* a request waits at most this for a refresh */
#define JWKS_MIN_INTERVAL_MS 30000 /* unknown kids refresh at most this often */
#define TOKEN_CACHE_SLOTS 512      /* verified tokens remembered (~160 KB) */

struct auth_ctx {
    bool allow_hs256, allow_rs256, allow_es256;
    unsigned char *secret;
    size_t secret_len;
    auth_key keys[MAX_KEYS]; /* SUBREG_JWT_PUBLIC_KEYS */
    int nkeys;
    char *issuer;
    char *audience;
    int leeway;
    char *roles_claim;
    char *role_map;
    /* JWKS: the set is replaced as a whole by the refresh thread; requests read
     * it under the read lock. */
    char *jwks_source;
    int64_t jwks_refresh_ms;
    int64_t jwks_min_interval_ms; /* unknown kids refresh at most this often */
    pthread_rwlock_t jwks_lock;
    auth_key *jwks;
    int njwks;
    uint64_t keys_gen;    /* moves with every key set read (atomic) */
    token_cache *verified; /* tokens verified with the current keys */
    pthread_mutex_t mu; /* guards the refresh thread's state below */
    pthread_cond_t cv;
    pthread_t thread;
    bool thread_running, stop, want_refresh;
    uint64_t generation;    /* reads made */
    int64_t next_read;      /* mono_ms of the next periodic read */
    int64_t last_early;     /* mono_ms of the last read asked for by an unknown kid */
};

const char *role_name(role r)
{
    switch (r) {
    case ROLE_READER: return "reader";
    case ROLE_EDITOR: return "editor";
    case ROLE_ADMIN: return "admin";
    default: return "none";
    }
}

role role_parse(const char *s)
{
    if (strcmp(s, "reader") == 0) return ROLE_READER;
    if (strcmp(s, "editor") == 0) return ROLE_EDITOR;
    if (strcmp(s, "admin") == 0) return ROLE_ADMIN;
    return ROLE_NONE;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

static bool load_key(auth_key *k, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "SUBREG_JWT_PUBLIC_KEYS: cannot read %s", path);
        return false;
    }
    k->pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (!k->pkey) {
        snprintf(err, errlen, "SUBREG_JWT_PUBLIC_KEYS: %s is not a PEM public key (-----BEGIN PUBLIC KEY-----)",
                 path);
        return false;
    }
    return auth_key_check(k->pkey, &k->kind, "SUBREG_JWT_PUBLIC_KEYS", path, err, errlen);
}

/* Reads the key set and replaces the current one; on failure the old set stays. */
static bool jwks_load(auth_ctx *a, char *err, size_t n)
{
    strbuf body = {0};
    auth_key *keys = NULL;
    int count = -1;
    char why[400];
    if (auth_jwks_fetch(a->jwks_source, &body, why, sizeof why))
        count = auth_jwks_parse(body.data ? body.data : "", body.len, &keys, why, sizeof why);
    sb_free(&body);
    if (count < 0) {
        snprintf(err, n, "SUBREG_JWT_JWKS: %s", why);
        return false;
    }
    pthread_rwlock_wrlock(&a->jwks_lock);
    auth_key *old = a->jwks;
    int nold = a->njwks;
    a->jwks = keys;
    a->njwks = count;
    __atomic_add_fetch(&a->keys_gen, 1, __ATOMIC_RELEASE);
    pthread_rwlock_unlock(&a->jwks_lock);
    auth_keys_free(old, nold);
    return true;
}

/* Re-reads the key set every refresh interval, and sooner when a request meets
 * an unknown kid (the provider rotated its keys). */
static void *jwks_thread(void *arg)
{
    auth_ctx *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        int64_t due = a->next_read - mono_ms();
        if (!a->want_refresh && due > 0) {
            cond_wait_ms(&a->cv, &a->mu, due);
            continue;
        }
        a->want_refresh = false;
        pthread_mutex_unlock(&a->mu);
        char err[512];
        if (jwks_load(a, err, sizeof err)) log_msgf(LOG_DEBUG, "JWKS read from %s", a->jwks_source);
        else log_msgf(LOG_WARN, "%s (keeping the keys read before)", err);
        pthread_mutex_lock(&a->mu);
        a->next_read = mono_ms() + a->jwks_refresh_ms;
        a->generation++;
        pthread_cond_broadcast(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* A token's kid is not in the set: ask for a fresh read (at most every
 * jwks_min_interval_ms) and wait up to JWKS_WAIT_MS for it. */
static void jwks_refresh_now(auth_ctx *a)
{
    pthread_mutex_lock(&a->mu);
    if (a->thread_running && mono_ms() - a->last_early >= a->jwks_min_interval_ms) {
        a->last_early = mono_ms();
        uint64_t gen = a->generation;
        a->want_refresh = true;
        pthread_cond_broadcast(&a->cv);
        int64_t until = mono_ms() + JWKS_WAIT_MS;
        while (a->generation == gen && !a->stop && mono_ms() < until)
            cond_wait_ms(&a->cv, &a->mu, until - mono_ms());
    }
    pthread_mutex_unlock(&a->mu);
}

auth_ctx *auth_new(const auth_settings *s, char *err, size_t errlen)
{
    auth_ctx *a = xcalloc(1, sizeof *a);
    /* writers first: under steady token traffic the reader thread's swap of the
     * key set must not wait behind an endless line of readers */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&a->jwks_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->verified = token_cache_new(TOKEN_CACHE_SLOTS);
    char *algs = xstrdup(s->algorithms && *s->algorithms ? s->algorithms : "HS256");
    for (char *save = NULL, *t = strtok_r(algs, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        if (strcmp(t, "HS256") == 0) a->allow_hs256 = true;
        else if (strcmp(t, "RS256") == 0) a->allow_rs256 = true;
        else if (strcmp(t, "ES256") == 0) a->allow_es256 = true;
        else {
            snprintf(err, errlen, "SUBREG_JWT_ALGORITHMS: unsupported algorithm \"%.32s\" (HS256, RS256, ES256)", t);
            free(algs);
            auth_free(a);
            return NULL;
        }
    }
    free(algs);
    if (s->hs256_secret && *s->hs256_secret) {
        if (strlen(s->hs256_secret) < 32) {
            snprintf(err, errlen, "SUBREG_JWT_HS256_SECRET: must be at least 32 bytes");
            auth_free(a);
            return NULL;
        }
        a->secret = (unsigned char *)xstrdup(s->hs256_secret);
        a->secret_len = strlen(s->hs256_secret);
    }
    if (a->allow_hs256 && !a->secret) {
        snprintf(err, errlen, "SUBREG_JWT_HS256_SECRET: required when SUBREG_JWT_ALGORITHMS contains HS256");
        auth_free(a);
        return NULL;
    }
    if (s->public_keys && *s->public_keys) {
        char *list = xstrdup(s->public_keys);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ') t++;
            if (a->nkeys == MAX_KEYS) {
                snprintf(err, errlen, "SUBREG_JWT_PUBLIC_KEYS: at most %d keys", MAX_KEYS);
                free(list);
                auth_free(a);
                return NULL;
            }
            auth_key *k = &a->keys[a->nkeys++];
            char *eq = strchr(t, '=');
            const char *path = t;
            if (eq) {
                *eq = '\0';
                k->kid = xstrdup(t);
                path = eq + 1;
            }
            if (!load_key(k, path, err, errlen)) {
                free(list);
                auth_free(a);
                return NULL;
            }
        }
        free(list);
    }
    if (s->jwks && *s->jwks) {
        a->jwks_source = xstrdup(s->jwks);
        a->jwks_refresh_ms = (int64_t)(s->jwks_refresh_s > 0 ? s->jwks_refresh_s : 300) * 1000;
        int64_t min = a->jwks_refresh_ms < JWKS_MIN_INTERVAL_MS ? a->jwks_refresh_ms : JWKS_MIN_INTERVAL_MS;
        a->jwks_min_interval_ms = min;
        if (!auth_jwks_source_ok(a->jwks_source)) {
            snprintf(err, errlen, "SUBREG_JWT_JWKS: plain http only to a loopback address; use https");
            auth_free(a);
            return NULL;
        }
        if (!jwks_load(a, err, errlen)) {
            auth_free(a);
            return NULL;
        }
        a->next_read = mono_ms() + a->jwks_refresh_ms;
        a->last_early = INT64_MIN / 2; /* the first unknown kid may ask at once */
        a->thread_running = pthread_create(&a->thread, NULL, jwks_thread, a) == 0;
    }
    if ((a->allow_rs256 || a->allow_es256) && a->nkeys == 0 && a->njwks == 0) {
        snprintf(err, errlen, "SUBREG_JWT_PUBLIC_KEYS or SUBREG_JWT_JWKS: required when RS256 or ES256 is allowed");
        auth_free(a);
        return NULL;
    }
    a->issuer = dup_or_null(s->issuer);
    a->audience = dup_or_null(s->audience);
    a->leeway = s->leeway;
    a->roles_claim = xstrdup(s->roles_claim && *s->roles_claim ? s->roles_claim : "roles");
    a->role_map = dup_or_null(s->role_map);
    if (a->role_map) {
        /* Validate the map once so a typo fails at start, not per request. */
        char *m = xstrdup(a->role_map);
        for (char *save = NULL, *t = strtok_r(m, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(t, '=');
            if (!eq || eq == t || role_parse(eq + 1) == ROLE_NONE) {
                snprintf(err, errlen, "SUBREG_JWT_ROLE_MAP: \"%.64s\" is not external=reader|editor|admin", t);
                free(m);
                auth_free(a);
                return NULL;
            }
        }
        free(m);
    }
    return a;
}

void auth_free(auth_ctx *a)
{
    if (!a) return;
    if (a->thread_running) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    token_cache_free(a->verified);
    free(a->secret);
    for (int i = 0; i < a->nkeys; i++) auth_key_clear(&a->keys[i]);
    auth_keys_free(a->jwks, a->njwks);
    free(a->jwks_source);
    pthread_rwlock_destroy(&a->jwks_lock);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a->issuer);
    free(a->audience);
    free(a->roles_claim);
    free(a->role_map);
    free(a);
}

static bool claim_number(const cJSON *claims, const char *name, bool *present, double *v, char *why, size_t n)
{
    const cJSON *c = json_get(claims, name);
    *present = c != NULL;
    if (!c) return true;
    /* A NumericDate (RFC 7519 2): seconds since the epoch. 1e400 parses as
     * infinity and would never expire: only finite values from 1970 to the end
     * of year 9999 are dates. */
    if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble) || c->valuedouble < 0 || c->valuedouble > 253402300799.0) {
        snprintf(why, n, "claim %s is not a NumericDate", name);
        return false;
    }
    *v = c->valuedouble;
    return true;
}

bool auth_check_claims(const cJSON *claims, const char *issuer, const char *audience, int leeway, int64_t now,
                       char *why, size_t n)
{
    bool has;
    double v = 0;
    if (!claim_number(claims, "exp", &has, &v, why, n)) return false;
    if (!has) {
        snprintf(why, n, "token has no exp claim");
        return false;
    }
    if ((double)now > v + leeway) {
        snprintf(why, n, "token expired");
        return false;
    }
    if (!claim_number(claims, "nbf", &has, &v, why, n)) return false;
    if (has && (double)now + leeway < v) {
        snprintf(why, n, "token not yet valid (nbf)");
        return false;
    }
    if (!claim_number(claims, "iat", &has, &v, why, n)) return false;
    if (has && (double)now + leeway < v) {
        snprintf(why, n, "token issued in the future (iat)");
        return false;
    }
    const char *sub = json_get_str(claims, "sub");
    if (!sub || !*sub || strlen(sub) > 255) {
        snprintf(why, n, "token has no usable sub claim");
        return false;
    }
    if (issuer) {
        const char *iss = json_get_str(claims, "iss");
        if (!iss || strcmp(iss, issuer) != 0) {
            snprintf(why, n, "wrong issuer");
            return false;
        }
    }
    if (audience) {
        const cJSON *aud = json_get(claims, "aud");
        bool ok = false;
        if (cJSON_IsString(aud)) {
            ok = strcmp(aud->valuestring, audience) == 0;
        } else if (cJSON_IsArray(aud)) {
            for (const cJSON *c = aud->child; c && !ok; c = c->next)
                ok = cJSON_IsString(c) && strcmp(c->valuestring, audience) == 0;
        }
        if (!ok) {
            snprintf(why, n, "wrong audience");
            return false;
        }
    }
    return true;
}

static role map_role(const char *name, size_t len, const char *role_map)
{
    if (!role_map) {
        char buf[16];
        if (len >= sizeof buf) return ROLE_NONE;
        memcpy(buf, name, len);
        buf[len] = '\0';
        return role_parse(buf);
    }
    role best = ROLE_NONE;
    const char *p = role_map;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq && (size_t)(eq - p) == len && memcmp(p, name, len) == 0) {
            char buf[16];
            size_t rl = (size_t)(end - eq - 1);
            if (rl < sizeof buf) {
                memcpy(buf, eq + 1, rl);
                buf[rl] = '\0';
                role r = role_parse(buf);
                if (r > best) best = r;
            }
        }
        p = *end ? end + 1 : end;
    }
    return best;
}

role auth_roles_from_claims(const cJSON *claims, const char *path, const char *role_map)
{
    const cJSON *v = claims;
    char *p = xstrdup(path);
    for (char *save = NULL, *seg = strtok_r(p, ".", &save); seg && v; seg = strtok_r(NULL, ".", &save))
        v = cJSON_IsObject(v) ? json_get(v, seg) : NULL;
    free(p);
    role best = ROLE_NONE;
    if (cJSON_IsArray(v)) {
        for (const cJSON *c = v->child; c; c = c->next) {
            if (!cJSON_IsString(c)) continue;
            role r = map_role(c->valuestring, strlen(c->valuestring), role_map);
            if (r > best) best = r;
        }
    } else if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        while (*s) {
            while (*s == ' ') s++;
            size_t len = strcspn(s, " ");
            if (len) {
                role r = map_role(s, len, role_map);
                if (r > best) best = r;
            }
            s += len;
        }
    }
    return best;
}

static cJSON *decode_part(const char *s, size_t len)
{
    unsigned char *raw;
    size_t rawlen;
    if (!b64url_decode(s, len, &raw, &rawlen)) return NULL;
    char err[64];
    cJSON *v = json_parse_strict((const char *)raw, rawlen, err, sizeof err);
    free(raw);
    if (v && !cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* Counts the keys a token can mean: by kid, or without a kid every key of its
 * algorithm. */
static void match_keys(const auth_key *keys, int n, const char *kid, key_kind kind, const auth_key **found,
                       int *candidates)
{
    for (int i = 0; i < n; i++) {
        const auth_key *k = &keys[i];
        if (kid ? (k->kid && strcmp(k->kid, kid) == 0) : (k->kind == kind)) {
            *found = k;
            (*candidates)++;
        }
    }
}

/* The one key of this algorithm in SUBREG_JWT_PUBLIC_KEYS without "kid=", or NULL. */
static const auth_key *kidless_key(const auth_ctx *a, key_kind kind)
{
    const auth_key *found = NULL;
    int n = 0;
    for (int i = 0; i < a->nkeys; i++)
        if (!a->keys[i].kid && a->keys[i].kind == kind) {
            found = &a->keys[i];
            n++;
        }
    return n == 1 ? found : NULL;
}

/* The key a token names (jwks_lock held): a token without kid takes the
 * kid-less key, else the only key of its algorithm; a kid takes its key, which
 * must be of the token's algorithm. *matched counts the keys considered. */
static const auth_key *select_key(const auth_ctx *a, const char *kid, key_kind kind, int *matched)
{
    const auth_key *found = kid ? NULL : kidless_key(a, kind);
    *matched = found != NULL;
    if (found) return found;
    match_keys(a->keys, a->nkeys, kid, kind, &found, matched);
    match_keys(a->jwks, a->njwks, kid, kind, &found, matched);
    return *matched == 1 && found->kind == kind ? found : NULL;
}

/* The public key for a token's kid and algorithm, with a reference the caller
 * frees; NULL with the reason. An unknown kid re-reads the JWKS (the provider
 * may have rotated its keys), then falls back to the kid-less key. */
static EVP_PKEY *key_for(const auth_ctx *a, const char *kid, key_kind kind, char *why, size_t n)
{
    auth_ctx *A = (auth_ctx *)a; /* the key set's lock and refresh state */
    int matched;
    pthread_rwlock_rdlock(&A->jwks_lock);
    const auth_key *k = select_key(a, kid, kind, &matched);
    if (!matched && kid && a->jwks_source) {
        pthread_rwlock_unlock(&A->jwks_lock);
        jwks_refresh_now(A);
        pthread_rwlock_rdlock(&A->jwks_lock);
        k = select_key(a, kid, kind, &matched);
    }
    if (!matched && kid) k = kidless_key(a, kind);
    EVP_PKEY *pkey = k ? k->pkey : NULL;
    if (pkey) EVP_PKEY_up_ref(pkey); /* the set may be replaced once unlocked */
    pthread_rwlock_unlock(&A->jwks_lock);
    if (!pkey) snprintf(why, n, kid ? "no key of this algorithm for the token's kid" : "token needs a kid");
    return pkey;
}

/* The JWS signature over header.payload (RFC 7515/7518), checked with OpenSSL:
 * HS256 with the secret (constant-time compare), RS256 (PKCS#1 v1.5) and ES256
 * (raw R||S, 64 bytes, turned into DER) with the key. */
static bool signature_ok(const char *alg, const unsigned char *secret, size_t secret_len, EVP_PKEY *pkey,
                         const char *input, size_t input_len, const char *sig_b64, size_t sig_b64_len)
{
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    if (!b64url_decode(sig_b64, sig_b64_len, &sig, &sig_len)) return false;
    bool ok = false;
    if (strcmp(alg, "HS256") == 0) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        ok = secret && HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)input, input_len, mac,
                            &mac_len) &&
             sig_len == mac_len && CRYPTO_memcmp(sig, mac, mac_len) == 0;
    } else if (pkey) {
        unsigned char *der = NULL;
        int der_len = 0;
        const unsigned char *check = sig;
        size_t check_len = sig_len;
        if (strcmp(alg, "ES256") == 0) {
            if (sig_len != 64) goto out;
            ECDSA_SIG *es = ECDSA_SIG_new();
            BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s_ = BN_bin2bn(sig + 32, 32, NULL);
            if (!es || !r || !s_ || ECDSA_SIG_set0(es, r, s_) != 1) {
                BN_free(r);
                BN_free(s_);
                ECDSA_SIG_free(es);
                goto out;
            }
            der_len = i2d_ECDSA_SIG(es, &der);
            ECDSA_SIG_free(es);
            if (der_len <= 0) goto out;
            check = der;
            check_len = (size_t)der_len;
        }
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
             EVP_DigestVerify(md, check, check_len, (const unsigned char *)input, input_len) == 1;
        EVP_MD_CTX_free(md);
        OPENSSL_free(der);
    }
out:
    free(sig);
    return ok;
}

/* Header types a bearer token may carry: none, a plain JWT, or an OAuth access
 * token (RFC 9068). Others (e.g. "dpop+jwt", "logout+jwt") are other kinds of
 * token that must not be accepted in their place (RFC 8725 3.11). */
static bool typ_ok(const cJSON *header)
{
    const cJSON *t = json_get(header, "typ");
    if (!t) return true;
    if (!cJSON_IsString(t)) return false;
    return str_ieq(t->valuestring, "JWT") || str_ieq(t->valuestring, "at+jwt") ||
           str_ieq(t->valuestring, "application/at+jwt");
}

static bool verify_token(const auth_ctx *a, const char *token, int64_t now, principal *out, char *why, size_t n,
                         int64_t *valid_until);

/* A token seen before with the same keys is answered from the cache: RS256 and
 * ES256 signatures cost 20–100 µs each, a lookup well under one. */
bool auth_verify(const auth_ctx *a, const char *token, int64_t now, principal *out, char *why, size_t n)
{
    unsigned char hash[32];
    token_hash(token, hash);
    uint64_t gen = __atomic_load_n(&a->keys_gen, __ATOMIC_ACQUIRE);
    if (token_cache_get(a->verified, hash, gen, now, out)) return true;
    int64_t valid_until = 0;
    if (!verify_token(a, token, now, out, why, n, &valid_until)) return false;
    token_cache_put(a->verified, hash, gen, valid_until, out);
    return true;
}

static bool verify_token(const auth_ctx *a, const char *token, int64_t now, principal *out, char *why, size_t n,
                         int64_t *valid_until)
{
    size_t tlen = strlen(token);
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    /* compact JWS: three base64url parts without padding (one encoding per token) */
    if (tlen > 8192 || !d1 || !d2 || strchr(d2 + 1, '.') || d1 == token || d2 == d1 + 1 || d2[1] == '\0' ||
        strchr(token, '=')) {
        snprintf(why, n, "malformed token");
        return false;
    }
    cJSON *header = decode_part(token, (size_t)(d1 - token));
    if (!header) {
        snprintf(why, n, "malformed token header");
        return false;
    }
    bool ok = false;
    cJSON *claims = NULL;
    const char *alg = json_get_str(header, "alg");
    const cJSON *kidv = json_get(header, "kid");
    const char *kid = cJSON_IsString(kidv) ? kidv->valuestring : NULL;
    if (json_get(header, "crit")) {
        snprintf(why, n, "token uses critical header extensions");
        goto done;
    }
    if (kidv && !kid) {
        snprintf(why, n, "kid is not a string");
        goto done;
    }
    /* Parsed strictly (depth-bounded); trusted only after the signature check. */
    claims = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!claims) {
        snprintf(why, n, "malformed token payload");
        goto done;
    }
    if (!typ_ok(header)) {
        snprintf(why, n, "token type (typ) is not JWT or at+jwt");
        goto done;
    }
    EVP_PKEY *pkey = NULL;
    if (alg && strcmp(alg, "HS256") == 0 && a->allow_hs256) {
        /* the configured secret, never a key: no algorithm confusion */
    } else if (alg && ((strcmp(alg, "RS256") == 0 && a->allow_rs256) || (strcmp(alg, "ES256") == 0 && a->allow_es256))) {
        if (!(pkey = key_for(a, kid, alg[0] == 'R' ? KEY_RSA : KEY_EC, why, n))) goto done;
    } else {
        snprintf(why, n, "algorithm not allowed");
        goto done;
    }
    bool verified = signature_ok(alg, a->secret, a->secret_len, pkey, token, (size_t)(d2 - token), d2 + 1,
                                 strlen(d2 + 1));
    EVP_PKEY_free(pkey);
    if (!verified) {
        snprintf(why, n, "signature verification failed");
        goto done;
    }
    if (!auth_check_claims(claims, a->issuer, a->audience, a->leeway, now, why, n)) goto done;
    /* auth_check_claims found exp a finite date: the token is good until then */
    *valid_until = (int64_t)cJSON_GetNumberValue(json_get(claims, "exp")) + a->leeway;
    snprintf(out->sub, sizeof out->sub, "%s", json_get_str(claims, "sub"));
    out->role = auth_roles_from_claims(claims, a->roles_claim, a->role_map);
    ok = true;
done:
    cJSON_Delete(claims);
    cJSON_Delete(header);
    return ok;
}

char *auth_mint_hs256(const char *secret, const char *sub, const char *roles_csv, const char *issuer,
                      const char *audience, int64_t now, int ttl)
{
    if (!secret || !*secret) return NULL;
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0) return NULL;
    cJSON *g = cJSON_CreateObject();
    cJSON_AddStringToObject(g, "sub", sub);
    cJSON_AddNumberToObject(g, "iat", (double)now);
    cJSON_AddNumberToObject(g, "exp", (double)(now + ttl));
    if (issuer && *issuer) cJSON_AddStringToObject(g, "iss", issuer);
    if (audience && *audience) cJSON_AddStringToObject(g, "aud", audience);
    cJSON *roles = cJSON_AddArrayToObject(g, "roles");
    char *r = xstrdup(roles_csv ? roles_csv : "");
    for (char *save = NULL, *t = strtok_r(r, ",", &save); t; t = strtok_r(NULL, ",", &save))
        cJSON_AddItemToArray(roles, cJSON_CreateString(t));
    free(r);
    char *grants = json_dump(g);
    cJSON_Delete(g);
    char *out = NULL;
    if (jwt_add_grants_json(jwt, grants) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)) == 0) {
        char *tok = jwt_encode_str(jwt);
        if (tok) {
            out = xstrdup(tok);
            free(tok);
        }
    }
    free(grants);
    jwt_free(jwt);
    return out;
}
