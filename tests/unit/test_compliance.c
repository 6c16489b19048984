/* compliance: every rule on both sides of its boundary, from small JSON fixtures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "subreg/compliance.h"
#include "subreg/json.h"
#include "subreg/publication.h"

#include "json_q.h"

/* ---- fixtures ------------------------------------------------------------ */

/* Reference data as seeded: a few EEA and third countries, the adequacy
 * decisions the rules care about, and the SCC sets with their cut-off dates. */
static const char *const COUNTRIES =
    "[{'id':'DE','name':{'de':'Deutschland','en':'Germany'},'eu':true,'eea':true},"
    " {'id':'FR','name':{'de':'Frankreich','en':'France'},'eu':true,'eea':true},"
    " {'id':'NO','name':{'de':'Norwegen','en':'Norway'},'eu':false,'eea':true},"
    " {'id':'US','name':{'de':'Vereinigte Staaten','en':'United States'},'eu':false,'eea':false},"
    " {'id':'CA','name':{'de':'Kanada','en':'Canada'},'eu':false,'eea':false},"
    " {'id':'JP','name':{'de':'Japan','en':'Japan'},'eu':false,'eea':false},"
    " {'id':'GB','name':{'de':'Vereinigtes Königreich','en':'United Kingdom'},'eu':false,'eea':false},"
    " {'id':'CH','name':{'de':'Schweiz','en':'Switzerland'},'eu':false,'eea':false},"
    " {'id':'IN','name':{'de':'Indien','en':'India'},'eu':false,'eea':false}]";

#define ADEQ_US(challenged)                                                                                       \
    "{'id':'us-dpf','jurisdiction':{'de':'USA','en':'United States'},'country':'US','act':'Implementing Decision (EU) 2023/1795 (EU-US Data Privacy Framework)',"     \
    "'adopted_on':'2023-07-10','scope':'partial','condition':'dpf_participation','status':'in_force',"           \
    "'under_challenge':" challenged ",'challenge_note':{'de':'Rechtsmittel C-703/25 P anhängig',"                 \
    "'en':'appeal C-703/25 P pending'}}"
#define ADEQ_OTHERS                                                                                               \
    "{'id':'ca','jurisdiction':{'de':'Kanada','en':'Canada'},'country':'CA','act':'Decision 2002/2/EC',"                  \
    "'adopted_on':'2001-12-20','scope':'partial','condition':'recipient_in_scope','status':'in_force',"          \
    "'under_challenge':false,'scope_note':{'de':'nur kommerzielle Organisationen unter PIPEDA',"                 \
    "'en':'commercial organisations under PIPEDA only'}},"                                                       \
    "{'id':'jp','jurisdiction':{'de':'Japan','en':'Japan'},'country':'JP','act':'(EU) 2019/419',"                \
    "'adopted_on':'2019-01-23','scope':'partial','condition':'recipient_in_scope','status':'in_force',"          \
    "'under_challenge':false},"                                                                                  \
    "{'id':'uk','jurisdiction':{'de':'Vereinigtes Königreich','en':'United Kingdom'},'country':'GB',"           \
    "'act':'(EU) 2021/1772','adopted_on':'2021-06-28','scope':'full','condition':'none',"                       \
    "'valid_until':'2031-12-27','status':'in_force','under_challenge':false},"                                   \
    "{'id':'ch','jurisdiction':{'de':'Schweiz','en':'Switzerland'},'country':'CH','act':'2000/518/EC',"          \
    "'adopted_on':'2000-07-26','scope':'full','condition':'none','status':'in_force','under_challenge':false}"

static const char *const ADEQUACY = "[" ADEQ_US("false") "," ADEQ_OTHERS "]";
static const char *const ADEQUACY_CHALLENGED = "[" ADEQ_US("true") "," ADEQ_OTHERS "]";

static const char *const SCC_SETS =
    "[{'id':'eu-scc-2001','name':{'de':'SCC 2001','en':'SCC 2001'},'legal_act':'Decision 2001/497/EC','regime':'eu',"
    "  'kind':'transfer_tool','basis':'scc_2001','status':'repealed','new_contracts_until':'2021-09-26',"
    "  'valid_until':'2022-12-27'},"
    " {'id':'eu-scc-2004','name':{'de':'SCC 2004','en':'SCC 2004'},'legal_act':'Decision 2004/915/EC','regime':'eu',"
    "  'kind':'transfer_tool','basis':'scc_2004','status':'repealed','new_contracts_until':'2021-09-26',"
    "  'valid_until':'2022-12-27'},"
    " {'id':'eu-scc-2010','name':{'de':'SCC 2010','en':'SCC 2010'},'legal_act':'Decision 2010/87/EU','regime':'eu',"
    "  'kind':'transfer_tool','basis':'scc_2010','status':'repealed','new_contracts_until':'2021-09-26',"
    "  'valid_until':'2022-12-27'},"
    " {'id':'eu-scc-2021','name':{'de':'SCC 2021','en':'SCC 2021'},'legal_act':'(EU) 2021/914','regime':'eu',"
    "  'kind':'transfer_tool','basis':'scc_2021','modules':[1,2,3,4],'status':'current',"
    "  'in_force_from':'2021-06-27'},"
    " {'id':'uk-legacy-eu-scc','name':{'de':'Alte EU-SCC (UK)','en':'Old EU SCCs (UK)'},"
    "  'legal_act':'Decisions 2001/497/EC, 2004/915/EC and 2010/87/EU (UK transitional provisions)','regime':'uk','kind':'transfer_tool','status':'repealed',"
    "  'new_contracts_until':'2022-09-21','valid_until':'2024-03-21'}]";

/* One per test: setup builds it (empty registry, the reference data above),
 * teardown frees it; the test gets it through its state. */
typedef struct {
    cJSON *sp, *ag, *tr, *tom, *countries, *adequacy, *scc;
    cJSON *pub, *cu, *ob; /* publications, customers, objections: see pub_init */
    cJSON *out;
    compliance_input in;
} fixture;

static int fx_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->sp = cJSON_CreateArray();
    f->ag = cJSON_CreateArray();
    f->tr = cJSON_CreateArray();
    f->tom = cJSON_CreateArray();
    f->countries = parse_q(COUNTRIES);
    f->adequacy = parse_q(ADEQUACY);
    f->scc = parse_q(SCC_SETS);
    f->in = (compliance_input){.subprocessors = f->sp, .agreements = f->ag, .transfers = f->tr,
                               .tom_documents = f->tom, .countries = f->countries,
                               .adequacy_decisions = f->adequacy, .scc_sets = f->scc, .horizon_days = 30};
    *state = f;
    return 0;
}

/* The test's fixture, its "today" set (run_on sets it again for each run). */
static fixture *fx(void **state, const char *today)
{
    fixture *f = *state;
    f->in.today = today;
    return f;
}

static void fx_adequacy(fixture *f, const char *json)
{
    cJSON_Delete(f->adequacy);
    f->adequacy = parse_q(json);
    f->in.adequacy_decisions = f->adequacy;
}

static int fx_teardown(void **state)
{
    fixture *f = *state;
    cJSON_Delete(f->sp);
    cJSON_Delete(f->ag);
    cJSON_Delete(f->tr);
    cJSON_Delete(f->tom);
    cJSON_Delete(f->countries);
    cJSON_Delete(f->adequacy);
    cJSON_Delete(f->scc);
    cJSON_Delete(f->pub);
    cJSON_Delete(f->cu);
    cJSON_Delete(f->ob);
    cJSON_Delete(f->out);
    free(f);
    return 0;
}

static void put(cJSON *arr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(cJSON *arr, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    cJSON_AddItemToArray(arr, parse_q(buf));
}

/* A subprocessor "Name <id>" with one location; extra is more members (",'k':v") or "". */
static void add_sp(fixture *f, const char *id, const char *status, const char *role, const char *country,
                   const char *extra)
{
    put(f->sp,
        "{'id':'%s','legal_name':'Name %s','hq_country':'%s','category':'hosting','role':'%s','status':'%s',"
        "'purpose':{'de':'Hosting','en':'Hosting'},'data_categories':['master_contact'],"
        "'data_subjects':['customers'],'locations':[{'country':'%s','role':'hosting'}],"
        "'public':{'listed':true}%s}",
        id, id, country, role, status, country, extra);
}

static void add_dpa(fixture *f, const char *spid, const char *extra)
{
    put(f->ag,
        "{'id':'ag_%s','subprocessor_id':'%s','type':'dpa','title':'AVV','status':'active',"
        "'signed_on':'2020-01-01'%s}",
        spid, spid, extra);
}

/* A transfer tr_<id> of subprocessor spid; extra is more members or "". */
static void add_tr(fixture *f, const char *id, const char *spid, const char *dest, const char *basis,
                   const char *extra)
{
    put(f->tr, "{'id':'tr_%s','subprocessor_id':'%s','destination_country':'%s','regime':'eu','basis':'%s'%s}", id,
        spid, dest, basis, extra);
}

static const cJSON *run_on(fixture *f, const char *today)
{
    cJSON_Delete(f->out);
    f->in.today = today;
    f->out = compliance_findings(&f->in);
    assert_non_null(f->out);
    assert_true(cJSON_IsArray(f->out));
    return f->out;
}

static const cJSON *find(const cJSON *out, const char *rule, const char *eid)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, out)
    {
        const char *r = json_get_str(it, "rule"), *e = json_get_str(it, "entity_id");
        if (r && e && strcmp(r, rule) == 0 && strcmp(e, eid) == 0) return it;
    }
    return NULL;
}

static int count_rule(const cJSON *out, const char *rule)
{
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, out)
    {
        const char *r = json_get_str(it, "rule");
        if (r && strcmp(r, rule) == 0) n++;
    }
    return n;
}

/* The finding exists with this severity and since (NULL: no since member). */
static const cJSON *expect(const cJSON *out, const char *rule, const char *eid, const char *severity,
                           const char *since)
{
    const cJSON *f = find(out, rule, eid);
    if (!f) {
        char *dump = cJSON_Print(out);
        print_error("findings: %s\n", dump);
        free(dump);
        fail_msg("no %s finding for %s", rule, eid);
    }
    assert_string_equal(json_get_str(f, "severity"), severity);
    if (since) {
        assert_non_null(json_get_str(f, "since"));
        assert_string_equal(json_get_str(f, "since"), since);
    } else {
        assert_null(json_get(f, "since"));
    }
    /* every finding carries the full shape */
    assert_non_null(json_get_str(f, "entity_type"));
    assert_non_null(json_get_str(f, "href"));
    assert_non_null(json_get_str(f, "legal_ground"));
    const cJSON *msg = json_get(f, "message");
    assert_non_null(json_get_str(msg, "de"));
    assert_non_null(json_get_str(msg, "en"));
    return f;
}

static void expect_none(const cJSON *out, const char *rule, const char *eid)
{
    const cJSON *f = find(out, rule, eid);
    if (f) {
        char *dump = cJSON_Print(f);
        print_error("unexpected: %s\n", dump);
        free(dump);
        fail_msg("unexpected %s finding for %s", rule, eid);
    }
}

/* ---- empty input --------------------------------------------------------- */

static void test_empty_input(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    assert_int_equal(cJSON_GetArraySize(run_on(f, "2026-01-15")), 0);
    cJSON *exp = compliance_expiring(&f->in, 365);
    assert_int_equal(cJSON_GetArraySize(exp), 0);
    cJSON_Delete(exp);
    /* missing arrays and a broken "today" are no crash either */
    compliance_input none = {.today = "2026-01-15", .horizon_days = 30};
    cJSON *out = compliance_findings(&none);
    assert_int_equal(cJSON_GetArraySize(out), 0);
    cJSON_Delete(out);
    f->in.today = "2026-13-01";
    out = compliance_findings(&f->in);
    assert_int_equal(cJSON_GetArraySize(out), 0);
    cJSON_Delete(out);
}

/* ---- rule 1: no_valid_basis ---------------------------------------------- */

static void test_no_basis_fires_outside_eea_only(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    add_sp(f, "sp_us", "active", "subprocessor", "US", "");
    add_sp(f, "sp_fr", "active", "subprocessor", "FR", "");
    add_tr(f, "us", "sp_us", "US", "none", "");
    add_tr(f, "fr", "sp_fr", "FR", "none", ""); /* inside the EEA: needs no basis */
    add_tr(f, "no", "sp_fr", "NO", "none", ""); /* Norway: EEA, not EU */
    const cJSON *out = run_on(f, "2026-01-15");
    const cJSON *hit = expect(out, "no_valid_basis", "tr_us", "critical", NULL);
    assert_string_equal(json_get_str(hit, "entity_type"), "transfer");
    assert_string_equal(json_get_str(hit, "href"), "/v1/transfers/tr_us");
    assert_string_equal(json_get_str(hit, "subprocessor_id"), "sp_us");
    assert_string_equal(json_get_str(hit, "legal_ground"), "GDPR Art. 44–46");
    const cJSON *msg = json_get(hit, "message");
    assert_non_null(strstr(json_get_str(msg, "en"), "Name sp_us"));
    assert_non_null(strstr(json_get_str(msg, "en"), "US"));
    assert_non_null(strstr(json_get_str(msg, "de"), "Übermittlung von Name sp_us nach US"));
    assert_non_null(strstr(json_get_str(msg, "de"), "Art. 44–46 DSGVO"));
    expect_none(out, "no_valid_basis", "tr_fr");
    expect_none(out, "no_valid_basis", "tr_no");
    assert_int_equal(count_rule(out, "no_valid_basis"), 1);
    /* since the transfer began, when that is recorded */
    add_tr(f, "dated", "sp_us", "IN", "none", ",'valid_from':'2025-04-01'");
    expect(run_on(f, "2026-01-15"), "no_valid_basis", "tr_dated", "critical", "2025-04-01");
}

static void test_uk_adequacy_expiry_boundary(void **state)
{
    fixture *f = fx(state, "2031-12-27");
    add_sp(f, "sp_gb", "active", "subprocessor", "GB", "");
    add_tr(f, "gb", "sp_gb", "GB", "adequacy", "");
    expect_none(run_on(f, "2031-12-27"), "no_valid_basis", "tr_gb");
    expect(run_on(f, "2031-12-28"), "no_valid_basis", "tr_gb", "critical", "2031-12-28");

}

static void test_adequacy_without_decision(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    add_sp(f, "sp_in", "active", "subprocessor", "IN", "");
    add_tr(f, "in", "sp_in", "IN", "adequacy", ""); /* no decision for India */
    add_tr(f, "ch", "sp_in", "CH", "adequacy", ""); /* Switzerland: full adequacy */
    const cJSON *out = run_on(f, "2026-01-15");
    expect(out, "no_valid_basis", "tr_in", "critical", NULL);
    expect_none(out, "no_valid_basis", "tr_ch");
}

/* a decision counts from the day it was adopted (findings as of a past day):
 * a DPF transfer on 9 July 2023 had no decision to rely on, on 10 July it had */
static void test_adequacy_from_adoption(void **state)
{
    fixture *f = fx(state, "2023-07-09");
    add_sp(f, "sp_us", "active", "subprocessor", "US", ",'dpf':{'participating':true}");
    add_tr(f, "us", "sp_us", "US", "dpf", "");
    expect(run_on(f, "2023-07-09"), "no_valid_basis", "tr_us", "critical", NULL);
    expect_none(run_on(f, "2023-07-10"), "no_valid_basis", "tr_us");
}

/* an invalidated decision is no basis (Privacy Shield after Schrems II) */
static void test_invalidated_adequacy_is_no_basis(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    fx_adequacy(f, "[{'id':'ps','country':'US','act':'2016/1250','adopted_on':'2016-07-12','scope':'partial',"
                   "'condition':'dpf_participation','status':'invalidated','under_challenge':false}]");
    add_sp(f, "sp_us", "active", "subprocessor", "US", ",'dpf':{'participating':true}");
    add_tr(f, "us", "sp_us", "US", "adequacy", "");
    add_tr(f, "usdpf", "sp_us", "US", "dpf", "");
    const cJSON *out = run_on(f, "2026-01-15");
    expect(out, "no_valid_basis", "tr_us", "critical", NULL);
    expect(out, "no_valid_basis", "tr_usdpf", "critical", NULL);
}

static void test_dpf_outside_us(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    add_sp(f, "sp_a", "active", "subprocessor", "US", ",'dpf':{'participating':true}");
    add_tr(f, "us", "sp_a", "US", "dpf", "");
    add_tr(f, "ca", "sp_a", "CA", "dpf", "");
    const cJSON *out = run_on(f, "2026-01-15");
    expect_none(out, "no_valid_basis", "tr_us");
    expect(out, "no_valid_basis", "tr_ca", "critical", NULL);
}

static void test_transfer_validity_lapsed(void **state)
{
    fixture *f = fx(state, "2026-03-01");
    add_sp(f, "sp_a", "active", "subprocessor", "US", "");
    add_tr(f, "a", "sp_a", "US", "scc_2021",
           ",'scc_module':3,'valid_until':'2026-02-28','tia':{'performed_on':'2026-01-01','risk':'low'}");
    expect_none(run_on(f, "2026-02-28"), "no_valid_basis", "tr_a");
    expect(run_on(f, "2026-03-01"), "no_valid_basis", "tr_a", "critical", "2026-03-01");
}

static void test_location_without_transfer(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    add_sp(f, "sp_none", "active", "subprocessor", "US", "");           /* US location, no transfer */
    add_sp(f, "sp_prop", "proposed", "subprocessor", "SG", "");         /* SG not in the list: non-EEA */
    add_sp(f, "sp_ok", "active", "subprocessor", "US", "");             /* has a transfer */
    add_sp(f, "sp_eea", "active", "subprocessor", "NO", "");            /* EEA only */
    add_tr(f, "ok", "sp_ok", "US", "scc_2021", ",'scc_module':3,'tia':{'performed_on':'2025-12-01','risk':'low'}");
    const cJSON *out = run_on(f, "2026-01-15");
    const cJSON *hit = expect(out, "no_valid_basis", "sp_none", "critical", NULL);
    assert_string_equal(json_get_str(hit, "entity_type"), "subprocessor");
    assert_string_equal(json_get_str(hit, "href"), "/v1/subprocessors/sp_none");
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"), "außerhalb des EWR"));
    expect(out, "no_valid_basis", "sp_prop", "critical", NULL);
    expect_none(out, "no_valid_basis", "sp_ok");
    expect_none(out, "no_valid_basis", "tr_ok");
    expect_none(out, "no_valid_basis", "sp_eea");
}

/* ---- rule 2: partial_adequacy -------------------------------------------- */

static void test_us_with_and_without_dpf(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    add_sp(f, "sp_dpf", "active", "subprocessor", "US", ",'dpf':{'participating':true,'verified_on':'2025-12-01'}");
    add_sp(f, "sp_nodpf", "active", "subprocessor", "US", ",'dpf':{'participating':false}");
    add_sp(f, "sp_unknown", "active", "subprocessor", "US", ""); /* no dpf record at all */
    add_tr(f, "dpf", "sp_dpf", "US", "dpf", "");
    add_tr(f, "nodpf", "sp_nodpf", "US", "adequacy", "");
    add_tr(f, "unknown", "sp_unknown", "US", "dpf", "");
    const cJSON *out = run_on(f, "2026-01-15");
    expect_none(out, "partial_adequacy", "tr_dpf");
    const cJSON *hit = expect(out, "partial_adequacy", "tr_nodpf", "critical", NULL);
    assert_string_equal(json_get_str(hit, "legal_ground"), "GDPR Art. 45");
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "en"), "(EU) 2023/1795"));
    expect(out, "partial_adequacy", "tr_unknown", "critical", NULL);
    /* the basis itself exists: not a no_valid_basis finding */
    assert_int_equal(count_rule(out, "no_valid_basis"), 0);
}

static void test_canada_and_japan_scope(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    add_sp(f, "sp_ca", "active", "subprocessor", "CA", "");
    add_tr(f, "ca_in", "sp_ca", "CA", "adequacy", ",'recipient_in_adequacy_scope':true");
    add_tr(f, "ca_out", "sp_ca", "CA", "adequacy", ",'recipient_in_adequacy_scope':false");
    add_tr(f, "jp_unset", "sp_ca", "JP", "adequacy", "");
    const cJSON *out = run_on(f, "2026-01-15");
    expect_none(out, "partial_adequacy", "tr_ca_in");
    const cJSON *hit = expect(out, "partial_adequacy", "tr_ca_out", "critical", NULL);
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"), "PIPEDA"));
    expect(out, "partial_adequacy", "tr_jp_unset", "critical", NULL);
}

/* ---- rule 3: repealed_scc ------------------------------------------------ */

static void test_scc_2010_sunset_boundary(void **state)
{
    fixture *f = fx(state, "2022-12-27");
    add_sp(f, "sp_a", "active", "subprocessor", "US", "");
    add_tr(f, "a", "sp_a", "US", "scc_2010",
           ",'contract_signed_on':'2020-05-01','tia':{'performed_on':'2022-06-01','risk':'low'}");
    expect_none(run_on(f, "2022-12-27"), "repealed_scc", "tr_a");
    const cJSON *hit = expect(run_on(f, "2022-12-28"), "repealed_scc", "tr_a", "critical", "2022-12-28");
    assert_string_equal(json_get_str(hit, "legal_ground"), "Implementing Decision (EU) 2021/914, Art. 4");
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "en"), "2010/87/EU"));
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"), "27.12.2022"));
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"), "(Beschluss 2010/87/EU)"));
}

static void test_scc_2010_signed_after_cutoff(void **state)
{
    fixture *f = fx(state, "2022-01-10");
    add_sp(f, "sp_a", "active", "subprocessor", "US", "");
    add_tr(f, "late", "sp_a", "US", "scc_2010",
           ",'contract_signed_on':'2021-10-01','tia':{'performed_on':'2021-10-01','risk':'low'}");
    add_tr(f, "intime", "sp_a", "US", "scc_2010",
           ",'contract_signed_on':'2021-09-26','tia':{'performed_on':'2021-10-01','risk':'low'}");
    /* "concluded before 27 September 2021" ((EU) 2021/914 Art. 4(4)): the 27th is late */
    add_tr(f, "day27", "sp_a", "US", "scc_2010",
           ",'contract_signed_on':'2021-09-27','tia':{'performed_on':'2021-10-01','risk':'low'}");
    const cJSON *out = run_on(f, "2022-01-10");
    expect(out, "repealed_scc", "tr_late", "critical", "2021-10-01");
    expect(out, "repealed_scc", "tr_day27", "critical", "2021-09-27");
    expect_none(out, "repealed_scc", "tr_intime");
    /* after the sunset the late contract keeps its earlier since */
    out = run_on(f, "2023-02-01");
    expect(out, "repealed_scc", "tr_late", "critical", "2021-10-01");
    expect(out, "repealed_scc", "tr_intime", "critical", "2022-12-28");
}

static void test_uk_legacy_scc(void **state)
{
    fixture *f = fx(state, "2024-03-21");
    add_sp(f, "sp_a", "active", "subprocessor", "US", "");
    put(f->tr, "{'id':'tr_uk','subprocessor_id':'sp_a','destination_country':'US','regime':'uk','basis':'scc_2010',"
               "'contract_signed_on':'2022-06-01','tia':{'performed_on':'2024-01-01','risk':'low'}}");
    /* the EU sunset (27 Dec 2022) does not apply to UK transfers */
    expect_none(run_on(f, "2023-06-01"), "repealed_scc", "tr_uk");
    expect_none(run_on(f, "2024-03-21"), "repealed_scc", "tr_uk");
    const cJSON *hit = expect(run_on(f, "2024-03-22"), "repealed_scc", "tr_uk", "critical", "2024-03-22");
    /* the UK cut-off is the ICO's, not the EU decision's */
    assert_string_equal(json_get_str(hit, "legal_ground"), "UK GDPR Art. 46; ICO transitional provisions (s. 119A DPA 2018)");
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"),
                           "(Beschlüsse 2001/497/EG, 2004/915/EG und 2010/87/EU (britische Übergangsbestimmungen))"));
}

/* ---- rule 4: wrong_scc_module -------------------------------------------- */

static void test_scc_module(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    add_sp(f, "sp_sub", "active", "subprocessor", "US", "");
    add_sp(f, "sp_proc", "active", "processor", "US", "");
    const char *tia = ",'tia':{'performed_on':'2025-12-01','risk':'low'}";
    char extra[200];
    snprintf(extra, sizeof extra, ",'scc_module':2%s", tia);
    add_tr(f, "sub2", "sp_sub", "US", "scc_2021", extra);
    add_tr(f, "proc2", "sp_proc", "US", "scc_2021", extra);
    snprintf(extra, sizeof extra, ",'scc_module':3%s", tia);
    add_tr(f, "sub3", "sp_sub", "US", "scc_2021", extra);
    add_tr(f, "proc3", "sp_proc", "CH", "ch_scc", extra);
    const cJSON *out = run_on(f, "2026-01-15");
    const cJSON *hit = expect(out, "wrong_scc_module", "tr_sub2", "high", NULL);
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "en"), "Module 3"));
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"), "Modul 3"));
    expect_none(out, "wrong_scc_module", "tr_sub3");
    expect_none(out, "wrong_scc_module", "tr_proc2");
    expect(out, "wrong_scc_module", "tr_proc3", "high", NULL);
    assert_int_equal(count_rule(out, "wrong_scc_module"), 2);
}

/* ---- rule 5: tia_missing ------------------------------------------------- */

static void test_tia_age(void **state)
{
    fixture *f = fx(state, "2026-10-27");
    add_sp(f, "sp_a", "active", "subprocessor", "US", "");
    add_tr(f, "m11", "sp_a", "US", "scc_2021", ",'scc_module':3,'tia':{'performed_on':'2025-11-27','risk':'low'}");
    add_tr(f, "m13", "sp_a", "US", "scc_2021", ",'scc_module':3,'tia':{'performed_on':'2025-09-27','risk':'low'}");
    add_tr(f, "none", "sp_a", "US", "bcr", ",'bcr_reference':'BCR-1'");
    add_tr(f, "eea", "sp_a", "FR", "scc_2021", ",'scc_module':3");     /* inside the EEA */
    add_tr(f, "adeq", "sp_a", "CH", "adequacy", "");                  /* adequacy needs no TIA */
    const cJSON *out = run_on(f, "2026-10-27");
    expect_none(out, "tia_missing", "tr_m11");
    expect(out, "tia_missing", "tr_m13", "medium", "2026-09-28");
    const cJSON *hit = expect(out, "tia_missing", "tr_none", "high", NULL);
    assert_string_equal(json_get_str(hit, "legal_ground"), "Schrems II (C-311/18); EDPB Recommendations 01/2020");
    expect_none(out, "tia_missing", "tr_eea");
    expect_none(out, "tia_missing", "tr_adeq");
}

static void test_tia_twelve_month_boundary(void **state)
{
    fixture *f = fx(state, "2026-11-27");
    add_sp(f, "sp_a", "active", "subprocessor", "US", "");
    add_tr(f, "a", "sp_a", "US", "uk_idta", ",'tia':{'performed_on':'2025-11-27','risk':'low'}");
    expect_none(run_on(f, "2026-11-27"), "tia_missing", "tr_a");
    expect(run_on(f, "2026-11-28"), "tia_missing", "tr_a", "medium", "2026-11-28");
}

/* 29 Feb: a calendar year later is 28 Feb */
static void test_tia_twelve_months_from_a_leap_day(void **state)
{
    fixture *f = fx(state, "2025-03-01");
    add_sp(f, "sp_a", "active", "subprocessor", "US", "");
    add_tr(f, "a", "sp_a", "US", "uk_idta", ",'tia':{'performed_on':'2024-02-29','risk':'low'}");
    expect_none(run_on(f, "2025-02-28"), "tia_missing", "tr_a");
    expect(run_on(f, "2025-03-01"), "tia_missing", "tr_a", "medium", "2025-03-01");
}

/* ---- rule 6: no_active_dpa ----------------------------------------------- */

static void test_active_dpa(void **state)
{
    fixture *f = fx(state, "2026-03-01");
    add_sp(f, "sp_with", "active", "subprocessor", "DE", "");
    add_sp(f, "sp_without", "active", "subprocessor", "DE", "");
    add_sp(f, "sp_expired", "active", "subprocessor", "DE", "");
    add_sp(f, "sp_draft", "active", "subprocessor", "DE", "");
    add_sp(f, "sp_lastday", "active", "subprocessor", "DE", "");
    add_sp(f, "sp_proposed", "proposed", "subprocessor", "DE", "");
    add_dpa(f, "sp_with", "");
    add_dpa(f, "sp_expired", ",'expires_on':'2026-02-28'");
    add_dpa(f, "sp_lastday", ",'expires_on':'2026-03-01'");
    put(f->ag, "{'id':'ag_draft','subprocessor_id':'sp_draft','type':'dpa','title':'AVV','status':'draft'}");
    put(f->ag, "{'id':'ag_msa','subprocessor_id':'sp_without','type':'msa','title':'MSA','status':'active',"
               "'signed_on':'2020-01-01'}");
    const cJSON *out = run_on(f, "2026-03-01");
    expect_none(out, "no_active_dpa", "sp_with");
    const cJSON *hit = expect(out, "no_active_dpa", "sp_without", "high", NULL);
    assert_string_equal(json_get_str(hit, "entity_type"), "subprocessor");
    assert_string_equal(json_get_str(hit, "legal_ground"), "GDPR Art. 28(3)–(4)");
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"), "Auftragsverarbeitungsvertrag"));
    expect(out, "no_active_dpa", "sp_expired", "high", "2026-03-01");
    expect(out, "no_active_dpa", "sp_draft", "high", NULL);
    expect_none(out, "no_active_dpa", "sp_lastday");
    expect_none(out, "no_active_dpa", "sp_proposed");
}

/* ---- rule 7: expiring ------------------------------------------------------ */

static void test_expiring_horizon(void **state)
{
    fixture *f = fx(state, "2026-06-01");
    add_sp(f, "sp_a", "active", "subprocessor", "DE",
           ",'certifications':[{'name':'ISO 27001','valid_until':'2026-06-20'},"
           "{'name':'SOC 2','valid_until':'2026-09-01'}],'next_review_on':'2026-05-15'");
    add_dpa(f, "sp_a", ",'expires_on':'2026-06-21'");      /* within 30 days */
    put(f->ag, "{'id':'ag_far','subprocessor_id':'sp_a','type':'dpa','title':'AVV 2','status':'active',"
               "'signed_on':'2020-01-01','expires_on':'2026-07-02'}"); /* 31 days: outside */
    put(f->ag, "{'id':'ag_old','subprocessor_id':'sp_a','type':'msa','title':'MSA','status':'terminated',"
               "'signed_on':'2020-01-01','expires_on':'2026-06-10'}"); /* not active: ignored */
    put(f->tom, "{'id':'tom_1','owner':'self','title':'TOM','version_label':'3','status':'active',"
                "'effective_on':'2025-01-01','next_review_on':'2026-07-01','measures':{}}");
    add_tr(f, "a", "sp_a", "US", "scc_2021",
           ",'scc_module':3,'tia':{'performed_on':'2025-12-01','next_review_on':'2026-06-05','risk':'low'}");
    const cJSON *out = run_on(f, "2026-06-01");
    /* a contract lapsing within the horizon will be unlawful soon: high */
    const cJSON *hit = expect(out, "expiring", "ag_sp_a", "high", "2026-06-21");
    assert_string_equal(json_get_str(hit, "href"), "/v1/agreements/ag_sp_a");
    assert_string_equal(json_get_str(hit, "legal_ground"), "GDPR Art. 28, 32");
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"), "läuft am 21.06.2026 ab"));
    expect_none(out, "expiring", "ag_far");
    expect_none(out, "expiring", "ag_old");
    const cJSON *tom = expect(out, "expiring", "tom_1", "medium", "2026-07-01");
    assert_string_equal(json_get_str(tom, "href"), "/v1/tom-documents/tom_1");
    expect(out, "expiring", "tr_a", "medium", "2026-06-05");
    /* the subprocessor has two due dates: the overdue review and the certificate, both record-keeping */
    int sp_hits = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, out)
    {
        if (strcmp(json_get_str(it, "rule"), "expiring") || strcmp(json_get_str(it, "entity_id"), "sp_a")) continue;
        sp_hits++;
        const char *since = json_get_str(it, "since");
        assert_string_equal(json_get_str(it, "severity"), "medium");
        if (strcmp(since, "2026-05-15") != 0) assert_string_equal(since, "2026-06-20");
    }
    assert_int_equal(sp_hits, 2);
    /* a wider horizon reaches the far DPA */
    f->in.horizon_days = 31;
    expect(run_on(f, "2026-06-01"), "expiring", "ag_far", "high", "2026-07-02");
}

static void test_expiring_overdue_is_high(void **state)
{
    fixture *f = fx(state, "2026-03-01");
    add_sp(f, "sp_a", "active", "subprocessor", "DE", "");
    add_dpa(f, "sp_a", ",'expires_on':'2026-02-28'");
    const cJSON *out = run_on(f, "2026-03-01");
    expect(out, "expiring", "ag_sp_a", "high", "2026-02-28");
    expect(out, "no_active_dpa", "sp_a", "high", "2026-03-01");
    /* due today: not yet overdue, and lapsing — high all the same */
    expect(run_on(f, "2026-02-28"), "expiring", "ag_sp_a", "high", "2026-02-28");
    expect_none(run_on(f, "2026-02-28"), "no_active_dpa", "sp_a");
}

static void test_expiring_report(void **state)
{
    fixture *f = fx(state, "2026-06-01");
    put(f->sp, "{'id':'sp_odoo','legal_name':'Odoo S.A.','status':'active','role':'subprocessor',"
               "'locations':[{'country':'BE','role':'hosting'}],'next_review_on':'2026-08-01',"
               "'certifications':[{'name':'ISO 27001','valid_until':'2026-05-01'}]}");
    add_dpa(f, "sp_odoo", ",'expires_on':'2026-07-01','review_on':'2026-06-15'");
    put(f->tom, "{'id':'tom_1','owner':'subprocessor','subprocessor_id':'sp_odoo','title':'Odoo TOMs',"
                "'version_label':'1','status':'active','effective_on':'2025-01-01','next_review_on':'2026-06-15',"
                "'measures':{}}");
    put(f->tom, "{'id':'tom_2','owner':'self','title':'Old TOMs','version_label':'0','status':'archived',"
                "'effective_on':'2020-01-01','next_review_on':'2026-06-02','measures':{}}");
    add_tr(f, "a", "sp_odoo", "US", "scc_2021",
           ",'scc_module':3,'valid_until':'2026-12-31','tia':{'performed_on':'2025-12-01',"
           "'next_review_on':'2026-09-01','risk':'low'}");
    cJSON *exp = compliance_expiring(&f->in, 90);
    /* sorted by date, then entity id; overdue included; the archived TOM is not */
    const char *want[][4] = {
        {"2026-05-01", "certification", "sp_odoo", "true"},
        {"2026-06-15", "agreement_review", "ag_sp_odoo", "false"},
        {"2026-06-15", "tom_review", "tom_1", "false"},
        {"2026-07-01", "agreement_expiry", "ag_sp_odoo", "false"},
        {"2026-08-01", "subprocessor_review", "sp_odoo", "false"},
    };
    assert_int_equal(cJSON_GetArraySize(exp), 5);
    for (int i = 0; i < 5; i++) {
        const cJSON *it = cJSON_GetArrayItem(exp, i);
        assert_string_equal(json_get_str(it, "date"), want[i][0]);
        assert_string_equal(json_get_str(it, "kind"), want[i][1]);
        assert_string_equal(json_get_str(it, "entity_id"), want[i][2]);
        assert_int_equal(cJSON_IsTrue(json_get(it, "overdue")), strcmp(want[i][3], "true") == 0);
        assert_string_equal(json_get_str(it, "subprocessor_id"), "sp_odoo");
        assert_non_null(json_get_str(it, "href"));
        assert_non_null(json_get_str(it, "entity_type"));
    }
    assert_string_equal(json_get_str(cJSON_GetArrayItem(exp, 3), "title"), "DPA Odoo S.A. expires");
    assert_string_equal(json_get_str(cJSON_GetArrayItem(exp, 2), "href"), "/v1/tom-documents/tom_1");
    cJSON_Delete(exp);
    /* a year out reaches the TIA review and the transfer's validity */
    exp = compliance_expiring(&f->in, 365);
    assert_int_equal(cJSON_GetArraySize(exp), 7);
    const cJSON *last = cJSON_GetArrayItem(exp, 6);
    assert_string_equal(json_get_str(last, "kind"), "transfer_validity");
    assert_string_equal(json_get_str(last, "entity_type"), "transfer");
    assert_string_equal(json_get_str(last, "href"), "/v1/transfers/tr_a");
    assert_string_equal(json_get_str(cJSON_GetArrayItem(exp, 5), "kind"), "tia_review");
    cJSON_Delete(exp);
    /* zero days: only what is due today or overdue */
    exp = compliance_expiring(&f->in, 0);
    assert_int_equal(cJSON_GetArraySize(exp), 1);
    cJSON_Delete(exp);
}

/* ---- rule 10: adequacy_at_risk ------------------------------------------- */

static void test_adequacy_under_challenge(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    add_sp(f, "sp_a", "active", "subprocessor", "US", ",'dpf':{'participating':true}");
    add_tr(f, "us", "sp_a", "US", "dpf", "");
    add_tr(f, "ch", "sp_a", "CH", "adequacy", "");
    add_sp(f, "sp_no", "active", "subprocessor", "US", ",'dpf':{'participating':false}");
    add_tr(f, "us_no", "sp_no", "US", "dpf", "");
    expect_none(run_on(f, "2026-01-15"), "adequacy_at_risk", "tr_us");
    fx_adequacy(f, ADEQUACY_CHALLENGED);
    const cJSON *out = run_on(f, "2026-01-15");
    const cJSON *hit = expect(out, "adequacy_at_risk", "tr_us", "info", NULL);
    /* a transfer the decision does not cover at all is partial_adequacy, not "at risk" */
    expect(out, "partial_adequacy", "tr_us_no", "critical", NULL);
    expect_none(out, "adequacy_at_risk", "tr_us_no");
    assert_string_equal(json_get_str(hit, "legal_ground"), "GDPR Art. 45(3)–(5)");
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "en"), "under challenge"));
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"), "angefochten"));
    expect_none(out, "adequacy_at_risk", "tr_ch");
}

static void test_adequacy_near_expiry(void **state)
{
    fixture *f = fx(state, "2030-12-01");
    add_sp(f, "sp_gb", "active", "subprocessor", "GB", "");
    add_tr(f, "gb", "sp_gb", "GB", "adequacy", "");
    expect_none(run_on(f, "2030-12-26"), "adequacy_at_risk", "tr_gb");          /* 366 days out */
    expect(run_on(f, "2030-12-27"), "adequacy_at_risk", "tr_gb", "info", "2031-12-27");
    expect(run_on(f, "2031-11-26"), "adequacy_at_risk", "tr_gb", "info", "2031-12-27"); /* 31 days out */
    expect(run_on(f, "2031-11-27"), "adequacy_at_risk", "tr_gb", "high", "2031-12-27"); /* 30 days out */
    expect(run_on(f, "2031-12-27"), "adequacy_at_risk", "tr_gb", "high", "2031-12-27");
    /* passed: no longer at risk but gone — that is no_valid_basis */
    const cJSON *out = run_on(f, "2031-12-28");
    expect_none(out, "adequacy_at_risk", "tr_gb");
    expect(out, "no_valid_basis", "tr_gb", "critical", "2031-12-28");
}

/* ---- retired subprocessors and ordering ---------------------------------- */

static void test_retired_ignored(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    add_sp(f, "sp_old", "retired", "processor", "US", ",'dpf':{'participating':false}");
    add_tr(f, "none", "sp_old", "US", "none", "");
    add_tr(f, "nodpf", "sp_old", "US", "dpf", "");
    add_tr(f, "mod", "sp_old", "US", "scc_2021", ",'scc_module':3");
    add_tr(f, "ca", "sp_old", "CA", "adequacy", ",'recipient_in_adequacy_scope':false");
    add_tr(f, "old", "sp_old", "US", "scc_2010", ",'contract_signed_on':'2021-10-01'");
    const cJSON *out = run_on(f, "2026-01-15");
    assert_int_equal(count_rule(out, "no_valid_basis"), 0);
    assert_int_equal(count_rule(out, "partial_adequacy"), 0);
    assert_int_equal(count_rule(out, "repealed_scc"), 0);
    assert_int_equal(count_rule(out, "wrong_scc_module"), 0);
    assert_int_equal(count_rule(out, "tia_missing"), 0);
    assert_int_equal(count_rule(out, "no_active_dpa"), 0);
    assert_int_equal(cJSON_GetArraySize(out), 0);
    /* the same subprocessor active: every rule speaks */
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(f->sp, 0), "status", cJSON_CreateString("active"));
    out = run_on(f, "2026-01-15");
    assert_int_equal(count_rule(out, "no_valid_basis"), 1);
    assert_int_equal(count_rule(out, "partial_adequacy"), 2);
    assert_int_equal(count_rule(out, "repealed_scc"), 1);
    assert_int_equal(count_rule(out, "wrong_scc_module"), 1);
    assert_int_equal(count_rule(out, "tia_missing"), 2);
    assert_int_equal(count_rule(out, "no_active_dpa"), 1);
}

static int sev_rank(const char *s)
{
    static const char *const order[] = {"critical", "high", "medium", "low", "info"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, order[i]) == 0) return i;
    fail_msg("unknown severity %s", s);
    return -1;
}

static void test_ordering(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    fx_adequacy(f, ADEQUACY_CHALLENGED);
    add_sp(f, "sp_b", "active", "subprocessor", "US",
           ",'dpf':{'participating':true,'verified_on':'2025-12-01'}"); /* no DPA: high */
    add_sp(f, "sp_a", "active", "subprocessor", "DE", "");                              /* no DPA: high */
    add_tr(f, "z", "sp_b", "US", "dpf", "");              /* under challenge: info */
    add_tr(f, "y", "sp_b", "US", "scc_2021", ",'scc_module':2"); /* wrong module + no TIA: high, high */
    add_tr(f, "x", "sp_b", "IN", "none", "");             /* critical */
    add_tr(f, "w", "sp_b", "US", "scc_2021",
           ",'scc_module':3,'tia':{'performed_on':'2024-06-01','risk':'low'}"); /* stale TIA: medium */
    add_tr(f, "v", "sp_b", "US", "none", "");             /* critical */
    const cJSON *out = run_on(f, "2026-01-15");
    const char *want[][3] = {
        {"critical", "no_valid_basis", "tr_v"}, {"critical", "no_valid_basis", "tr_x"},
        {"high", "no_active_dpa", "sp_a"},      {"high", "no_active_dpa", "sp_b"},
        {"high", "tia_missing", "tr_y"},        {"high", "wrong_scc_module", "tr_y"},
        {"medium", "tia_missing", "tr_w"},      {"info", "adequacy_at_risk", "tr_z"},
    };
    size_t n = sizeof want / sizeof want[0];
    if ((size_t)cJSON_GetArraySize(out) != n) {
        char *dump = cJSON_Print(out);
        print_error("findings: %s\n", dump);
        free(dump);
    }
    assert_int_equal(cJSON_GetArraySize(out), n);
    for (size_t i = 0; i < n; i++) {
        const cJSON *it = cJSON_GetArrayItem(out, (int)i);
        assert_string_equal(json_get_str(it, "severity"), want[i][0]);
        assert_string_equal(json_get_str(it, "rule"), want[i][1]);
        assert_string_equal(json_get_str(it, "entity_id"), want[i][2]);
    }
    /* and in general: never out of order */
    const cJSON *prev = NULL, *it;
    cJSON_ArrayForEach(it, out)
    {
        if (prev) {
            int a = sev_rank(json_get_str(prev, "severity")), b = sev_rank(json_get_str(it, "severity"));
            assert_true(a <= b);
            if (a == b) {
                int r = strcmp(json_get_str(prev, "rule"), json_get_str(it, "rule"));
                assert_true(r <= 0);
                if (r == 0) assert_true(strcmp(json_get_str(prev, "entity_id"), json_get_str(it, "entity_id")) <= 0);
            }
        }
        prev = it;
    }
}


/* ---- rules 8 and 9 -------------------------------------------------------- */

/* Publications, customers and objections for the rules that read them (the
 * other tests run without them); freed by fx_teardown. */
static void pub_init(fixture *f, const char *now)
{
    f->pub = cJSON_CreateArray();
    f->cu = cJSON_CreateArray();
    f->ob = cJSON_CreateArray();
    f->in.publications = f->pub;
    f->in.customers = f->cu;
    f->in.objections = f->ob;
    f->in.now = now;
}

/* A publication whose items are the given subprocessor ids ('a','b'); added
 * non-empty marks it as announcing an addition. */
static void add_pub(fixture *f, int number, const char *published, const char *effective, const char *items,
                    bool adds)
{
    put(f->pub,
        "{'id':'%d','number':%d,'published_at':'%s','effective_at':'%s','items':[%s],"
        "'diff':{'added':[%s],'removed':[],'changed':[]}}",
        number, number, published, effective, items, adds ? "{'id':'x'}" : "");
}

static void test_notice_period(void **state)
{
    fixture *f = fx(state, "2026-11-27");
    pub_init(f, "2026-11-27T12:00:00Z");
    put(f->cu, "{'id':'cu_a','status':'active','notice_days':30,'objection_days':30}");
    put(f->cu, "{'id':'cu_b','status':'inactive','notice_days':90,'objection_days':30}");
    add_pub(f, 1, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "", true);
    /* announced today, effective in 29 days: one day short for cu_a */
    add_pub(f, 2, "2026-11-27T12:00:00Z", "2026-12-26T12:00:00Z", "", true);
    const cJSON *out = run_on(f, "2026-11-27");
    const cJSON *x = expect(out, "notice_period", "2", "high", "2026-12-26");
    assert_non_null(strstr(json_get_str(json_get(x, "message"), "en"), "1 customer(s)"));
    /* the first publication never needs notice */
    expect_none(out, "notice_period", "1");
}

/* near miss: exactly 30 days, and the inactive customer's 90 days do not count */
static void test_notice_period_near_miss(void **state)
{
    fixture *f = fx(state, "2026-11-27");
    pub_init(f, "2026-11-27T12:00:00Z");
    put(f->cu, "{'id':'cu_a','status':'active','notice_days':30,'objection_days':30}");
    put(f->cu, "{'id':'cu_b','status':'inactive','notice_days':90,'objection_days':30}");
    add_pub(f, 1, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "", true);
    add_pub(f, 2, "2026-11-27T12:00:00Z", "2026-12-27T12:00:00Z", "", true);
    const cJSON *out = run_on(f, "2026-11-27");
    expect_none(out, "notice_period", "2");
    /* a removal needs no notice */
    cJSON_Delete(cJSON_DetachItemFromArray(f->pub, 1));
    add_pub(f, 2, "2026-11-27T12:00:00Z", "2026-11-28T12:00:00Z", "", false);
    out = run_on(f, "2026-11-27");
    expect_none(out, "notice_period", "2");
}

static void test_open_objection(void **state)
{
    fixture *f = fx(state, "2026-11-27");
    pub_init(f, "2026-11-27T12:00:00Z");
    add_pub(f, 1, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "", false);
    add_pub(f, 2, "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z", "", false);
    put(f->ob, "{'id':'ob_1','publication_id':'2','customer_id':'cu_a','status':'open'}");
    put(f->ob, "{'id':'ob_2','publication_id':'1','customer_id':'cu_a','status':'withdrawn'}");
    const cJSON *out = run_on(f, "2026-11-27");
    expect(out, "notice_period", "2", "high", NULL);
    expect_none(out, "notice_period", "1"); /* withdrawn: no finding */
    /* resolved: no finding */
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(f->ob, 0), "status", cJSON_CreateString("resolved"));
    out = run_on(f, "2026-11-27");
    expect_none(out, "notice_period", "2");
}

static void test_public_list_drift(void **state)
{
    fixture *f = fx(state, "2026-11-27");
    pub_init(f, "2026-11-27T12:00:00Z");
    add_sp(f, "sp_on", "active", "subprocessor", "DE", "");
    add_sp(f, "sp_missing", "active", "subprocessor", "DE", "");
    add_sp(f, "sp_unlisted", "active", "subprocessor", "DE", "");
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(f->sp, 2), "public", parse_q("{'listed':false}"));
    add_sp(f, "sp_gone", "retired", "subprocessor", "DE", "");
    add_sp(f, "sp_proposed", "proposed", "subprocessor", "DE", "");
    add_pub(f, 1, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "{'id':'sp_on'},{'id':'sp_gone'}", true);
    /* announced, not in effect yet: it does not count */
    add_pub(f, 2, "2026-11-20T00:00:00Z", "2027-01-01T00:00:00Z", "{'id':'sp_on'},{'id':'sp_missing'}", true);
    const cJSON *out = run_on(f, "2026-11-27");
    expect(out, "public_list_drift", "sp_missing", "medium", NULL);
    expect(out, "public_list_drift", "sp_gone", "medium", NULL);
    expect_none(out, "public_list_drift", "sp_on");
    expect_none(out, "public_list_drift", "sp_unlisted");
    expect_none(out, "public_list_drift", "sp_proposed");
    /* once version 2 is in effect, sp_missing is on it and sp_gone is off it */
    f->in.now = "2027-01-02T00:00:00Z";
    out = run_on(f, "2027-01-02");
    expect_none(out, "public_list_drift", "sp_missing");
    expect_none(out, "public_list_drift", "sp_gone");
}

/* Deleted from the registry by other means than the API (which refuses it) but
 * still on the list in effect: drift, named by the published entry. */
static void test_public_list_drift_covers_deleted_entries(void **state)
{
    fixture *f = fx(state, "2026-11-27");
    pub_init(f, "2026-11-27T12:00:00Z");
    add_sp(f, "sp_on", "active", "subprocessor", "DE", "");
    add_pub(f, 1, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z",
            "{'id':'sp_on','legal_name':'On'},{'id':'sp_deleted','legal_name':'Deleted GmbH'}", true);
    /* announced, not in effect: what it lists does not count yet */
    add_pub(f, 2, "2026-11-20T00:00:00Z", "2027-01-01T00:00:00Z", "{'id':'sp_on'},{'id':'sp_later'}", true);
    const cJSON *out = run_on(f, "2026-11-27");
    const cJSON *x = expect(out, "public_list_drift", "sp_deleted", "medium", NULL);
    assert_non_null(strstr(json_get_str(json_get(x, "message"), "en"), "Deleted GmbH (sp_deleted) was deleted"));
    expect_none(out, "public_list_drift", "sp_on");
    expect_none(out, "public_list_drift", "sp_later");
    /* once a version without it is in effect, nothing is left to report */
    f->in.now = "2027-01-02T00:00:00Z";
    out = run_on(f, "2027-01-02");
    expect_none(out, "public_list_drift", "sp_deleted");
}

/* A replaced announcement never takes effect: not in effect after its date, and
 * its short notice is no finding. */
static void test_replaced_announcement(void **state)
{
    fixture *f = fx(state, "2026-11-27");
    pub_init(f, "2026-11-27T12:00:00Z");
    put(f->cu, "{'id':'cu_a','status':'active','notice_days':30,'objection_days':30}");
    add_pub(f, 1, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "{'id':'sp_a'}", true);
    add_pub(f, 2, "2026-11-27T12:00:00Z", "2026-12-01T12:00:00Z", "{'id':'sp_a'},{'id':'sp_b'}", true);
    const cJSON *out = run_on(f, "2026-11-27");
    expect(out, "notice_period", "2", "high", "2026-12-01");
    put(f->pub, "{'id':'3','number':3,'published_at':'2026-11-27T12:00:00Z','effective_at':'2026-12-28T12:00:00Z',"
                "'replaces':2,'items':[{'id':'sp_a'}],'diff':{'added':[{'id':'x'}],'removed':[],'changed':[]}}");
    out = run_on(f, "2026-11-27");
    expect_none(out, "notice_period", "2");
    expect_none(out, "notice_period", "3");
    /* after version 2's date, version 1 is still in effect */
    int64_t after2 = 0;
    assert_true(parse_rfc3339("2026-12-02T00:00:00Z", &after2));
    assert_string_equal(json_get_str(publication_in_effect(f->pub, after2), "id"), "1");
}

/* override_notice: reported from its publication until a later regular version
 * has taken effect; a later override or one still announced does not end it. */
static void test_override_notice(void **state)
{
    fixture *f = fx(state, "2026-11-27");
    pub_init(f, "2026-11-27T12:00:00Z");
    add_pub(f, 1, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "", true);
    put(f->pub, "{'id':'2','number':2,'published_at':'2026-11-01T00:00:00Z','effective_at':'2026-11-02T00:00:00Z',"
                "'override_notice':true,'override_reason':{'de':'Sicherheitslücke','en':'Security flaw'},"
                "'items':[],'diff':{'added':[],'removed':[],'changed':[]}}");
    const cJSON *out = run_on(f, "2026-11-27");
    const cJSON *x = expect(out, "override_notice", "2", "medium", "2026-11-02");
    assert_non_null(strstr(json_get_str(json_get(x, "message"), "en"), "reason: Security flaw"));
    assert_non_null(strstr(json_get_str(json_get(x, "message"), "de"), "Grund: Sicherheitslücke"));
    expect_none(out, "override_notice", "1");
    /* a regular version announced: still reported */
    add_pub(f, 3, "2026-11-20T00:00:00Z", "2026-12-27T00:00:00Z", "", true);
    out = run_on(f, "2026-11-27");
    expect(out, "override_notice", "2", "medium", "2026-11-02");
    /* ... until it takes effect */
    f->in.now = "2026-12-28T00:00:00Z";
    out = run_on(f, "2026-12-28");
    expect_none(out, "override_notice", "2");
}

/* ---- regimes, DPF re-certification, Clauses 17/18, missing reference ------ */

static void test_regime_and_instrument(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    add_sp(f, "sp_a", "active", "subprocessor", "US", "");
    const char *tia = ",'tia':{'performed_on':'2025-12-01','risk':'low'}";
    char buf[512];
    static const struct {
        const char *id, *regime, *basis;
        bool fires;
    } cases[] = {
        {"eu_idta", "eu", "uk_idta", true},       {"uk_idta", "uk", "uk_idta", false},
        {"eu_add", "eu", "uk_addendum", true},    {"uk_add", "uk", "uk_addendum", false},
        {"ch_idta", "ch", "uk_idta", true},       {"uk_scc", "uk", "scc_2021", true},
        {"eu_scc", "eu", "scc_2021", false},      {"ch_scc", "ch", "ch_scc", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool module = strstr(cases[i].basis, "scc") || strcmp(cases[i].basis, "uk_addendum") == 0;
        snprintf(buf, sizeof buf,
                 "{'id':'tr_%s','subprocessor_id':'sp_a','destination_country':'US','regime':'%s','basis':'%s'%s%s}",
                 cases[i].id, cases[i].regime, cases[i].basis, module ? ",'scc_module':3" : "", tia);
        put(f->tr, "%s", buf);
    }
    const cJSON *out = run_on(f, "2026-01-15");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char id[32];
        snprintf(id, sizeof id, "tr_%s", cases[i].id);
        if (cases[i].fires) expect(out, "no_valid_basis", id, "critical", NULL);
        else expect_none(out, "no_valid_basis", id);
    }
    assert_string_equal(json_get_str(find(out, "no_valid_basis", "tr_uk_scc"), "legal_ground"),
                        "UK GDPR Art. 46; s. 119A DPA 2018");
    assert_string_equal(json_get_str(find(out, "no_valid_basis", "tr_ch_idta"), "legal_ground"), "Swiss FADP Art. 16");
    assert_non_null(strstr(json_get_str(json_get(find(out, "no_valid_basis", "tr_eu_idta"), "message"), "de"),
                           "auf Grundlage des UK IDTA"));
}

static void test_dpf_verification_is_yearly(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    add_sp(f, "sp_fresh", "active", "subprocessor", "US", ",'dpf':{'participating':true,'verified_on':'2025-01-15'}");
    add_sp(f, "sp_stale", "active", "subprocessor", "US", ",'dpf':{'participating':true,'verified_on':'2025-01-14'}");
    add_sp(f, "sp_early", "active", "subprocessor", "US", ",'dpf':{'participating':true,'verified_on':'2023-07-09'}");
    add_tr(f, "fresh", "sp_fresh", "US", "dpf", "");
    add_tr(f, "stale", "sp_stale", "US", "dpf", "");
    add_tr(f, "early", "sp_early", "US", "dpf", "");
    const cJSON *out = run_on(f, "2026-01-15");
    expect_none(out, "partial_adequacy", "tr_fresh"); /* exactly a year ago: still current */
    const cJSON *hit = expect(out, "partial_adequacy", "tr_stale", "high", "2026-01-15");
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "en"), "re-certify every year"));
    expect(out, "partial_adequacy", "tr_early", "high", NULL); /* before the DPF decision */
}

static void test_scc_governing_law_and_forum(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    add_sp(f, "sp_a", "active", "subprocessor", "US", "");
    const char *tia = ",'tia':{'performed_on':'2025-12-01','risk':'low'}";
    put(f->tr, "{'id':'tr_ie','subprocessor_id':'sp_a','destination_country':'US','regime':'eu','basis':'scc_2021',"
               "'scc_module':3,'scc_options':{'governing_law':'FR','forum':'NO'}%s}", tia);
    put(f->tr, "{'id':'tr_us','subprocessor_id':'sp_a','destination_country':'US','regime':'eu','basis':'scc_2021',"
               "'scc_module':3,'scc_options':{'governing_law':'US','forum':'FR'}%s}", tia);
    put(f->tr, "{'id':'tr_m4','subprocessor_id':'sp_a','destination_country':'US','regime':'eu','basis':'scc_2021',"
               "'scc_module':4,'scc_options':{'governing_law':'US','forum':'US'}%s}", tia);
    put(f->tr, "{'id':'tr_ch','subprocessor_id':'sp_a','destination_country':'US','regime':'ch','basis':'ch_scc',"
               "'scc_module':3,'scc_options':{'governing_law':'CH','forum':'CH'}%s}", tia);
    put(f->tr, "{'id':'tr_chus','subprocessor_id':'sp_a','destination_country':'US','regime':'ch','basis':'ch_scc',"
               "'scc_module':3,'scc_options':{'governing_law':'CH','forum':'US'}%s}", tia);
    const cJSON *out = run_on(f, "2026-01-15");
    expect_none(out, "scc_clauses", "tr_ie"); /* FR law, Norwegian (EEA) forum */
    const cJSON *hit = expect(out, "scc_clauses", "tr_us", "high", NULL);
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "en"), "Clause 17"));
    assert_int_equal(count_rule(out, "scc_clauses"), 2); /* tr_us law, tr_chus forum */
    expect_none(out, "scc_clauses", "tr_m4");
    expect_none(out, "scc_clauses", "tr_ch");
    assert_non_null(strstr(json_get_str(json_get(find(out, "scc_clauses", "tr_chus"), "message"), "en"), "Clause 18"));
}

static void test_repealed_set_missing_from_reference(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    cJSON_Delete(f->scc);
    f->scc = parse_q("[]"); /* an admin deleted the reference entries */
    f->in.scc_sets = f->scc;
    add_sp(f, "sp_a", "active", "subprocessor", "US", "");
    add_tr(f, "old", "sp_a", "US", "scc_2010", ",'contract_signed_on':'2020-05-01'");
    expect(run_on(f, "2026-01-15"), "repealed_scc", "tr_old", "critical", NULL);
}

/* ---- each regime against its own adequacy list ----------------------------- */

/* The regimes' entries for the US and Korea as seeded, on top of the EU's. */
static const char *const ADEQUACY_REGIMES =
    "[" ADEQ_US("false") "," ADEQ_OTHERS ","
    "{'id':'uk-us','regime':'uk','country':'US','act':'SI 2023/1028','adopted_on':'2023-09-21',"
    " 'in_force_from':'2023-10-12','scope':'partial','condition':'dpf_participation','status':'in_force',"
    " 'under_challenge':false},"
    "{'id':'ch-us','regime':'ch','country':'US','act':'DPO Annex 1','adopted_on':'2024-08-14',"
    " 'in_force_from':'2024-09-15','scope':'partial','condition':'dpf_participation','status':'in_force',"
    " 'under_challenge':false},"
    "{'id':'uk-kr','regime':'uk','country':'KR','act':'SI 2022/1213','adopted_on':'2022-11-21',"
    " 'in_force_from':'2022-12-19','scope':'full','condition':'none','status':'in_force','under_challenge':false},"
    "{'id':'uk-ch','regime':'uk','country':'CH','act':'DPA 2018 Sch. 21','adopted_on':'2021-01-01',"
    " 'scope':'full','condition':'none','status':'in_force','under_challenge':false},"
    "{'id':'ch-gb','regime':'ch','country':'GB','act':'DPO Annex 1','adopted_on':'2022-08-31',"
    " 'in_force_from':'2023-09-01','scope':'full','condition':'none','status':'in_force','under_challenge':false}]";

/* A transfer tr_<id> of sp_a to dest under a regime; extra is more members or "". */
static void add_tr_in(fixture *f, const char *id, const char *regime, const char *dest, const char *basis,
                      const char *extra)
{
    put(f->tr, "{'id':'tr_%s','subprocessor_id':'sp_a','destination_country':'%s','regime':'%s','basis':'%s'%s}", id,
        dest, regime, basis, extra);
}

/* The EU-US DPF counts from the day of Implementing Decision (EU) 2023/1795. */
static void test_eu_dpf_starts_2023_07_10(void **state)
{
    fixture *f = fx(state, "2023-07-10");
    add_sp(f, "sp_a", "active", "subprocessor", "US",
           ",'dpf':{'participating':true,'frameworks':['eu-us'],'verified_on':'2023-07-10'}");
    add_tr_in(f, "eu", "eu", "US", "dpf", "");
    const cJSON *out = run_on(f, "2023-07-09");
    const cJSON *hit = expect(out, "no_valid_basis", "tr_eu", "critical", NULL);
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "en"), "applies only from 2023-07-10"));
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"), "erst ab 10.07.2023"));
    out = run_on(f, "2023-07-10");
    expect_none(out, "no_valid_basis", "tr_eu");
    expect_none(out, "partial_adequacy", "tr_eu");
}

/* A regime's US adequacy from its first day, and only for a listing with the
 * regime's part of the DPF: sp_a has it, sp_other only other parts. */
typedef struct {
    const char *regime, *parts, *other_parts, *day_before, *first_day, *ground_basis, *ground_adequacy, *label;
} dpf_regime_case;

static void check_dpf_regime_starts(void **state, const dpf_regime_case *k)
{
    fixture *f = fx(state, k->first_day);
    fx_adequacy(f, ADEQUACY_REGIMES);
    char extra[256];
    snprintf(extra, sizeof extra, ",'dpf':{'participating':true,'frameworks':[%s],'verified_on':'%s'}", k->parts,
             k->first_day);
    add_sp(f, "sp_a", "active", "subprocessor", "US", extra);
    snprintf(extra, sizeof extra, ",'dpf':{'participating':true,'frameworks':[%s],'verified_on':'%s'}",
             k->other_parts, k->first_day);
    add_sp(f, "sp_other", "active", "subprocessor", "US", extra);
    add_tr_in(f, "in", k->regime, "US", "dpf", "");
    put(f->tr, "{'id':'tr_other','subprocessor_id':'sp_other','destination_country':'US','regime':'%s',"
               "'basis':'dpf'}", k->regime);
    put(f->tr, "{'id':'tr_eu','subprocessor_id':'sp_other','destination_country':'US','regime':'eu','basis':'dpf'}");
    const cJSON *out = run_on(f, k->day_before);
    const cJSON *hit = expect(out, "no_valid_basis", "tr_in", "critical", NULL);
    assert_string_equal(json_get_str(hit, "legal_ground"), k->ground_basis);
    expect_none(out, "no_valid_basis", "tr_eu"); /* the EU-US DPF already counted */
    out = run_on(f, k->first_day);
    expect_none(out, "no_valid_basis", "tr_in");
    expect_none(out, "partial_adequacy", "tr_in");
    /* a listing without the regime's part does not cover the regime's transfer */
    hit = expect(out, "partial_adequacy", "tr_other", "critical", NULL);
    assert_string_equal(json_get_str(hit, "legal_ground"), k->ground_adequacy);
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "en"), k->label));
    expect_none(out, "partial_adequacy", "tr_eu");
}

/* UK transfers to the US: the UK-US data bridge (SI 2023/1028) from 12 Oct 2023,
 * and only for a listing with the UK Extension; the EU decision does not count. */
static void test_uk_data_bridge_starts_2023_10_12(void **state)
{
    check_dpf_regime_starts(state, &(dpf_regime_case){"uk", "'eu-us','uk-extension'", "'eu-us'", "2023-10-11",
                                                      "2023-10-12", "UK GDPR Art. 44–46",
                                                      "UK GDPR Art. 45; DPA 2018 s. 17A, Sch. 21 para. 4–5",
                                                      "UK Extension"});
}

/* Swiss transfers to the US: DPO Annex 1 from 15 Sep 2024, Swiss-US certification only. */
static void test_swiss_us_dpf_starts_2024_09_15(void **state)
{
    check_dpf_regime_starts(state, &(dpf_regime_case){"ch", "'eu-us','swiss-us'", "'eu-us','uk-extension'",
                                                      "2024-09-14", "2024-09-15", "Swiss FADP Art. 16",
                                                      "Swiss FADP Art. 16(1); DPO Art. 8, Annex 1",
                                                      "Swiss-US Data Privacy Framework"});
}

/* Adequacy is looked up in the transfer's own regime: a UK regulation (Korea
 * from 19 Dec 2022) counts for UK transfers only, an EU decision for EU ones. */
static void test_adequacy_per_regime(void **state)
{
    fixture *f = fx(state, "2022-12-19");
    fx_adequacy(f, ADEQUACY_REGIMES);
    add_sp(f, "sp_a", "active", "subprocessor", "KR", "");
    add_tr_in(f, "uk_kr", "uk", "KR", "adequacy", "");
    add_tr_in(f, "eu_kr", "eu", "KR", "adequacy", ""); /* the fixture has no EU decision for Korea */
    add_tr_in(f, "uk_ch", "uk", "CH", "adequacy", "");
    add_tr_in(f, "ch_ch", "ch", "CH", "none", "");     /* within Switzerland: no transfer */
    add_tr_in(f, "uk_gb", "uk", "GB", "none", "");     /* within the UK: no transfer */
    add_tr_in(f, "ch_gb", "ch", "GB", "adequacy", "");
    add_tr_in(f, "ch_jp", "ch", "JP", "adequacy", ",'recipient_in_adequacy_scope':true"); /* EU only */
    add_tr_in(f, "uk_fr", "uk", "FR", "none", "");     /* the EEA is adequate for the UK too */
    const cJSON *out = run_on(f, "2022-12-18");
    expect(out, "no_valid_basis", "tr_uk_kr", "critical", NULL);
    out = run_on(f, "2022-12-19");
    expect_none(out, "no_valid_basis", "tr_uk_kr");
    expect(out, "no_valid_basis", "tr_eu_kr", "critical", NULL);
    expect_none(out, "no_valid_basis", "tr_uk_ch");
    expect_none(out, "no_valid_basis", "tr_ch_ch");
    expect_none(out, "no_valid_basis", "tr_uk_gb");
    expect_none(out, "no_valid_basis", "tr_uk_fr");
    const cJSON *hit = expect(out, "no_valid_basis", "tr_ch_jp", "critical", NULL);
    assert_string_equal(json_get_str(hit, "legal_ground"), "Swiss FADP Art. 16");
    /* Switzerland lists the UK from the revised FADP (1 Sep 2023) */
    expect(out, "no_valid_basis", "tr_ch_gb", "critical", NULL);
    expect_none(run_on(f, "2023-09-01"), "no_valid_basis", "tr_ch_gb");
    expect(run_on(f, "2023-08-31"), "no_valid_basis", "tr_ch_gb", "critical", NULL);
}

/* A listing never verified is a finding like a stale one; so is a check made
 * before the regime's part of the DPF counted. */
static void test_dpf_never_verified(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    fx_adequacy(f, ADEQUACY_REGIMES);
    add_sp(f, "sp_a", "active", "subprocessor", "US", ",'dpf':{'participating':true,'frameworks':['eu-us']}");
    add_sp(f, "sp_uk", "active", "subprocessor", "US",
           ",'dpf':{'participating':true,'frameworks':['eu-us','uk-extension'],'verified_on':'2023-10-11'}");
    add_sp(f, "sp_uk2", "active", "subprocessor", "US",
           ",'dpf':{'participating':true,'frameworks':['eu-us','uk-extension'],'verified_on':'2025-10-12'}");
    add_tr_in(f, "never", "eu", "US", "dpf", "");
    put(f->tr, "{'id':'tr_early','subprocessor_id':'sp_uk','destination_country':'US','regime':'uk','basis':'dpf'}");
    put(f->tr, "{'id':'tr_ok','subprocessor_id':'sp_uk2','destination_country':'US','regime':'uk','basis':'dpf'}");
    const cJSON *out = run_on(f, "2026-01-15");
    const cJSON *hit = expect(out, "partial_adequacy", "tr_never", "high", NULL);
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "en"), "never verified"));
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"), "nie geprüft"));
    hit = expect(out, "partial_adequacy", "tr_early", "high", NULL);
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "en"), "before the decision applied"));
    expect_none(out, "partial_adequacy", "tr_ok");
}

/* ---- transfer_not_recorded: adequate, but not in the record -------------- */

static void test_location_adequate_not_recorded(void **state)
{
    fixture *f = fx(state, "2031-12-27");
    add_sp(f, "sp_ch", "active", "subprocessor", "CH", "");
    add_sp(f, "sp_dpf", "active", "subprocessor", "US", ",'dpf':{'participating':true,'verified_on':'2031-06-01'}");
    add_sp(f, "sp_nodpf", "active", "subprocessor", "US", ",'dpf':{'participating':false}");
    add_sp(f, "sp_swiss_only", "active", "subprocessor", "US",
           ",'dpf':{'participating':true,'frameworks':['swiss-us'],'verified_on':'2031-06-01'}");
    add_sp(f, "sp_jp", "proposed", "subprocessor", "JP", ""); /* partial: scope unknown without a transfer */
    add_sp(f, "sp_gb", "active", "subprocessor", "GB", "");
    const cJSON *out = run_on(f, "2031-12-27");
    const cJSON *hit = expect(out, "transfer_not_recorded", "sp_ch", "medium", NULL);
    assert_string_equal(json_get_str(hit, "legal_ground"), "GDPR Art. 30(1)(e), 30(2)(c)");
    assert_string_equal(json_get_str(hit, "entity_type"), "subprocessor");
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"), "nicht im Verzeichnis erfasst"));
    expect_none(out, "no_valid_basis", "sp_ch");
    expect(out, "transfer_not_recorded", "sp_dpf", "medium", NULL);
    expect(out, "no_valid_basis", "sp_nodpf", "critical", NULL);
    expect(out, "no_valid_basis", "sp_swiss_only", "critical", NULL); /* no EU-US listing */
    expect(out, "no_valid_basis", "sp_jp", "critical", NULL);
    expect_none(out, "transfer_not_recorded", "sp_jp");
    expect(out, "transfer_not_recorded", "sp_gb", "medium", NULL);
    /* the day after the UK decision ends the location has no basis at all */
    out = run_on(f, "2031-12-28");
    expect_none(out, "transfer_not_recorded", "sp_gb");
    expect(out, "no_valid_basis", "sp_gb", "critical", NULL);
    /* recorded: neither */
    add_tr(f, "ch", "sp_ch", "CH", "adequacy", "");
    out = run_on(f, "2031-12-27");
    expect_none(out, "transfer_not_recorded", "sp_ch");
    expect_none(out, "no_valid_basis", "sp_ch");
}

/* ---- derogation_systematic --------------------------------------------- */

static void test_derogation_not_for_systematic_transfers(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    put(f->sp, "{'id':'sp_a','legal_name':'Name sp_a','category':'other','role':'subprocessor','status':'active',"
               "'locations':[{'country':'US','role':'hosting'},{'country':'IN','role':'support'},"
               "{'country':'SG','role':'remote_access'},{'country':'AU','role':'backup'}]}");
    put(f->sp, "{'id':'sp_rmm','legal_name':'Name sp_rmm','category':'rmm','role':'subprocessor','status':'active',"
               "'locations':[{'country':'IN','role':'support'}]}");
    add_tr_in(f, "host", "eu", "US", "art49", ",'art49_derogation':'a','valid_from':'2025-02-01'");
    add_tr_in(f, "support", "eu", "IN", "art49", ",'art49_derogation':'b'"); /* occasional support: fine */
    add_tr_in(f, "remote", "uk", "SG", "art49", ",'art49_derogation':'b'");
    add_tr_in(f, "backup", "ch", "AU", "art49", ",'art49_derogation':'b'");
    add_tr_in(f, "scc", "eu", "US", "scc_2021", ",'scc_module':3,'tia':{'performed_on':'2025-12-01','risk':'low'}");
    put(f->tr, "{'id':'tr_rmm','subprocessor_id':'sp_rmm','destination_country':'IN','regime':'eu','basis':'art49',"
               "'art49_derogation':'b'}");
    const cJSON *out = run_on(f, "2026-01-15");
    const cJSON *hit = expect(out, "derogation_systematic", "tr_host", "critical", "2025-02-01");
    assert_string_equal(json_get_str(hit, "legal_ground"), "GDPR Art. 49(1); EDPB Guidelines 2/2018");
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "en"), "hosts the data there"));
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "de"), "Ausnahmen tragen nur gelegentliche"));
    expect_none(out, "derogation_systematic", "tr_support");
    expect_none(out, "derogation_systematic", "tr_scc");
    assert_string_equal(json_get_str(expect(out, "derogation_systematic", "tr_remote", "critical", NULL),
                                     "legal_ground"), "UK GDPR Art. 49(1); EDPB Guidelines 2/2018");
    assert_string_equal(json_get_str(expect(out, "derogation_systematic", "tr_backup", "critical", NULL),
                                     "legal_ground"), "Swiss FADP Art. 17");
    hit = expect(out, "derogation_systematic", "tr_rmm", "critical", NULL);
    assert_non_null(strstr(json_get_str(json_get(hit, "message"), "en"), "remote monitoring"));
    /* the derogation itself is a basis: no no_valid_basis finding */
    assert_int_equal(count_rule(out, "no_valid_basis"), 0);
}

/* The facts shipped in data/reference (embedded in the binary), through the
 * rules: the boundaries domain.md names, with the real decisions and sets. */
extern const char subreg_seed_countries[], subreg_seed_adequacy[], subreg_seed_scc_sets[];

static void test_shipped_reference_data(void **state)
{
    fixture *f = fx(state, "2026-01-15");
    cJSON_Delete(f->countries);
    cJSON_Delete(f->adequacy);
    cJSON_Delete(f->scc);
    f->in.countries = f->countries = cJSON_Parse(subreg_seed_countries);
    f->in.adequacy_decisions = f->adequacy = cJSON_Parse(subreg_seed_adequacy);
    f->in.scc_sets = f->scc = cJSON_Parse(subreg_seed_scc_sets);
    assert_true(cJSON_GetArraySize(f->countries) > 240);
    const char *tia = ",'tia':{'performed_on':'2025-12-01','risk':'low'}";
    add_sp(f, "sp_us", "active", "subprocessor", "US", ",'dpf':{'participating':true,'verified_on':'2025-06-01'}");
    add_sp(f, "sp_us_no", "active", "subprocessor", "US", ",'dpf':{'participating':false}");
    add_sp(f, "sp_ca", "active", "subprocessor", "CA", "");
    add_sp(f, "sp_re", "active", "subprocessor", "RE", ""); /* Réunion: EU territory */
    add_tr(f, "dpf", "sp_us", "US", "dpf", "");
    add_tr(f, "nodpf", "sp_us_no", "US", "dpf", "");
    add_tr(f, "ca_in", "sp_ca", "CA", "adequacy", ",'recipient_in_adequacy_scope':true");
    add_tr(f, "ca_out", "sp_ca", "CA", "adequacy", ",'recipient_in_adequacy_scope':false");
    add_tr(f, "gb", "sp_ca", "GB", "adequacy", "");
    add_tr(f, "s2020", "sp_ca", "US", "scc_2010", ",'contract_signed_on':'2020-05-01'");
    add_tr(f, "s0926", "sp_ca", "US", "scc_2010", ",'contract_signed_on':'2021-09-26'");
    add_tr(f, "s0927", "sp_ca", "US", "scc_2010", ",'contract_signed_on':'2021-09-27'");
    put(f->tr, "{'id':'tr_uk0921','subprocessor_id':'sp_ca','destination_country':'US','regime':'uk',"
               "'basis':'scc_2010','contract_signed_on':'2022-09-21'%s}", tia);
    put(f->tr, "{'id':'tr_uk0922','subprocessor_id':'sp_ca','destination_country':'US','regime':'uk',"
               "'basis':'scc_2010','contract_signed_on':'2022-09-22'%s}", tia);

    const cJSON *out = run_on(f, "2026-01-15");
    expect_none(out, "partial_adequacy", "tr_dpf");
    expect(out, "partial_adequacy", "tr_nodpf", "critical", NULL);
    expect_none(out, "partial_adequacy", "tr_ca_in");
    expect(out, "partial_adequacy", "tr_ca_out", "critical", NULL);
    expect_none(out, "no_valid_basis", "sp_re");
    expect_none(out, "no_valid_basis", "tr_gb");
    expect(out, "adequacy_at_risk", "tr_dpf", "info", NULL); /* the pending appeal C-703/25 P */

    out = run_on(f, "2022-01-10");
    expect_none(out, "repealed_scc", "tr_s2020");
    expect_none(out, "repealed_scc", "tr_s0926");
    expect(out, "repealed_scc", "tr_s0927", "critical", "2021-09-27");
    expect_none(out, "repealed_scc", "tr_uk0921");
    expect(run_on(f, "2022-12-27"), "repealed_scc", "tr_uk0922", "critical", "2022-09-22");
    expect_none(run_on(f, "2022-12-27"), "repealed_scc", "tr_s2020");
    expect(run_on(f, "2022-12-28"), "repealed_scc", "tr_s2020", "critical", "2022-12-28");
    expect_none(run_on(f, "2024-03-21"), "repealed_scc", "tr_uk0921");
    expect(run_on(f, "2024-03-22"), "repealed_scc", "tr_uk0921", "critical", "2024-03-22");

    expect_none(run_on(f, "2031-12-27"), "no_valid_basis", "tr_gb");
    expect(run_on(f, "2031-12-28"), "no_valid_basis", "tr_gb", "critical", "2031-12-28");

    /* each regime's own list: the UK-US data bridge, the Swiss-US DPF, the UK's Korea regulation */
    add_sp(f, "sp_all", "active", "subprocessor", "US",
           ",'dpf':{'participating':true,'frameworks':['eu-us','uk-extension','swiss-us'],'verified_on':'2025-06-01'}");
    put(f->tr, "{'id':'tr_uk_us','subprocessor_id':'sp_all','destination_country':'US','regime':'uk','basis':'dpf'}");
    put(f->tr, "{'id':'tr_ch_us','subprocessor_id':'sp_all','destination_country':'US','regime':'ch','basis':'dpf'}");
    put(f->tr, "{'id':'tr_uk_kr','subprocessor_id':'sp_all','destination_country':'KR','regime':'uk',"
               "'basis':'adequacy'}");
    put(f->tr, "{'id':'tr_ch_br','subprocessor_id':'sp_all','destination_country':'BR','regime':'ch',"
               "'basis':'adequacy'}");
    put(f->tr, "{'id':'tr_eu_br','subprocessor_id':'sp_all','destination_country':'BR','regime':'eu',"
               "'basis':'adequacy'}");
    expect(run_on(f, "2023-10-11"), "no_valid_basis", "tr_uk_us", "critical", NULL);
    expect_none(run_on(f, "2023-10-12"), "no_valid_basis", "tr_uk_us");
    expect(run_on(f, "2024-09-14"), "no_valid_basis", "tr_ch_us", "critical", NULL);
    expect_none(run_on(f, "2024-09-15"), "no_valid_basis", "tr_ch_us");
    expect(run_on(f, "2022-12-18"), "no_valid_basis", "tr_uk_kr", "critical", NULL);
    expect_none(run_on(f, "2022-12-19"), "no_valid_basis", "tr_uk_kr");
    out = run_on(f, "2026-06-01");
    expect_none(out, "no_valid_basis", "tr_eu_br"); /* an EU decision (EU) 2026/179 ... */
    expect(out, "no_valid_basis", "tr_ch_br", "critical", NULL); /* ... is no Swiss one */
    expect_none(out, "partial_adequacy", "tr_uk_us");
    expect_none(out, "partial_adequacy", "tr_ch_us");
}

int main(void)
{
#define FX_TEST(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        FX_TEST(test_empty_input),
        FX_TEST(test_no_basis_fires_outside_eea_only),
        FX_TEST(test_uk_adequacy_expiry_boundary),
        FX_TEST(test_adequacy_without_decision),
        FX_TEST(test_adequacy_from_adoption),
        FX_TEST(test_invalidated_adequacy_is_no_basis),
        FX_TEST(test_dpf_outside_us),
        FX_TEST(test_transfer_validity_lapsed),
        FX_TEST(test_location_without_transfer),
        FX_TEST(test_us_with_and_without_dpf),
        FX_TEST(test_canada_and_japan_scope),
        FX_TEST(test_scc_2010_sunset_boundary),
        FX_TEST(test_scc_2010_signed_after_cutoff),
        FX_TEST(test_uk_legacy_scc),
        FX_TEST(test_scc_module),
        FX_TEST(test_tia_age),
        FX_TEST(test_tia_twelve_month_boundary),
        FX_TEST(test_tia_twelve_months_from_a_leap_day),
        FX_TEST(test_active_dpa),
        FX_TEST(test_expiring_horizon),
        FX_TEST(test_expiring_overdue_is_high),
        FX_TEST(test_expiring_report),
        FX_TEST(test_adequacy_under_challenge),
        FX_TEST(test_adequacy_near_expiry),
        FX_TEST(test_retired_ignored),
        FX_TEST(test_ordering),
        FX_TEST(test_notice_period),
        FX_TEST(test_notice_period_near_miss),
        FX_TEST(test_open_objection),
        FX_TEST(test_public_list_drift),
        FX_TEST(test_public_list_drift_covers_deleted_entries),
        FX_TEST(test_replaced_announcement),
        FX_TEST(test_override_notice),
        FX_TEST(test_regime_and_instrument),
        FX_TEST(test_dpf_verification_is_yearly),
        FX_TEST(test_scc_governing_law_and_forum),
        FX_TEST(test_repealed_set_missing_from_reference),
        FX_TEST(test_shipped_reference_data),
        FX_TEST(test_eu_dpf_starts_2023_07_10),
        FX_TEST(test_uk_data_bridge_starts_2023_10_12),
        FX_TEST(test_swiss_us_dpf_starts_2024_09_15),
        FX_TEST(test_adequacy_per_regime),
        FX_TEST(test_dpf_never_verified),
        FX_TEST(test_location_adequate_not_recorded),
        FX_TEST(test_derogation_not_for_systematic_transfers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
