/* auth: claim checks, roles from a claim path, and whole-token verification
 * including the attacks libjwt alone lets through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "subreg/auth.h"
#include "subreg/json.h"
#include "subreg/util.h"

#define NOW 1800000000
#define SECRET "0123456789abcdef0123456789abcdef-unit"

static bool claims_ok(const char *json, const char *iss, const char *aud)
{
    cJSON *c = cJSON_Parse(json);
    char why[128];
    bool ok = auth_check_claims(c, iss, aud, 60, NOW, why, sizeof why);
    cJSON_Delete(c);
    return ok;
}

static void test_exp_nbf_iat(void **state)
{
    (void)state;
    assert_true(claims_ok("{\"sub\":\"a\",\"exp\":1800000100}", NULL, NULL));
    assert_false(claims_ok("{\"sub\":\"a\"}", NULL, NULL));                      /* exp required */
    assert_false(claims_ok("{\"sub\":\"a\",\"exp\":\"1800000100\"}", NULL, NULL)); /* not a number */
    assert_true(claims_ok("{\"sub\":\"a\",\"exp\":1799999950}", NULL, NULL));     /* expired, within leeway */
    assert_false(claims_ok("{\"sub\":\"a\",\"exp\":1799999939}", NULL, NULL));    /* beyond leeway */
    assert_true(claims_ok("{\"sub\":\"a\",\"exp\":1800000100,\"nbf\":1800000050}", NULL, NULL));
    assert_false(claims_ok("{\"sub\":\"a\",\"exp\":1800000900,\"nbf\":1800000061}", NULL, NULL));
    assert_false(claims_ok("{\"sub\":\"a\",\"exp\":1800000900,\"iat\":1800000500}", NULL, NULL));
    assert_false(claims_ok("{\"exp\":1800000100}", NULL, NULL)); /* sub required */
    /* NumericDates are finite dates from 1970 to 9999: 1e400 (infinity) never expired */
    assert_false(claims_ok("{\"sub\":\"a\",\"exp\":1e400}", NULL, NULL));
    assert_false(claims_ok("{\"sub\":\"a\",\"exp\":253402300800}", NULL, NULL));
    assert_true(claims_ok("{\"sub\":\"a\",\"exp\":253402300799}", NULL, NULL));
    assert_false(claims_ok("{\"sub\":\"a\",\"exp\":1800000100,\"nbf\":-1e400}", NULL, NULL));
    assert_false(claims_ok("{\"sub\":\"a\",\"exp\":1800000100,\"iat\":-1}", NULL, NULL));
}

static void test_iss_aud(void **state)
{
    (void)state;
#define base "{\"sub\":\"a\",\"exp\":1800000100,\"iss\":\"https://idp\",\"aud\":%s}"
    char buf[256];
    snprintf(buf, sizeof buf, base, "\"subreg\"");
    assert_true(claims_ok(buf, "https://idp", "subreg"));
    assert_false(claims_ok(buf, "https://other", "subreg"));
    assert_false(claims_ok(buf, "https://idp", "other"));
    snprintf(buf, sizeof buf, base, "[\"x\",\"subreg\"]");
    assert_true(claims_ok(buf, "https://idp", "subreg"));
    snprintf(buf, sizeof buf, base, "[\"x\",\"y\"]");
    assert_false(claims_ok(buf, "https://idp", "subreg"));
    snprintf(buf, sizeof buf, base, "[]");
    assert_false(claims_ok(buf, NULL, "subreg"));
    assert_true(claims_ok(buf, NULL, NULL)); /* unchecked when not configured */
#undef base
}

static role roles_of(const char *json, const char *path, const char *map)
{
    cJSON *c = cJSON_Parse(json);
    role r = auth_roles_from_claims(c, path, map);
    cJSON_Delete(c);
    return r;
}

static void test_roles(void **state)
{
    (void)state;
    assert_int_equal(roles_of("{\"roles\":[\"reader\"]}", "roles", NULL), ROLE_READER);
    assert_int_equal(roles_of("{\"roles\":[\"reader\",\"admin\"]}", "roles", NULL), ROLE_ADMIN);
    assert_int_equal(roles_of("{\"roles\":[\"Admin\"]}", "roles", NULL), ROLE_NONE);
    assert_int_equal(roles_of("{}", "roles", NULL), ROLE_NONE);
    assert_int_equal(roles_of("{\"realm_access\":{\"roles\":[\"editor\"]}}", "realm_access.roles", NULL), ROLE_EDITOR);
    assert_int_equal(roles_of("{\"scope\":\"openid subreg.edit\"}", "scope", "subreg.read=reader,subreg.edit=editor"),
                     ROLE_EDITOR);
    assert_int_equal(roles_of("{\"scope\":\"openid editor\"}", "scope", "subreg.edit=editor"), ROLE_NONE);
    assert_int_equal(roles_of("{\"roles\":\"admin\"}", "roles.x", NULL), ROLE_NONE);
}

/* ---- whole tokens ---- */

static char *b64(const char *s)
{
    return b64url_encode(s, strlen(s));
}

static char *hs256_token(const char *header, const char *payload, const void *key, size_t keylen)
{
    char *h = b64(header), *p = b64(payload);
    strbuf sb = {0};
    sb_printf(&sb, "%s.%s", h, p);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)sb.data, sb.len, mac, &maclen);
    char *sig = b64url_encode(mac, maclen);
    sb_printf(&sb, ".%s", sig);
    free(h);
    free(p);
    free(sig);
    return sb.data;
}

static char rsa_path[64];
static char *rsa_pem;

static int make_rsa_key(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_RSA_gen(2048);
    snprintf(rsa_path, sizeof rsa_path, "/tmp/subreg-unit-%d.pem", getpid());
    FILE *f = fopen(rsa_path, "w");
    PEM_write_PUBKEY(f, k);
    fclose(f);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, k);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    rsa_pem = xstrndup(data, (size_t)n);
    BIO_free(bio);
    EVP_PKEY_free(k);
    return 0;
}

static int drop_rsa_key(void **state)
{
    (void)state;
    unlink(rsa_path);
    free(rsa_pem);
    return 0;
}

static auth_ctx *make_auth(const char *algs)
{
    char keys[128];
    snprintf(keys, sizeof keys, "rsa1=%s", rsa_path);
    auth_settings s = {.algorithms = algs, .hs256_secret = SECRET, .public_keys = keys, .leeway = 60,
                       .roles_claim = "roles", .issuer = "https://idp", .audience = "subreg"};
    char err[256];
    auth_ctx *a = auth_new(&s, err, sizeof err);
    if (!a) fail_msg("auth_new: %s", err);
    return a;
}

static const char *PAYLOAD = "{\"sub\":\"alice\",\"exp\":1800000100,\"iss\":\"https://idp\",\"aud\":\"subreg\","
                             "\"roles\":[\"editor\"]}";

static void test_valid_hs256(void **state)
{
    (void)state;
    auth_ctx *a = make_auth("HS256,RS256");
    char *tok = hs256_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", PAYLOAD, SECRET, strlen(SECRET));
    principal p;
    char why[128];
    assert_true(auth_verify(a, tok, NOW, &p, why, sizeof why));
    assert_string_equal(p.sub, "alice");
    assert_int_equal(p.role, ROLE_EDITOR);
    free(tok);
    auth_free(a);
}

/* Verified tokens are remembered (auth_internal.h), but never past their exp,
 * and a changed token is a different token. */
static void test_remembered_tokens(void **state)
{
    (void)state;
    auth_ctx *a = make_auth("HS256,RS256");
    char *tok = hs256_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", PAYLOAD, SECRET, strlen(SECRET));
    principal p;
    char why[128];
    assert_true(auth_verify(a, tok, NOW, &p, why, sizeof why));
    assert_true(auth_verify(a, tok, NOW + 1, &p, why, sizeof why));
    assert_string_equal(p.sub, "alice");
    assert_int_equal(p.role, ROLE_EDITOR);
    assert_true(auth_verify(a, tok, 1800000160, &p, why, sizeof why));  /* exp + leeway */
    assert_false(auth_verify(a, tok, 1800000161, &p, why, sizeof why)); /* expired, cached or not */
    char *tampered = xstrdup(tok);
    char *last = tampered + strlen(tampered) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    assert_false(auth_verify(a, tampered, NOW, &p, why, sizeof why));
    free(tampered);
    free(tok);
    auth_free(a);
}

static void test_attacks(void **state)
{
    (void)state;
    auth_ctx *a = make_auth("HS256,RS256");
    principal p;
    char why[128];
    /* alg confusion: HS256 keyed with the RSA public key the server trusts. */
    char *t1 = hs256_token("{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", PAYLOAD, rsa_pem, strlen(rsa_pem));
    assert_false(auth_verify(a, t1, NOW, &p, why, sizeof why));
    /* alg none, with and without a signature part */
    char *h = b64("{\"alg\":\"none\"}"), *pl = b64(PAYLOAD);
    strbuf none = {0};
    sb_printf(&none, "%s.%s.", h, pl);
    assert_false(auth_verify(a, none.data, NOW, &p, why, sizeof why));
    sb_puts(&none, "AAAA");
    assert_false(auth_verify(a, none.data, NOW, &p, why, sizeof why));
    /* RS256 header on an HMAC signature */
    char *t2 = hs256_token("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PAYLOAD, SECRET, strlen(SECRET));
    assert_false(auth_verify(a, t2, NOW, &p, why, sizeof why));
    /* wrong secret */
    char *t3 = hs256_token("{\"alg\":\"HS256\"}", PAYLOAD, "another-secret-another-secret-xx", 32);
    assert_false(auth_verify(a, t3, NOW, &p, why, sizeof why));
    /* tampered payload: sign one payload, swap in another */
    char *t4 = hs256_token("{\"alg\":\"HS256\"}", PAYLOAD, SECRET, strlen(SECRET));
    char *evil = b64("{\"sub\":\"alice\",\"exp\":1800000100,\"iss\":\"https://idp\",\"aud\":\"subreg\","
                     "\"roles\":[\"admin\"]}");
    char *d1 = strchr(t4, '.'), *d2 = strchr(d1 + 1, '.');
    strbuf tam = {0};
    sb_append(&tam, t4, (size_t)(d1 - t4) + 1);
    sb_puts(&tam, evil);
    sb_puts(&tam, d2);
    assert_false(auth_verify(a, tam.data, NOW, &p, why, sizeof why));
    /* HS256 not on the allow-list */
    auth_ctx *rs_only = make_auth("RS256");
    assert_false(auth_verify(rs_only, t4, NOW, &p, why, sizeof why));
    assert_string_equal(why, "algorithm not allowed");
    /* garbage */
    assert_false(auth_verify(a, "a.b.c", NOW, &p, why, sizeof why));
    assert_false(auth_verify(a, "", NOW, &p, why, sizeof why));
    assert_false(auth_verify(a, "....", NOW, &p, why, sizeof why));
    free(t1);
    free(t2);
    free(t3);
    free(t4);
    free(evil);
    free(h);
    free(pl);
    sb_free(&none);
    sb_free(&tam);
    auth_free(rs_only);
    auth_free(a);
}

static void test_config_errors(void **state)
{
    (void)state;
    char err[256];
    auth_settings s = {.algorithms = "HS256,PS512", .hs256_secret = SECRET};
    assert_null(auth_new(&s, err, sizeof err));
    assert_non_null(strstr(err, "SUBREG_JWT_ALGORITHMS"));
    auth_settings s2 = {.algorithms = "HS256", .hs256_secret = "short"};
    assert_null(auth_new(&s2, err, sizeof err));
    assert_non_null(strstr(err, "SUBREG_JWT_HS256_SECRET"));
    auth_settings s3 = {.algorithms = "RS256", .public_keys = "/nonexistent.pem"};
    assert_null(auth_new(&s3, err, sizeof err));
    assert_non_null(strstr(err, "SUBREG_JWT_PUBLIC_KEYS"));
    auth_settings s4 = {.algorithms = "HS256", .hs256_secret = SECRET, .role_map = "x=superuser"};
    assert_null(auth_new(&s4, err, sizeof err));
    assert_non_null(strstr(err, "SUBREG_JWT_ROLE_MAP"));
}

static void test_minted_token_verifies(void **state)
{
    (void)state;
    char *tok = auth_mint_hs256(SECRET, "bob", "reader,admin", "https://idp", "subreg", NOW, 300);
    assert_non_null(tok);
    auth_ctx *a = make_auth("HS256");
    principal p;
    char why[128];
    assert_true(auth_verify(a, tok, NOW + 100, &p, why, sizeof why));
    assert_int_equal(p.role, ROLE_ADMIN);
    assert_false(auth_verify(a, tok, NOW + 400, &p, why, sizeof why)); /* 300 s + 60 s leeway */
    free(tok);
    auth_free(a);
}

/* JWKS: keys generated once with Python's cryptography; the PEMs are what it
 * exports for the same public keys, so the conversion is checked bit for bit. */
#define RSA_N "5AVr8p8r2M0kNuCgdP9HWQoPyj2nNZ2mpwapbPPp38eMDVQCybmuu0tk5eSP4F7DswZVbZ88DQ71EzJOWYy6tOUyDkemh-aMtcDYovq_RouD1LMsTI56P6TjAM9b8Gk6WwwX_DQHkIE7krrGYAk170LS4fHgWfj4PW-XXiBqpdQIHiq6B3tnMcE2Bl5c5kBabaQ_hE4gB616GBufj64NR9yu7wp0qD9DskJ38FJwntfGZ16LAqNRm7bBEc2gZtCEgLsjXJt5KyCVrzP8QHcCqk2AFNMbhjwhc7TF0jIcKwiOb8XWuVcQMQgiX9rf1j8ey6jN7m97lW07iVb85Muuhw"
#define EC_X "ZjKjkNisC5bJ40MGepwBNqHYutzFpHl_gnPcaamLonI"
#define EC_Y "0qtSosVRGhDyrjk0n03WWVU5_dRbGkxTZG-x9Y-OzcY"
#define RSA1024_N "qmtr9O2puIhWrK_8phxtQ54osKUf2OtQ64j3_XfiVHhviZitAkSJMbsE9FQ5p8r5j6mQrx4WGgfkNkmX4PKblT1mj6vQo9NsCnRlkJIjEpj3oAza7BHRSzgBWSUdvdBSeK3m2EUu0cwhCLbY6fJpn3bFWyBPbtXIsF3cKXXIjc0"
static const char RSA_PEM[] =
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA5AVr8p8r2M0kNuCgdP9H\n"
    "WQoPyj2nNZ2mpwapbPPp38eMDVQCybmuu0tk5eSP4F7DswZVbZ88DQ71EzJOWYy6\ntOUyDkemh+aMtcDYovq/RouD1LMsTI56P6TjAM9b8Gk6WwwX/DQHkIE7krrGYAk1\n"
    "70LS4fHgWfj4PW+XXiBqpdQIHiq6B3tnMcE2Bl5c5kBabaQ/hE4gB616GBufj64N\nR9yu7wp0qD9DskJ38FJwntfGZ16LAqNRm7bBEc2gZtCEgLsjXJt5KyCVrzP8QHcC\n"
    "qk2AFNMbhjwhc7TF0jIcKwiOb8XWuVcQMQgiX9rf1j8ey6jN7m97lW07iVb85Muu\nhwIDAQAB\n-----END PUBLIC KEY-----\n";
static const char EC_PEM[] =
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZjKjkNisC5bJ40MGepwBNqHYutzF\n"
    "pHl/gnPcaamLonLSq1KixVEaEPKuOTSfTdZZVTn91FsaTFNkb7H1j47Nxg==\n-----END PUBLIC KEY-----\n";

/* The key, exported as SPKI PEM, is exactly the one cryptography exported. */
static void assert_pem(EVP_PKEY *pkey, const char *pem)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    assert_int_equal(len, strlen(pem));
    assert_memory_equal(data, pem, strlen(pem));
    BIO_free(bio);
}

static int parse(const char *json, auth_key **keys, char *err)
{
    return auth_jwks_parse(json, strlen(json), keys, err, 200);
}

static void test_jwks_keys_become_pem(void **state)
{
    (void)state;
    /* what an identity provider publishes: signing keys next to an encryption
     * key, a symmetric key and a key for another algorithm, which are skipped */
    const char *set = "{\"keys\":["
                      "{\"kty\":\"RSA\",\"use\":\"enc\",\"alg\":\"RSA-OAEP\",\"kid\":\"enc1\",\"n\":\"" RSA_N "\",\"e\":\"AQAB\"},"
                      "{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"r1\",\"n\":\"" RSA_N "\",\"e\":\"AQAB\","
                      "\"x5c\":[\"ignored\"]},"
                      "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"o1\"},"
                      "{\"kty\":\"RSA\",\"alg\":\"PS256\",\"kid\":\"ps\",\"n\":\"" RSA_N "\",\"e\":\"AQAB\"},"
                      "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"p384\",\"x\":\"" EC_X "\",\"y\":\"" EC_Y "\"},"
                      "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e1\",\"x\":\"" EC_X "\",\"y\":\"" EC_Y "\"},"
                      "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" EC_X "\",\"y\":\"" EC_Y "\"}]}";
    auth_key *keys;
    char err[200] = "";
    int n = parse(set, &keys, err);
    assert_int_equal(n, 3);
    assert_string_equal(keys[0].kid, "r1");
    assert_int_equal(keys[0].kind, KEY_RSA);
    assert_pem(keys[0].pkey, RSA_PEM);
    assert_string_equal(keys[1].kid, "e1");
    assert_int_equal(keys[1].kind, KEY_EC);
    assert_pem(keys[1].pkey, EC_PEM);
    assert_null(keys[2].kid);
    assert_int_equal(keys[2].kind, KEY_EC);
    auth_keys_free(keys, n);
}

static void test_jwks_errors(void **state)
{
    (void)state;
    static const struct {
        const char *set, *why;
    } cases[] = {
        {"[]", "not a JSON Web Key Set"},
        {"{\"keys\":{}}", "not a JSON Web Key Set"},
        {"{\"keys\":[", "not a JSON Web Key Set"},
        {"{\"keys\":[]}", "no usable RS256 or ES256 signing key"},
        {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", "no usable RS256 or ES256 signing key"},
        {"{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"short\",\"n\":\"" RSA1024_N "\",\"e\":\"AQAB\"}]}", "shorter than 2048"},
        {"{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"x\",\"n\":\"" RSA_N "\"}]}", "without valid base64url n and e"},
        {"{\"keys\":[{\"kty\":\"RSA\",\"kid\":7,\"n\":\"" RSA_N "\",\"e\":\"AQAB\"}]}", "kid is not a string"},
        /* y of another point: not on the curve */
        {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" EC_X "\",\"y\":\"" EC_X "\"}]}", "not"},
        {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"" EC_Y "\"}]}", "32-byte"},
    };
    /* an unusable key next to a good one is skipped, the set stays usable */
    {
        auth_key *keys;
        char err[200] = "";
        const char *set = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"legacy\",\"n\":\"" RSA1024_N "\",\"e\":\"AQAB\"},"
                          "{\"kty\":\"RSA\",\"kid\":\"x\",\"n\":\"" RSA_N "\"},"
                          "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e1\",\"x\":\"" EC_X "\",\"y\":\"" EC_Y "\"}]}";
        assert_int_equal(parse(set, &keys, err), 1);
        assert_string_equal(keys[0].kid, "e1");
        auth_keys_free(keys, 1);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        auth_key *keys = (auth_key *)1;
        char err[200] = "";
        assert_int_equal(parse(cases[i].set, &keys, err), -1);
        assert_null(keys);
        if (!strstr(err, cases[i].why)) fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].why);
    }
}

/* A verifier built from a JWKS file accepts what the key set names. */
static void test_jwks_file_settings(void **state)
{
    (void)state;
    char path[] = "/tmp/subreg-jwks-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *set = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e1\",\"x\":\"" EC_X "\",\"y\":\"" EC_Y "\"}]}";
    assert_int_equal(write(fd, set, strlen(set)), (ssize_t)strlen(set));
    close(fd);
    char err[300] = "";
    auth_settings s = {.algorithms = "ES256", .jwks = path, .jwks_refresh_s = 300, .leeway = 60};
    auth_ctx *a = auth_new(&s, err, sizeof err);
    assert_non_null(a);
    auth_free(a);
    /* plain http to another machine is refused; a missing file names the variable */
    static const char *const not_loopback[] = {"http://idp.example/jwks.json", "http://localhost:80@evil.example/k",
                                               "http://127.0.0.1.evil.example/k", "http://user@127.0.0.1/k"};
    for (size_t i = 0; i < sizeof not_loopback / sizeof not_loopback[0]; i++) {
        s.jwks = not_loopback[i];
        assert_null(auth_new(&s, err, sizeof err));
        if (!strstr(err, "SUBREG_JWT_JWKS: plain http")) fail_msg("%s: %s", not_loopback[i], err);
    }
    unlink(path);
    s.jwks = path;
    assert_null(auth_new(&s, err, sizeof err));
    assert_non_null(strstr(err, "SUBREG_JWT_JWKS: cannot read"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp_nbf_iat),
        cmocka_unit_test(test_iss_aud),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_valid_hs256),
        cmocka_unit_test(test_remembered_tokens),
        cmocka_unit_test(test_attacks),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_minted_token_verifies),
        cmocka_unit_test(test_jwks_keys_become_pem),
        cmocka_unit_test(test_jwks_errors),
        cmocka_unit_test(test_jwks_file_settings),
    };
    return cmocka_run_group_tests(tests, make_rsa_key, drop_rsa_key);
}
