/* Bearer tokens (auth/jwt.c, jwks.c): JWS parsing, the HS256 signature, the
 * claim checks and the role mapping, with a fixed HS256 configuration. The first
 * byte picks what the rest is:
 *   0  a token as it arrives in the Authorization header;
 *   1  header JSON, 0xFF, payload JSON: the harness signs them with the
 *      configured secret, so the parts behind the signature are reached;
 *   2  a claims object for auth_check_claims / auth_roles_from_claims;
 *   3  a JSON Web Key Set (auth_jwks_parse).
 * Bit 0x80 of the first byte picks the second configuration (issuer and
 * audience required, a nested roles claim and a role map).
 *
 * Properties: an accepted token yields a sub of 1..255 bytes and a role; a
 * correctly signed token is accepted exactly when its header is acceptable
 * (alg HS256, no crit, kid a string if present, typ JWT or at+jwt if present)
 * and its payload is a strict JSON object that passes auth_check_claims, and
 * then its principal is the claims' sub and auth_roles_from_claims' role;
 * accepted claims have a finite exp not in the past (with leeway) and a sub. */
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth_internal.h"
#include "fuzz.h"
#include "subreg/json.h"
#include "subreg/util.h"

#define SECRET "fuzz-secret-fuzz-secret-fuzz-secret-0123"
#define NOW 1750000000
#define LEEWAY 30

static const auth_settings CONFIGS[2] = {
    {.algorithms = "HS256", .hs256_secret = SECRET, .leeway = LEEWAY},
    {.algorithms = "HS256", .hs256_secret = SECRET, .leeway = LEEWAY, .issuer = "https://id.example",
     .audience = "subreg", .roles_claim = "realm_access.roles", .role_map = "ext-admin=admin,ext-edit=editor,r=reader"},
};
static auth_ctx *ctx[2];

static void setup(void)
{
    if (ctx[0]) return;
    for (int i = 0; i < 2; i++) {
        char err[256] = "";
        ctx[i] = auth_new(&CONFIGS[i], err, sizeof err);
        CHECK(ctx[i], "auth_new: %s", err);
    }
}

static cJSON *strict_object(const uint8_t *p, size_t n)
{
    char err[128];
    cJSON *v = json_parse_strict((const char *)p, n, err, sizeof err);
    if (v && !cJSON_IsObject(v)) {
        cJSON_Delete(v);
        v = NULL;
    }
    return v;
}

static bool header_acceptable(const cJSON *h)
{
    const char *alg = json_get_str(h, "alg");
    const cJSON *kid = json_get(h, "kid"), *typ = json_get(h, "typ");
    if (!alg || strcmp(alg, "HS256") != 0 || json_get(h, "crit")) return false;
    if (kid && !cJSON_IsString(kid)) return false;
    if (!typ) return true;
    return cJSON_IsString(typ) && (strcasecmp(typ->valuestring, "JWT") == 0 ||
                                   strcasecmp(typ->valuestring, "at+jwt") == 0 ||
                                   strcasecmp(typ->valuestring, "application/at+jwt") == 0);
}

static void check_principal(const principal *who)
{
    size_t n = strnlen(who->sub, sizeof who->sub);
    CHECK(n >= 1 && n <= 255, "sub of %zu bytes", n);
    CHECK(who->role >= ROLE_NONE && who->role <= ROLE_ADMIN, "role %d", who->role);
}

static void signed_token(int c, const uint8_t *data, size_t size)
{
    const uint8_t *hp, *pp;
    size_t hn, pn;
    fuzz_piece(data, size, 0xFF, 0, &hp, &hn);
    fuzz_piece(data, size, 0xFF, 1, &pp, &pn);
    char *h64 = b64url_encode(hp, hn), *p64 = b64url_encode(pp, pn);
    strbuf tok = {0};
    sb_printf(&tok, "%s.%s", h64, p64);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)tok.data, tok.len, mac, &maclen);
    char *s64 = b64url_encode(mac, maclen);
    sb_printf(&tok, ".%s", s64);

    principal who = {0};
    char why[256] = "";
    bool ok = auth_verify(ctx[c], tok.data, NOW, &who, why, sizeof why);

    cJSON *header = strict_object(hp, hn), *claims = strict_object(pp, pn);
    char why2[256] = "";
    bool claims_ok = claims && auth_check_claims(claims, CONFIGS[c].issuer, CONFIGS[c].audience, LEEWAY, NOW, why2,
                                                 sizeof why2);
    /* empty parts make a malformed token ("a..c"), as do tokens over 8 KiB */
    bool expect = hn && pn && tok.len <= 8192 && header && header_acceptable(header) && claims_ok;
    CHECK(ok == expect, "signed token %s (why: %s; claims: %s)", ok ? "accepted" : "refused", why, why2);
    if (ok) {
        check_principal(&who);
        CHECK(strcmp(who.sub, json_get_str(claims, "sub")) == 0, "sub differs from the claim");
        role r = auth_roles_from_claims(claims, CONFIGS[c].roles_claim ? CONFIGS[c].roles_claim : "roles",
                                        CONFIGS[c].role_map);
        CHECK(who.role == r, "role %d, claims say %d", who.role, r);
    } else {
        CHECK(why[0], "refused without a reason");
    }
    cJSON_Delete(header);
    cJSON_Delete(claims);
    free(h64);
    free(p64);
    free(s64);
    sb_free(&tok);
}

static void claims_only(int c, const uint8_t *data, size_t size)
{
    cJSON *claims = strict_object(data, size);
    if (!claims) return;
    char why[256] = "";
    if (auth_check_claims(claims, CONFIGS[c].issuer, CONFIGS[c].audience, LEEWAY, NOW, why, sizeof why)) {
        const cJSON *exp = json_get(claims, "exp");
        CHECK(cJSON_IsNumber(exp) && isfinite(exp->valuedouble) && exp->valuedouble + LEEWAY >= NOW,
              "accepted without a usable exp");
        const char *sub = json_get_str(claims, "sub");
        CHECK(sub && *sub && strlen(sub) <= 255, "accepted without a usable sub");
        if (CONFIGS[c].issuer) CHECK(strcmp(json_get_str(claims, "iss"), CONFIGS[c].issuer) == 0, "wrong issuer");
    } else {
        CHECK(why[0], "refused without a reason");
    }
    static const char *const paths[] = {"roles", "realm_access.roles", "a..b.", "."};
    for (int i = 0; i < 4; i++) {
        role r = auth_roles_from_claims(claims, paths[i], i % 2 ? CONFIGS[1].role_map : NULL);
        CHECK(r >= ROLE_NONE && r <= ROLE_ADMIN, "role %d", r);
    }
    cJSON_Delete(claims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1) return 0;
    int c = data[0] >> 7;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    switch (data[0] & 3) {
    case 0: {
        char *token = fuzz_cstr(rest, n);
        principal who = {0};
        char why[256] = "";
        if (auth_verify(ctx[c], token, NOW, &who, why, sizeof why)) check_principal(&who);
        else CHECK(why[0], "refused without a reason");
        free(token);
        break;
    }
    case 1: signed_token(c, rest, n); break;
    case 2: claims_only(c, rest, n); break;
    default: {
        auth_key *keys = NULL;
        char err[256] = "";
        int k = auth_jwks_parse((const char *)rest, n, &keys, err, sizeof err);
        CHECK(k >= -1 && k <= AUTH_JWKS_MAX_KEYS, "%d keys", k);
        if (k < 0) CHECK(err[0], "refused without a reason");
        for (int i = 0; i < k; i++) CHECK(keys[i].pkey, "key %d without a public key", i);
        if (k >= 0) auth_keys_free(keys, k);
        break;
    }
    }
    return 0;
}
