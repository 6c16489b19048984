/* schema: validation of the subprocessor descriptor, defaults, merge patch, the
 * lifecycle rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "subreg/json.h"
#include "subreg/resource.h"

static const char *VALID =
    "{\"legal_name\":\"Odoo S.A.\",\"hq_country\":\"BE\",\"category\":\"erp_billing\","
    "\"purpose\":{\"de\":\"ERP\",\"en\":\"ERP\"},\"data_categories\":[\"erp_billing\"],"
    "\"data_subjects\":[\"customers\"],\"locations\":[{\"country\":\"FR\",\"role\":\"hosting\"}]}";

static cJSON *valid_doc(void)
{
    cJSON *d = cJSON_Parse(VALID);
    schema_apply_defaults(RES_SUBPROCESSOR.fields, d);
    return d;
}

/* Applies a merge patch to the valid document and returns the pointers of the
 * failures, joined by spaces ("" when valid). */
static char *errors_after(const char *patch)
{
    static char out[1024];
    cJSON *d = valid_doc();
    cJSON *p = cJSON_Parse(patch);
    assert_non_null(p);
    merge_patch(d, p);
    verrors e;
    verrors_init(&e);
    schema_validate(RES_SUBPROCESSOR.fields, d, &e);
    out[0] = '\0';
    for (cJSON *c = e.list->child; c; c = c->next) {
        if (out[0]) strcat(out, " ");
        strcat(out, json_get_str(c, "pointer"));
    }
    verrors_free(&e);
    cJSON_Delete(p);
    cJSON_Delete(d);
    return out;
}

static void test_valid_document_and_defaults(void **state)
{
    (void)state;
    cJSON *d = valid_doc();
    verrors e;
    verrors_init(&e);
    assert_true(schema_validate(RES_SUBPROCESSOR.fields, d, &e));
    assert_int_equal(e.count, 0);
    assert_string_equal(json_get_str(d, "status"), "proposed");
    assert_string_equal(json_get_str(d, "role"), "subprocessor");
    assert_true(cJSON_IsTrue(json_get(json_get(d, "public"), "listed")));
    verrors_free(&e);
    cJSON_Delete(d);
}

static void test_each_failure_has_its_pointer(void **state)
{
    (void)state;
    struct {
        const char *patch, *pointers;
    } cases[] = {
        {"{\"legal_name\":null}", "/legal_name"},
        {"{\"legal_name\":\"\"}", "/legal_name"},
        {"{\"legal_name\":5}", "/legal_name"},
        {"{\"unknown\":1}", "/unknown"},
        {"{\"id\":\"x\"}", "/id"},
        {"{\"version\":3}", "/version"},
        {"{\"category\":\"cloud\"}", "/category"},
        {"{\"hq_country\":\"XX\"}", "/hq_country"},
        {"{\"hq_country\":\"de\"}", "/hq_country"},
        {"{\"hq_country\":\"DEU\"}", "/hq_country"},
        {"{\"last_review_on\":\"2026-02-30\"}", "/last_review_on"},
        {"{\"website\":\"ftp://example.com\"}", "/website"},
        {"{\"website\":\"https://exa mple.com\"}", "/website"},
        {"{\"website\":\"https://user@example.com/\"}", "/website"},
        {"{\"privacy_contact\":{\"email\":\"not-an-email\"}}", "/privacy_contact/email"},
        {"{\"privacy_contact\":{\"mail\":\"a@b.de\"}}", "/privacy_contact/mail"},
        {"{\"purpose\":{\"de\":\"x\",\"en\":null}}", "/purpose/en"},
        {"{\"purpose\":{\"de\":\"x\",\"en\":\"y\",\"fr\":\"z\"}}", "/purpose/fr"},
        {"{\"data_categories\":[\"erp_billing\",\"erp_billing\"]}", "/data_categories/1"},
        {"{\"data_categories\":[]}", "/data_categories"},
        {"{\"data_subjects\":[\"robots\"]}", "/data_subjects/0"},
        {"{\"locations\":[{\"country\":\"FR\",\"role\":\"hosting\",\"foo\":1}]}", "/locations/0/foo"},
        {"{\"locations\":[{\"country\":\"FR\"}]}", "/locations/0/role"},
        {"{\"identifiers\":{\"lei\":\"529900T8BM49AURSDO56\"}}", "/identifiers/lei"},
        {"{\"identifiers\":{\"vat_id\":\"123\"}}", "/identifiers/vat_id"},
        {"{\"dpf\":{\"verified_on\":\"2026-01-01\"}}", "/dpf/participating"},
        {"{\"public\":{\"listed\":\"yes\"}}", "/public/listed"},
        {"{\"legal_name\":\"a\\u0001b\"}", "/legal_name"},
        {"{\"category\":null,\"hq_country\":\"XX\"}", "/hq_country /category"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = errors_after(cases[i].patch);
        if (strcmp(got, cases[i].pointers) != 0)
            fail_msg("patch %s: want \"%s\", got \"%s\"", cases[i].patch, cases[i].pointers, got);
    }
    /* Near misses that are valid. */
    const char *ok[] = {
        "{\"identifiers\":{\"lei\":\"529900T8BM49AURSDO55\",\"vat_id\":\"DE123456789\"}}",
        "{\"website\":\"https://example.com:8443/path?q=1#x\"}",
        "{\"privacy_contact\":{\"email\":\"datenschutz@example.de\",\"phone\":\"+49 (0)89 123-45\"}}",
        "{\"last_review_on\":\"2024-02-29\",\"next_review_on\":\"2025-02-28\"}",
        "{\"locations\":[{\"country\":\"FR\",\"role\":\"hosting\"},{\"country\":\"FR\",\"role\":\"backup\"}]}",
        "{\"legal_name\":\"Müller & Söhne GmbH\"}",
        "{\"notes\":\"line one\\nline two\"}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *got = errors_after(ok[i]);
        if (*got) fail_msg("patch %s: unexpected errors at %s", ok[i], got);
    }
}

static void test_merge_patch_rfc7396(void **state)
{
    (void)state;
    /* Examples from RFC 7396, Appendix A. */
    const char *cases[][3] = {
        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
        {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
        {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
        {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
        {"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *t = cJSON_Parse(cases[i][0]), *p = cJSON_Parse(cases[i][1]), *want = cJSON_Parse(cases[i][2]);
        merge_patch(t, p);
        if (!cJSON_Compare(t, want, 1)) {
            char *got = cJSON_PrintUnformatted(t);
            fail_msg("case %zu: got %s want %s", i, got, cases[i][2]);
        }
        cJSON_Delete(t);
        cJSON_Delete(p);
        cJSON_Delete(want);
    }
}

static void test_patch_refuses_read_only_and_unknown(void **state)
{
    (void)state;
    cJSON *p = cJSON_Parse("{\"version\":9,\"nope\":1,\"status\":\"active\"}");
    verrors e;
    verrors_init(&e);
    assert_false(schema_check_patch(RES_SUBPROCESSOR.fields, p, &e));
    assert_int_equal(e.count, 2);
    verrors_free(&e);
    cJSON_Delete(p);
}

static int rule_status(const char *from, const char *to)
{
    cJSON *before = valid_doc(), *after = valid_doc();
    cJSON_ReplaceItemInObject(before, "status", cJSON_CreateString(from));
    cJSON_ReplaceItemInObject(after, "status", cJSON_CreateString(to));
    verrors e;
    verrors_init(&e);
    rule_result r = {0};
    resource_rules(&RES_SUBPROCESSOR, before, after, &e, &r);
    verrors_free(&e);
    cJSON_Delete(before);
    cJSON_Delete(after);
    return r.status;
}

static void test_lifecycle(void **state)
{
    (void)state;
    assert_int_equal(rule_status("proposed", "active"), 0);
    assert_int_equal(rule_status("active", "retired"), 0);
    assert_int_equal(rule_status("proposed", "retired"), 0);
    assert_int_equal(rule_status("retired", "proposed"), 0);
    assert_int_equal(rule_status("active", "proposed"), 422);
    assert_int_equal(rule_status("retired", "active"), 422);
    /* created as retired: refused */
    cJSON *d = valid_doc();
    cJSON_ReplaceItemInObject(d, "status", cJSON_CreateString("retired"));
    verrors e;
    verrors_init(&e);
    rule_result r = {0};
    resource_rules(&RES_SUBPROCESSOR, NULL, d, &e, &r);
    assert_int_equal(r.status, 422);
    verrors_free(&e);
    cJSON_Delete(d);
}

static void test_review_dates_order(void **state)
{
    (void)state;
    cJSON *d = valid_doc();
    cJSON_AddStringToObject(d, "last_review_on", "2026-05-01");
    cJSON_AddStringToObject(d, "next_review_on", "2026-04-30");
    verrors e;
    verrors_init(&e);
    rule_result r = {0};
    resource_rules(&RES_SUBPROCESSOR, NULL, d, &e, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(json_get_str(e.list->child, "pointer"), "/next_review_on");
    verrors_free(&e);
    cJSON_Delete(d);
}

static void test_query_values(void **state)
{
    (void)state;
    char msg[128];
    const filter_def *f = RES_SUBPROCESSOR.filters;
    while (strcmp(f->param, "country") != 0) f++;
    cJSON *v = schema_parse_scalar(f->type, "US", msg, sizeof msg);
    assert_non_null(v);
    cJSON_Delete(v);
    assert_null(schema_parse_scalar(f->type, "us", msg, sizeof msg));
    assert_true(strlen(msg) > 0);
}

/* Found by tests/fuzz: a long key cut at the pointer's limit must not end in
 * half a character, a body that is not an object gets no defaults appended, a
 * bracketed URL host is an IPv6 literal, and huge numbers are judged without
 * undefined conversions. */
static void test_found_by_the_fuzzers(void **state)
{
    (void)state;
    char key[700] = "";
    for (int i = 0; i < 300; i++) strcat(key, "\xc3\xa9"); /* é: two bytes each */
    char ptr[512] = "";
    pointer_append(ptr, sizeof ptr, key);
    assert_true(strlen(ptr) < sizeof ptr);
    assert_true(utf8_valid(ptr, strlen(ptr)));
    assert_int_equal(strlen(ptr) % 2, 1); /* "/" and whole characters */
    char small[5] = "";
    pointer_append(small, sizeof small, "a~b");
    assert_string_equal(small, "/a~0");
    cJSON *arr = cJSON_Parse("[3]");
    schema_apply_defaults(RES_AGREEMENT.fields, arr);
    char *text = cJSON_PrintUnformatted(arr);
    assert_string_equal(text, "[3]");
    free(text);
    cJSON_Delete(arr);
    /* and a bracketed URL host is an IPv6 literal (fuzz_webhook_url: "http://[]") */
    assert_true(is_http_url("https://[::1]:8443/hook"));
    assert_true(is_http_url("https://[2001:db8::1]/"));
    assert_false(is_http_url("http://[]"));
    assert_false(is_http_url("https://[evil.example]/"));
    assert_false(is_http_url("https://[fe80::1%25eth0]/"));
    /* integers far outside long long (fuzz_json: converting them was undefined) */
    static const char *const big[][2] = {{"1e300", "must be between"}, {"-1e19", "must be between"},
                                         {"1e400", "must be an integer"}, {"2.5", "must be an integer"}};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        char body[200];
        snprintf(body, sizeof body, "{\"subprocessor_id\":\"sp_1\",\"type\":\"dpa\",\"title\":\"t\",\"notice_days\":%s}",
                 big[i][0]);
        cJSON *d = cJSON_Parse(body);
        assert_non_null(d);
        verrors e;
        verrors_init(&e);
        assert_false(schema_validate(RES_AGREEMENT.fields, d, &e));
        const char *msg = json_get_str(e.list->child, "message");
        assert_non_null(strstr(msg, big[i][1]));
        assert_string_equal(json_get_str(e.list->child, "pointer"), "/notice_days");
        verrors_free(&e);
        cJSON_Delete(d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_document_and_defaults),
        cmocka_unit_test(test_each_failure_has_its_pointer),
        cmocka_unit_test(test_merge_patch_rfc7396),
        cmocka_unit_test(test_patch_refuses_read_only_and_unknown),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_review_dates_order),
        cmocka_unit_test(test_query_values),
        cmocka_unit_test(test_found_by_the_fuzzers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
