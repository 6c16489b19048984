/* registry: the domain rules of agreements, transfers, TOM documents and
 * customers beyond the schema (date orders, fields required by another field,
 * superseded_by, the DPA notice), through resource_rules as the write path
 * applies them. The roles and the status lifecycles are test_resources.c's. */
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

#include "json_q.h"

/* What resource_rules said about one write: the status, and the pointers and
 * messages of the errors (joined by spaces and " | "; "" when none). */
typedef struct {
    int status;
    char pointers[256];
    char messages[1024];
    char detail[256];
} outcome;

/* before and after as single-quoted JSON (before NULL: a create). */
static outcome rules(const resource *res, const char *before, const char *after)
{
    cJSON *b = before ? parse_q(before) : NULL, *a = parse_q(after);
    verrors e;
    verrors_init(&e);
    rule_result r = {0};
    resource_rules(res, b, a, &e, &r);
    outcome o = {.status = r.status};
    snprintf(o.detail, sizeof o.detail, "%s", r.detail);
    for (const cJSON *c = e.list->child; c; c = c->next) {
        size_t n = strlen(o.pointers), m = strlen(o.messages);
        snprintf(o.pointers + n, sizeof o.pointers - n, "%s%s", n ? " " : "", json_get_str(c, "pointer"));
        snprintf(o.messages + m, sizeof o.messages - m, "%s%s", m ? " | " : "", json_get_str(c, "message"));
    }
    /* a 400 always comes with its errors, and errors always with a 400 */
    if ((r.status == 400) != (e.count > 0)) fail_msg("status %d with %d errors", r.status, e.count);
    verrors_free(&e);
    cJSON_Delete(a);
    cJSON_Delete(b);
    return o;
}

/* The write passes every rule. */
static void ok(const resource *res, const char *before, const char *after)
{
    outcome o = rules(res, before, after);
    if (o.status != 0) fail_msg("refused (%d: %s%s): %s", o.status, o.pointers, o.detail, after);
}

/* The write is refused with 400 and exactly these error pointers. */
static outcome refused(const resource *res, const char *before, const char *after, const char *pointers)
{
    outcome o = rules(res, before, after);
    if (o.status != 400) fail_msg("expected 400 at %s, got %d: %s", pointers, o.status, after);
    assert_string_equal(o.pointers, pointers);
    return o;
}

/* ---- agreements ------------------------------------------------------------ */

#define AG(more) "{'id':'ag_1','subprocessor_id':'sp_1','type':'msa','title':'MSA'" more "}"

static void test_agreement_date_order(void **state)
{
    (void)state;
    const resource *ag = &RES_AGREEMENT;
    ok(ag, NULL, AG(",'status':'draft','effective_on':'2026-01-01','expires_on':'2028-12-31'"));
    ok(ag, NULL, AG(",'status':'draft','effective_on':'2026-01-01','expires_on':'2026-01-01'")); /* same day */
    outcome o = refused(ag, NULL, AG(",'status':'draft','effective_on':'2026-01-02','expires_on':'2026-01-01'"),
                        "/expires_on");
    assert_non_null(strstr(o.messages, "effective_on"));
    o = refused(ag, NULL, AG(",'status':'draft','signed_on':'2026-03-01','expires_on':'2026-02-28'"), "/expires_on");
    assert_non_null(strstr(o.messages, "signed_on"));
    /* before both: two errors on the one field */
    refused(ag, NULL,
            AG(",'status':'draft','signed_on':'2026-03-01','effective_on':'2026-03-01','expires_on':'2026-01-01'"),
            "/expires_on /expires_on");
    /* one date alone orders nothing */
    ok(ag, NULL, AG(",'status':'draft','expires_on':'2000-01-01'"));
    ok(ag, NULL, AG(",'status':'draft','effective_on':'2030-01-01','signed_on':'2031-01-01'"));
}

static void test_agreement_active_needs_signed_on(void **state)
{
    (void)state;
    const resource *ag = &RES_AGREEMENT;
    outcome o = refused(ag, NULL, AG(",'status':'active'"), "/signed_on");
    assert_non_null(strstr(o.messages, "active"));
    ok(ag, NULL, AG(",'status':'active','signed_on':'2026-01-01'"));
    ok(ag, NULL, AG(",'status':'draft'"));
    /* on an update too: draft -> active without a signature */
    refused(ag, AG(",'status':'draft'"), AG(",'status':'active'"), "/signed_on");
    ok(ag, AG(",'status':'draft'"), AG(",'status':'active','signed_on':'2026-01-01'"));
}

static void test_agreement_superseded_by(void **state)
{
    (void)state;
    const resource *ag = &RES_AGREEMENT;
    const char *active = AG(",'status':'active','signed_on':'2026-01-01'");
    outcome o = refused(ag, active, AG(",'status':'superseded','signed_on':'2026-01-01'"), "/superseded_by");
    assert_non_null(strstr(o.messages, "superseded"));
    ok(ag, active, AG(",'status':'superseded','signed_on':'2026-01-01','superseded_by':'ag_2'"));
    /* not by itself (the stored document's id) */
    o = refused(ag, active, AG(",'status':'superseded','signed_on':'2026-01-01','superseded_by':'ag_1'"),
                "/superseded_by");
    assert_non_null(strstr(o.messages, "itself"));
    /* on a create there is no stored id to compare with */
    ok(ag, NULL, AG(",'status':'superseded','superseded_by':'ag_1'"));
    /* superseded_by alone, on an active agreement, is no error */
    ok(ag, NULL, AG(",'status':'active','signed_on':'2026-01-01','superseded_by':'ag_2'"));
}

#define DPA(more) "{'subprocessor_id':'sp_1','type':'dpa','title':'AVV','status':'draft'" more "}"

static void test_dpa_with_general_authorisation_needs_notice_days(void **state)
{
    (void)state;
    const resource *ag = &RES_AGREEMENT;
    outcome o = refused(ag, NULL, DPA(",'authorisation':'general'"), "/notice_days");
    assert_non_null(strstr(o.messages, "Art. 28(2)"));
    ok(ag, NULL, DPA(",'authorisation':'general','notice_days':30"));
    ok(ag, NULL, DPA(",'authorisation':'general','notice_days':0"));
    ok(ag, NULL, DPA(",'authorisation':'specific'"));
    ok(ag, NULL, DPA(""));
    /* only a DPA */
    ok(ag, NULL, "{'subprocessor_id':'sp_1','type':'msa','title':'MSA','status':'draft','authorisation':'general'}");
    /* dropping notice_days later is refused as well */
    refused(ag, DPA(",'authorisation':'general','notice_days':30"), DPA(",'authorisation':'general'"),
            "/notice_days");
}

static void test_agreement_errors_come_before_the_lifecycle(void **state)
{
    (void)state;
    /* terminated -> active is not a transition; with a rule broken as well the
     * answer is the 400 with its errors, not the 422 */
    const char *terminated = AG(",'status':'terminated','signed_on':'2026-01-01'");
    outcome o = refused(&RES_AGREEMENT, terminated, AG(",'status':'active'"), "/signed_on");
    assert_string_equal(o.detail, "");
    o = rules(&RES_AGREEMENT, terminated, AG(",'status':'active','signed_on':'2026-01-01'"));
    assert_int_equal(o.status, 422);
    assert_string_equal(o.pointers, "");
}

/* ---- transfers ------------------------------------------------------------- */

#define TR(more) "{'subprocessor_id':'sp_1','destination_country':'US','regime':'eu'," more "}"

static void test_transfer_scc_module(void **state)
{
    (void)state;
    const resource *tr = &RES_TRANSFER;
    /* the 2021 SCCs need their module, also as the Swiss SCCs and under the UK Addendum */
    static const char *const scc[] = {"scc_2021", "ch_scc", "uk_addendum"};
    char doc[256];
    for (size_t i = 0; i < sizeof scc / sizeof scc[0]; i++) {
        snprintf(doc, sizeof doc, TR("'basis':'%s'"), scc[i]);
        outcome o = refused(tr, NULL, doc, "/scc_module");
        assert_non_null(strstr(o.messages, "required"));
        snprintf(doc, sizeof doc, TR("'basis':'%s','scc_module':3"), scc[i]);
        ok(tr, NULL, doc);
    }
    /* and no other basis takes one */
    static const char *const other[] = {"adequacy", "dpf", "uk_idta", "scc_2010", "none"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        snprintf(doc, sizeof doc, TR("'basis':'%s','scc_module':2"), other[i]);
        outcome o = refused(tr, NULL, doc, "/scc_module");
        assert_non_null(strstr(o.messages, "only"));
        snprintf(doc, sizeof doc, TR("'basis':'%s'"), other[i]);
        ok(tr, NULL, doc);
    }
}

static void test_transfer_fields_required_by_the_basis(void **state)
{
    (void)state;
    const resource *tr = &RES_TRANSFER;
    refused(tr, NULL, TR("'basis':'art49'"), "/art49_derogation");
    ok(tr, NULL, TR("'basis':'art49','art49_derogation':'b'"));
    refused(tr, NULL, TR("'basis':'bcr'"), "/bcr_reference");
    ok(tr, NULL, TR("'basis':'bcr','bcr_reference':'BCR-P 2023/17'"));
    /* several at once, in the order of the rules */
    refused(tr, NULL, TR("'basis':'art49','scc_module':3,'valid_from':'2026-02-01','valid_until':'2026-01-31'"),
            "/scc_module /art49_derogation /valid_until");
    /* a PATCH to another basis keeps the old basis's fields: refused */
    refused(tr, TR("'basis':'scc_2021','scc_module':3"), TR("'basis':'art49','scc_module':3,'art49_derogation':'a'"),
            "/scc_module");
}

static void test_transfer_date_orders(void **state)
{
    (void)state;
    const resource *tr = &RES_TRANSFER;
    refused(tr, NULL, TR("'basis':'dpf','valid_from':'2026-02-01','valid_until':'2026-01-31'"), "/valid_until");
    ok(tr, NULL, TR("'basis':'dpf','valid_from':'2026-02-01','valid_until':'2026-02-01'"));
    ok(tr, NULL, TR("'basis':'dpf','valid_until':'2020-01-01'"));
    refused(tr, NULL, TR("'basis':'dpf','tia':{'performed_on':'2026-03-01','risk':'low','next_review_on':'2026-02-28'}"),
            "/tia/next_review_on");
    ok(tr, NULL, TR("'basis':'dpf','tia':{'performed_on':'2026-03-01','risk':'low','next_review_on':'2026-03-01'}"));
    ok(tr, NULL, TR("'basis':'dpf','tia':{'performed_on':'2026-03-01','risk':'low'}"));
}

static void test_transfer_signed_before_its_clauses_existed(void **state)
{
    (void)state;
    const resource *tr = &RES_TRANSFER;
    /* the day before each instrument applies is refused, the day itself is fine */
    static const struct {
        const char *basis, *day_before, *first_day;
    } cases[] = {
        {"scc_2021", "2021-06-26", "2021-06-27"},
        {"ch_scc", "2021-06-26", "2021-06-27"},
        {"uk_addendum", "2022-03-20", "2022-03-21"},
        {"uk_idta", "2022-03-20", "2022-03-21"},
    };
    char doc[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool module = strcmp(cases[i].basis, "uk_idta") != 0;
        snprintf(doc, sizeof doc, TR("'basis':'%s'%s,'contract_signed_on':'%s'"), cases[i].basis,
                 module ? ",'scc_module':3" : "", cases[i].day_before);
        outcome o = refused(tr, NULL, doc, "/contract_signed_on");
        assert_non_null(strstr(o.messages, cases[i].first_day));
        snprintf(doc, sizeof doc, TR("'basis':'%s'%s,'contract_signed_on':'%s'"), cases[i].basis,
                 module ? ",'scc_module':3" : "", cases[i].first_day);
        ok(tr, NULL, doc);
    }
    /* the old SCCs were signed before: no such rule (repealed_scc is a compliance finding) */
    ok(tr, NULL, TR("'basis':'scc_2010','contract_signed_on':'2015-01-01'"));
}

/* ---- TOM documents ------------------------------------------------------------ */

#define TOM(more) "{'title':'TOM','version_label':'1','status':'draft','effective_on':'2026-01-01'," more "}"

static void test_tom_owner_and_subprocessor_id(void **state)
{
    (void)state;
    const resource *tom = &RES_TOM;
    ok(tom, NULL, TOM("'owner':'subprocessor','subprocessor_id':'sp_1'"));
    ok(tom, NULL, TOM("'owner':'self'"));
    outcome o = refused(tom, NULL, TOM("'owner':'subprocessor'"), "/subprocessor_id");
    assert_non_null(strstr(o.messages, "required"));
    o = refused(tom, NULL, TOM("'owner':'self','subprocessor_id':'sp_1'"), "/subprocessor_id");
    assert_non_null(strstr(o.messages, "only"));
    /* on an update the whole new state counts */
    refused(tom, TOM("'owner':'subprocessor','subprocessor_id':'sp_1'"), TOM("'owner':'self','subprocessor_id':'sp_1'"),
            "/subprocessor_id");
}

static void test_tom_review_not_before_effect(void **state)
{
    (void)state;
    const resource *tom = &RES_TOM;
    refused(tom, NULL, TOM("'owner':'self','next_review_on':'2025-12-31'"), "/next_review_on");
    ok(tom, NULL, TOM("'owner':'self','next_review_on':'2026-01-01'"));
    ok(tom, NULL, TOM("'owner':'self','next_review_on':'2027-01-01'"));
    /* both TOM rules at once */
    refused(tom, NULL, TOM("'owner':'subprocessor','next_review_on':'2025-01-01'"), "/subprocessor_id /next_review_on");
}

/* ---- customers ---------------------------------------------------------------- */

static void test_customers_have_no_rules_beyond_the_schema(void **state)
{
    (void)state;
    const resource *cu = &RES_CUSTOMER;
    ok(cu, NULL, "{'name':'Kunde','status':'active','authorisation':'general','notice_days':0,'objection_days':0}");
    ok(cu, NULL, "{'name':'Kunde','status':'inactive','authorisation':'specific','notice_days':365,'objection_days':1}");
    ok(cu, "{'name':'Kunde','status':'active','notice_days':30}",
       "{'name':'Kunde','status':'inactive','authorisation':'general'}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agreement_date_order),
        cmocka_unit_test(test_agreement_active_needs_signed_on),
        cmocka_unit_test(test_agreement_superseded_by),
        cmocka_unit_test(test_dpa_with_general_authorisation_needs_notice_days),
        cmocka_unit_test(test_agreement_errors_come_before_the_lifecycle),
        cmocka_unit_test(test_transfer_scc_module),
        cmocka_unit_test(test_transfer_fields_required_by_the_basis),
        cmocka_unit_test(test_transfer_date_orders),
        cmocka_unit_test(test_transfer_signed_before_its_clauses_existed),
        cmocka_unit_test(test_tom_owner_and_subprocessor_id),
        cmocka_unit_test(test_tom_review_not_before_effect),
        cmocka_unit_test(test_customers_have_no_rules_beyond_the_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
