/* json: the strict parser and the JSON <-> BSON mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "subreg/json.h"
#include "subreg/write.h"

static cJSON *parse(const char *s)
{
    char err[128];
    return json_parse_strict(s, strlen(s), err, sizeof err);
}

static void test_accepts_plain_json(void **state)
{
    (void)state;
    cJSON *v = parse("{\"a\": [1, 2.5, \"x\", true, null, -0.5e+3, 0, 10E2], \"b\": {\"c\": \"\\u00fc 01\"}}");
    assert_non_null(v);
    assert_string_equal(json_get_str(json_get(v, "b"), "c"), "ü 01");
    cJSON_Delete(v);
}

static void test_refuses_ambiguous_input(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "{\"a\":1} trailing",
        "{\"a\":1}{\"b\":2}",
        "{\"a\":1,\"a\":2}",
        "{\"o\":{\"k\":1,\"k\":1}}",
        "{\"a\":\"x\\u0000y\"}",
        "{\"a\":\"\xc3\x28\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":1,}",
        "{'a':1}",
        "{\"n\":01}",
        "{\"n\":1.}",
        "{\"n\":.5}",
        "{\"n\":+1}",
        "{\"n\":-}",
        "{\"n\":1e}",
        "{\"n\":0x10}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[128] = "";
        cJSON *v = json_parse_strict(bad[i], strlen(bad[i]), err, sizeof err);
        if (v) fail_msg("accepted: %s", bad[i]);
        assert_true(strlen(err) > 0);
    }
}

/* Errors name the place by JSON pointer (RFC 6901 escaping, array indexes). */
static void test_error_pointers(void **state)
{
    (void)state;
    static const struct {
        const char *in, *err;
    } cases[] = {
        {"{\"a\":1,\"a\":2}", "duplicate key \"a\" at /a"},
        {"{\"a/b\":{\"x~\":1,\"x~\":2}}", "duplicate key \"x~\" at /a~1b/x~0"},
        {"{\"l\":[{},{\"k\":1,\"k\":1}]}", "duplicate key \"k\" at /l/1/k"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[160] = "";
        assert_null(json_parse_strict(cases[i].in, strlen(cases[i].in), err, sizeof err));
        assert_string_equal(err, cases[i].err);
    }
}

/* Nesting is bounded: 64 levels parse, 65 do not, and 100,000 (which would
 * overflow a thread's stack inside cJSON) are refused before cJSON sees them. */
static void test_nesting_depth(void **state)
{
    (void)state;
    size_t deep = 100000;
    char *buf = malloc(2 * deep + 1);
    char err[128];
    for (size_t levels = JSON_MAX_DEPTH; levels <= JSON_MAX_DEPTH + 1; levels++) {
        memset(buf, '[', levels);
        memset(buf + levels, ']', levels);
        cJSON *v = json_parse_strict(buf, 2 * levels, err, sizeof err);
        if (levels == JSON_MAX_DEPTH) {
            assert_non_null(v);
        } else {
            assert_null(v);
            assert_string_equal(err, "invalid JSON: nested deeper than 64 levels");
        }
        cJSON_Delete(v);
    }
    memset(buf, '{', deep); /* unbalanced too: refused by depth before anything else */
    assert_null(json_parse_strict(buf, deep, err, sizeof err));
    /* brackets inside strings do not count */
    const char *str = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}";
    cJSON *v = json_parse_strict(str, strlen(str), err, sizeof err);
    assert_non_null(v);
    cJSON_Delete(v);
    free(buf);
}

static void test_case_sensitive_lookup(void **state)
{
    (void)state;
    cJSON *v = parse("{\"Name\": 1}");
    assert_null(json_get(v, "name"));
    assert_non_null(json_get(v, "Name"));
    cJSON_Delete(v);
}

static void test_bson_round_trip(void **state)
{
    (void)state;
    const char *src = "{\"s\":\"ü\",\"i\":42,\"big\":9007199254740991,\"d\":1.5,\"t\":true,\"n\":null,"
                      "\"arr\":[1,{\"x\":\"y\"}],\"o\":{\"k\":[]}}";
    cJSON *v = parse(src);
    bson_t b = BSON_INITIALIZER;
    assert_true(json_to_bson(v, &b));
    bson_iter_t it;
    assert_true(bson_iter_init_find(&it, &b, "i"));
    assert_int_equal(bson_iter_type(&it), BSON_TYPE_INT64);
    cJSON *back = bson_to_json(&b);
    assert_true(cJSON_Compare(v, back, 1));
    cJSON_Delete(back);
    bson_destroy(&b);
    cJSON_Delete(v);
}

static void test_refuses_operator_keys(void **state)
{
    (void)state;
    const char *bad[] = {"{\"$where\":1}", "{\"a.b\":1}", "{\"o\":{\"$gt\":1}}"};
    for (int i = 0; i < 3; i++) {
        cJSON *v = parse(bad[i]);
        assert_non_null(v);
        bson_t b = BSON_INITIALIZER;
        assert_false(json_to_bson(v, &b));
        bson_destroy(&b);
        cJSON_Delete(v);
    }
}

/* A page written as text (bson_write_api_json) says exactly what the tree path
 * (bson_to_json, "_id" → "id", doc_public, json_dump) says. */
static void test_api_text_equals_tree(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{\"a\":\"plain\",\"b\":1,\"c\":-2.5,\"d\":true,\"e\":null,\"f\":[1,\"x\",{\"g\":[]}],\"h\":{}}",
        "{\"q\":\"quote \\\" back \\\\ slash / \\b\\f\\n\\r\\t \\u0001 \\u001f end\",\"u\":\"Zürich – 東京 😀\"}",
        "{\"n1\":0.1,\"n2\":1e300,\"n3\":1700000000000,\"n4\":123456789012345678,\"n5\":-0.0,\"n6\":3.141592653589793}",
        "{\"_seed_hash\":\"internal\",\"visible\":{\"_nested\":\"kept\"},\"_x\":1}",
        "{}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        char err[128];
        cJSON *j = json_parse_strict(docs[i], strlen(docs[i]), err, sizeof err);
        if (!j) fail_msg("%s: %s", docs[i], err);
        bson_t b = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&b, "_id", "sp_0123");
        assert_true(json_to_bson(j, &b));
        BSON_APPEND_INT32(&b, "version", 7);
        BSON_APPEND_DATE_TIME(&b, "when", 1700000000123);
        /* the tree path (what store_list gives, then doc_public) */
        cJSON *tree = doc_public(bson_to_api_json(&b));
        char *want = json_dump(tree);
        /* the text path */
        strbuf got = {0};
        bson_write_api_json(&b, &got);
        sb_append(&got, "", 1);
        assert_string_equal(got.data, want);
        sb_free(&got);
        free(want);
        cJSON_Delete(tree);
        bson_destroy(&b);
        cJSON_Delete(j);
    }
}

/* The text path skips plain text 8 bytes at a time: every byte that needs
 * escaping is found at every position of a word, next to every byte value. */
static void test_api_text_escapes_at_every_position(void **state)
{
    (void)state;
    static const char specials[] = {'"', '\\', '\n', 0x01, 0x1f, 0x7f, ' ', '!', '#', '[', ']', (char)0xc3, 0};
    for (const char *sp = specials; *sp; sp++) {
        for (size_t len = 1; len <= 27; len++) {
            for (size_t at = 0; at < len; at++) {
                char text[32];
                memset(text, 'a', len);
                text[len] = '\0';
                text[at] = *sp;
                if ((unsigned char)*sp == 0xc3) {
                    if (at + 1 >= len) continue;
                    text[at + 1] = (char)0xbc; /* ü */
                }
                bson_t b = BSON_INITIALIZER;
                BSON_APPEND_UTF8(&b, "_id", "x");
                BSON_APPEND_UTF8(&b, "s", text);
                cJSON *tree = doc_public(bson_to_api_json(&b));
                char *want = json_dump(tree);
                strbuf got = {0};
                bson_write_api_json(&b, &got);
                sb_append(&got, "", 1);
                if (strcmp(got.data, want) != 0) fail_msg("byte 0x%02x at %zu of %zu: %s vs %s", (unsigned char)*sp, at, len, got.data, want);
                sb_free(&got);
                free(want);
                cJSON_Delete(tree);
                bson_destroy(&b);
            }
        }
    }
}

/* The index answers what a scan of the array answers: the first element with the
 * key, and all of them in array order; elements without the key are not in it. */
static void test_index_matches_scan(void **state)
{
    (void)state;
    cJSON *arr = cJSON_Parse("[{\"id\":\"b\",\"n\":1},{\"id\":\"a\",\"n\":2},{\"n\":3},"
                             "{\"id\":\"b\",\"n\":4},{\"id\":\"c\",\"n\":5},{\"id\":\"b\",\"n\":6}]");
    json_index ix;
    json_index_build(&ix, arr, "id");
    assert_int_equal(ix.n, 5);
    const char *keys[] = {"a", "b", "c", "d", "", NULL};
    for (int i = 0; i < 6; i++) assert_ptr_equal(json_index_find(&ix, keys[i]), json_find_by_id(arr, keys[i]));
    const json_index_entry *e;
    size_t k = json_index_range(&ix, "b", &e);
    assert_int_equal(k, 3);
    int want[] = {1, 4, 6};
    for (size_t i = 0; i < k; i++) assert_int_equal(json_get(e[i].item, "n")->valueint, want[i]);
    assert_int_equal(json_index_range(&ix, "bb", &e), 0);
    assert_null(e);
    json_index_free(&ix);
    json_index empty;
    json_index_build(&empty, NULL, "id");
    assert_null(json_index_find(&empty, "a"));
    json_index_free(&empty);
    cJSON_Delete(arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_plain_json),   cmocka_unit_test(test_refuses_ambiguous_input),
        cmocka_unit_test(test_case_sensitive_lookup), cmocka_unit_test(test_bson_round_trip),
        cmocka_unit_test(test_refuses_operator_keys), cmocka_unit_test(test_nesting_depth),
        cmocka_unit_test(test_error_pointers),        cmocka_unit_test(test_api_text_equals_tree),
        cmocka_unit_test(test_api_text_escapes_at_every_position),
        cmocka_unit_test(test_index_matches_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
