/* publication: what the public may see of a subprocessor (public_view,
 * public_items), and the diff between two published versions
 * (publication_diff, diff_is_empty). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "subreg/json.h"
#include "subreg/publication.h"

#include "json_q.h"

/* The fields a public entry may have (docs: the public list). */
static const char *const ALLOWED[] = {
    "id",       "legal_name",       "trading_name",    "hq_country",    "website",     "privacy_policy_url",
    "dpa_url",  "subprocessor_list_url", "category",   "role",          "purpose",     "data_categories",
    "data_subjects", "locations",   "certifications",  "dpf_participating", "description", NULL};

/* A subprocessor as stored: every public field, and a secret in every internal one. */
static const char *const FULL =
    "{'id':'sp_1','legal_name':'Odoo S.A.','trading_name':'Odoo','status':'active','version':4,"
    "'created_at':'2026-01-01T00:00:00Z','updated_at':'2026-02-01T00:00:00Z','_claim':'SECRET-claim',"
    "'identifiers':{'vat_id':'SECRET-vat','lei':'SECRET-lei'},'hq_country':'BE',"
    "'website':'https://www.odoo.com','privacy_policy_url':'https://www.odoo.com/privacy',"
    "'dpa_url':'https://www.odoo.com/dpa','subprocessor_list_url':'https://www.odoo.com/sub',"
    "'privacy_contact':{'name':'SECRET-dpo','email':'secret@odoo.com'},'category':'erp_billing',"
    "'role':'subprocessor','purpose':{'de':'ERP','en':'ERP'},'data_categories':['erp_billing'],"
    "'data_subjects':['customers'],'locations':[{'country':'FR','region':'eu-west','role':'hosting'}],"
    "'certifications':[{'name':'ISO/IEC 27001','issuer':'BV','valid_until':'2027-06-30',"
    "'certificate_number':'SECRET-cert'}],"
    "'dpf':{'participating':true,'verified_on':'2039-01-01'},'last_review_on':'2039-02-02',"
    "'next_review_on':'2039-03-03','notes':'SECRET-notes',"
    "'public':{'listed':true,'description':{'de':'ERP und Rechnungen','en':'ERP and invoicing'}}}";

static bool allowed(const char *key)
{
    for (const char *const *a = ALLOWED; *a; a++)
        if (strcmp(*a, key) == 0) return true;
    return false;
}

/* Every key of the view is on the allow-list, and no secret of FULL is in it. */
static void assert_only_public(const cJSON *view)
{
    for (const cJSON *c = view->child; c; c = c->next)
        if (!allowed(c->string)) fail_msg("non-public field %s in the public view", c->string);
    char *text = cJSON_PrintUnformatted(view);
    if (strstr(text, "SECRET") || strstr(text, "2039")) fail_msg("an internal value in the public view: %s", text);
    free(text);
}

static void test_public_view_keeps_only_the_allow_list(void **state)
{
    (void)state;
    cJSON *sp = parse_q(FULL);
    cJSON *v = public_view(sp);
    assert_non_null(v);
    assert_only_public(v);
    static const char *const copied[] = {"id",      "legal_name",  "trading_name", "hq_country", "website",
                                         "privacy_policy_url", "dpa_url", "subprocessor_list_url", "category",
                                         "role",    "purpose",     "data_categories", "data_subjects",
                                         "locations", NULL};
    for (const char *const *k = copied; *k; k++) {
        assert_non_null(json_get(v, *k));
        if (!cJSON_Compare(json_get(v, *k), json_get(sp, *k), 1)) fail_msg("%s differs from the source", *k);
    }
    /* derived members: the DPF flag alone, the description from public */
    assert_true(cJSON_IsTrue(json_get(v, "dpf_participating")));
    assert_true(cJSON_Compare(json_get(v, "description"), json_get(json_get(sp, "public"), "description"), 1));
    /* a certification keeps name, issuer and valid_until, nothing else */
    cJSON *want = parse_q("[{'name':'ISO/IEC 27001','issuer':'BV','valid_until':'2027-06-30'}]");
    assert_true(cJSON_Compare(json_get(v, "certifications"), want, 1));
    cJSON_Delete(want);
    cJSON_Delete(v);
    cJSON_Delete(sp);
}

static void test_public_view_of_a_minimal_subprocessor(void **state)
{
    (void)state;
    cJSON *sp = parse_q("{'id':'sp_2','legal_name':'Hetzner Online GmbH','status':'proposed','hq_country':'DE',"
                        "'certifications':[],'dpf':{'participating':false},'notes':'SECRET'}");
    cJSON *v = public_view(sp);
    assert_non_null(v); /* proposed is listed: only retired or unlisted ones are not */
    assert_only_public(v);
    assert_string_equal(json_get_str(v, "legal_name"), "Hetzner Online GmbH");
    assert_true(cJSON_IsFalse(json_get(v, "dpf_participating")));
    /* absent fields stay absent; an empty certification list is left out */
    assert_null(json_get(v, "trading_name"));
    assert_null(json_get(v, "certifications"));
    assert_null(json_get(v, "description"));
    cJSON_Delete(v);
    /* without a dpf record there is no dpf_participating either */
    cJSON_DeleteItemFromObject(sp, "dpf");
    v = public_view(sp);
    assert_null(json_get(v, "dpf_participating"));
    cJSON_Delete(v);
    cJSON_Delete(sp);
}

static void test_retired_and_unlisted_have_no_public_view(void **state)
{
    (void)state;
    cJSON *sp = parse_q(FULL);
    cJSON_ReplaceItemInObject(sp, "status", cJSON_CreateString("retired"));
    assert_null(public_view(sp));
    cJSON_ReplaceItemInObject(sp, "status", cJSON_CreateString("active"));
    cJSON_ReplaceItemInObject(json_get(sp, "public"), "listed", cJSON_CreateFalse());
    assert_null(public_view(sp));
    /* listed true, or no public member at all: listed */
    cJSON_ReplaceItemInObject(json_get(sp, "public"), "listed", cJSON_CreateTrue());
    cJSON *v = public_view(sp);
    assert_non_null(v);
    cJSON_Delete(v);
    cJSON_DeleteItemFromObject(sp, "public");
    v = public_view(sp);
    assert_non_null(v);
    assert_null(json_get(v, "description"));
    cJSON_Delete(v);
    /* a document without a status is not shown */
    cJSON_DeleteItemFromObject(sp, "status");
    assert_null(public_view(sp));
    cJSON_Delete(sp);
}

/* The ids of an item array, joined by spaces. */
static const char *ids(const cJSON *items)
{
    static char out[512];
    out[0] = '\0';
    for (const cJSON *c = items ? items->child : NULL; c; c = c->next) {
        if (out[0]) strcat(out, " ");
        strcat(out, json_get_str(c, "id"));
    }
    return out;
}

static void test_public_items_sorted_and_filtered(void **state)
{
    (void)state;
    cJSON *sps = parse_q("[{'id':'sp_c','legal_name':'zeta GmbH','status':'active'},"
                         " {'id':'sp_b','legal_name':'Ärzte-IT AG','status':'active'},"
                         " {'id':'sp_r','legal_name':'Alpha Retired','status':'retired'},"
                         " {'id':'sp_u','legal_name':'Alpha Unlisted','status':'active','public':{'listed':false}},"
                         " {'id':'sp_a2','legal_name':'Beta','status':'proposed'},"
                         " {'id':'sp_a1','legal_name':'Beta','status':'active'},"
                         " {'id':'sp_n','status':'active'}]");
    cJSON *items = public_items(sps);
    /* legal name (case-insensitive, Ä as A), then id; retired, unlisted and nameless left out */
    assert_string_equal(ids(items), "sp_b sp_a1 sp_a2 sp_c");
    for (const cJSON *c = items->child; c; c = c->next) assert_only_public(c);
    cJSON_Delete(items);
    cJSON_Delete(sps);
}

/* ---- the diff ------------------------------------------------------------- */

static void test_first_publication_adds_everything(void **state)
{
    (void)state;
    cJSON *after = parse_q("[{'id':'sp_a','legal_name':'A'},{'id':'sp_b','legal_name':'B'}]");
    cJSON *d = publication_diff(NULL, after);
    assert_true(cJSON_Compare(json_get(d, "added"), after, 1));
    assert_int_equal(cJSON_GetArraySize(json_get(d, "removed")), 0);
    assert_int_equal(cJSON_GetArraySize(json_get(d, "changed")), 0);
    assert_false(diff_is_empty(d));
    cJSON_Delete(d);
    /* and nothing at all: an empty diff with its three members */
    cJSON *none = cJSON_CreateArray();
    d = publication_diff(NULL, none);
    assert_true(cJSON_IsArray(json_get(d, "added")) && cJSON_IsArray(json_get(d, "removed")) &&
                cJSON_IsArray(json_get(d, "changed")));
    assert_int_equal(cJSON_GetArraySize(d), 3);
    assert_true(diff_is_empty(d));
    cJSON_Delete(d);
    cJSON_Delete(none);
    cJSON_Delete(after);
}

static void test_identical_versions_have_an_empty_diff(void **state)
{
    (void)state;
    cJSON *items = parse_q("[{'id':'sp_a','legal_name':'A','locations':[{'country':'DE','role':'hosting'}]},"
                           " {'id':'sp_b','legal_name':'B'}]");
    cJSON *same = cJSON_Duplicate(items, 1);
    cJSON *d = publication_diff(items, same);
    assert_true(diff_is_empty(d));
    cJSON *want = parse_q("{'added':[],'removed':[],'changed':[]}");
    assert_true(cJSON_Compare(d, want, 1));
    cJSON_Delete(want);
    cJSON_Delete(d);
    cJSON_Delete(same);
    cJSON_Delete(items);
}

static void test_added_removed_and_changed(void **state)
{
    (void)state;
    cJSON *before = parse_q("[{'id':'sp_keep','legal_name':'Keep','website':'https://keep.example'},"
                            " {'id':'sp_gone','legal_name':'Gone'},"
                            " {'id':'sp_edit','legal_name':'Edit Old','hq_country':'DE','website':'https://a.example',"
                            "  'locations':[{'country':'DE','role':'hosting'}]}]");
    cJSON *after = parse_q("[{'id':'sp_edit','legal_name':'Edit New','hq_country':'DE','trading_name':'Ed',"
                           "  'locations':[{'country':'DE','role':'hosting'},{'country':'AT','role':'backup'}]},"
                           " {'id':'sp_keep','legal_name':'Keep','website':'https://keep.example'},"
                           " {'id':'sp_new','legal_name':'New'}]");
    cJSON *d = publication_diff(before, after);
    assert_false(diff_is_empty(d));
    assert_string_equal(ids(json_get(d, "added")), "sp_new");
    assert_true(cJSON_Compare(cJSON_GetArrayItem(json_get(d, "added"), 0), cJSON_GetArrayItem(after, 2), 1));
    assert_string_equal(ids(json_get(d, "removed")), "sp_gone");
    assert_true(cJSON_Compare(cJSON_GetArrayItem(json_get(d, "removed"), 0), cJSON_GetArrayItem(before, 1), 1));
    /* one change entry, for sp_edit only (sp_keep is unchanged), with the new name */
    const cJSON *changed = json_get(d, "changed");
    assert_string_equal(ids(changed), "sp_edit");
    const cJSON *c = cJSON_GetArrayItem(changed, 0);
    assert_string_equal(json_get_str(c, "legal_name"), "Edit New");
    /* the fields in the new entry's order, then those only the old one had;
     * an added field has before null, a dropped one after null */
    cJSON *want = parse_q("[{'field':'legal_name','before':'Edit Old','after':'Edit New'},"
                          " {'field':'trading_name','before':null,'after':'Ed'},"
                          " {'field':'locations','before':[{'country':'DE','role':'hosting'}],"
                          "  'after':[{'country':'DE','role':'hosting'},{'country':'AT','role':'backup'}]},"
                          " {'field':'website','before':'https://a.example','after':null}]");
    if (!cJSON_Compare(json_get(c, "fields"), want, 1)) {
        char *got = cJSON_PrintUnformatted(json_get(c, "fields"));
        fail_msg("fields: %s", got);
    }
    assert_int_equal(cJSON_GetArraySize(c), 3); /* id, legal_name, fields */
    cJSON_Delete(want);
    cJSON_Delete(d);
    cJSON_Delete(after);
    cJSON_Delete(before);
}

static void test_each_part_makes_a_diff_non_empty(void **state)
{
    (void)state;
    static const char *const parts[] = {"added", "removed", "changed"};
    for (int i = 0; i < 3; i++) {
        cJSON *d = parse_q("{'added':[],'removed':[],'changed':[]}");
        assert_true(diff_is_empty(d));
        cJSON_AddItemToArray(json_get(d, parts[i]), parse_q("{'id':'sp_x'}"));
        if (diff_is_empty(d)) fail_msg("a diff with one %s entry is empty", parts[i]);
        cJSON_Delete(d);
    }
}

/* The list as the publisher builds it: public_items of the stored registry. */
static cJSON *published(const char *registry)
{
    cJSON *sps = parse_q(registry);
    cJSON *items = public_items(sps);
    cJSON_Delete(sps);
    return items;
}

/* A stored subprocessor: its status, public.listed, hq_country, and more members. */
#define SP(id, status, listed, country, more)                                                                      \
    "{'id':'" id "','legal_name':'Name " id "','status':'" status "','hq_country':'" country "',"                   \
    "'public':{'listed':" listed "}" more "}"

static void test_retired_or_unlisted_leaves_the_public_list(void **state)
{
    (void)state;
    cJSON *v1 = published("[" SP("sp_a", "active", "true", "DE", "") "," SP("sp_b", "active", "true", "DE", "") ","
                          SP("sp_c", "active", "true", "DE", "") "]");
    cJSON *v2 = published("[" SP("sp_a", "retired", "true", "DE", "") "," SP("sp_b", "active", "true", "DE", "") ","
                          SP("sp_c", "active", "false", "DE", "") "]");
    assert_string_equal(ids(v2), "sp_b");
    cJSON *d = publication_diff(v1, v2);
    assert_string_equal(ids(json_get(d, "removed")), "sp_a sp_c");
    assert_int_equal(cJSON_GetArraySize(json_get(d, "added")), 0);
    assert_int_equal(cJSON_GetArraySize(json_get(d, "changed")), 0);
    /* and listed again: added back */
    cJSON *d2 = publication_diff(v2, v1);
    assert_string_equal(ids(json_get(d2, "added")), "sp_a sp_c");
    assert_int_equal(cJSON_GetArraySize(json_get(d2, "removed")), 0);
    cJSON_Delete(d2);
    cJSON_Delete(d);
    cJSON_Delete(v2);
    cJSON_Delete(v1);
}

static void test_internal_fields_never_reach_the_diff(void **state)
{
    (void)state;
    cJSON *v1 = published("[" SP("sp_a", "active", "true", "DE",
                                 ",'notes':'internal','privacy_contact':{'email':'dpo@example.org'},"
                                 "'dpf':{'participating':true,'verified_on':'2025-01-01'}") "]");
    /* only internal fields change: nothing to publish */
    cJSON *v2 = published("[" SP("sp_a", "active", "true", "DE",
                                 ",'notes':'SECRET-new','privacy_contact':{'email':'SECRET@x.org'},"
                                 "'identifiers':{'vat_id':'SECRET'},'version':9,'next_review_on':'2030-01-01',"
                                 "'dpf':{'participating':true,'verified_on':'2026-01-01'}") "]");
    cJSON *d = publication_diff(v1, v2);
    assert_true(diff_is_empty(d));
    cJSON_Delete(d);
    /* a public change next to internal ones: only the public fields are listed */
    cJSON *v3 = published("[" SP("sp_a", "active", "true", "AT",
                                 ",'notes':'SECRET-3','dpf':{'participating':false,'verified_on':'2026-01-01'}") "]");
    d = publication_diff(v1, v3);
    char *text = cJSON_PrintUnformatted(d);
    if (strstr(text, "SECRET") || strstr(text, "verified_on") || strstr(text, "notes"))
        fail_msg("an internal field in the diff: %s", text);
    free(text);
    const cJSON *fields = json_get(cJSON_GetArrayItem(json_get(d, "changed"), 0), "fields");
    assert_int_equal(cJSON_GetArraySize(fields), 2);
    assert_string_equal(json_get_str(cJSON_GetArrayItem(fields, 0), "field"), "hq_country");
    assert_string_equal(json_get_str(cJSON_GetArrayItem(fields, 1), "field"), "dpf_participating");
    for (const cJSON *f = fields->child; f; f = f->next)
        if (!allowed(json_get_str(f, "field"))) fail_msg("non-public field %s in the diff", json_get_str(f, "field"));
    cJSON_Delete(d);
    cJSON_Delete(v3);
    cJSON_Delete(v2);
    cJSON_Delete(v1);
}

/* CSV injection (OWASP): a cell starting with = + - @ TAB or CR, also after
 * leading spaces, is written quoted with a leading apostrophe. */
static void test_csv_neutralises_every_formula_start(void **state)
{
    (void)state;
    static const char *const leads[] = {"=", "+", "-", "@", "\t", "\r", " =", "   @", NULL};
    for (const char *const *l = leads; *l; l++) {
        char name[64], want[80];
        snprintf(name, sizeof name, "%sSUM(A1)", *l);
        cJSON *items = cJSON_CreateArray(), *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "id", "sp_1");
        cJSON_AddStringToObject(it, "legal_name", name);
        cJSON_AddItemToArray(items, it);
        strbuf out = {0};
        render_csv(items, "en", &out);
        snprintf(want, sizeof want, "\r\nsp_1,\"'%sSUM(A1)\",", *l);
        assert_non_null(strstr(out.data, want));
        sb_free(&out);
        cJSON_Delete(items);
    }
    /* harmless text stays as it is */
    cJSON *items = cJSON_CreateArray(), *it = cJSON_CreateObject();
    cJSON_AddStringToObject(it, "id", "sp_1");
    cJSON_AddStringToObject(it, "legal_name", "A-1 = fine");
    cJSON_AddItemToArray(items, it);
    strbuf out = {0};
    render_csv(items, "en", &out);
    assert_non_null(strstr(out.data, "\r\nsp_1,A-1 = fine,"));
    sb_free(&out);
    cJSON_Delete(items);
}

/* Version 2 was announced, version 3 replaced it on shortened notice: the feed
 * and the page say so, and version 2 is announced nowhere. */
#define REPLACED_PUBS                                                                                              \
    "[{\"number\":2,\"published_at\":\"2026-11-01T00:00:00Z\",\"effective_at\":\"2026-12-01T00:00:00Z\","         \
    "\"summary\":{\"de\":\"zwei\",\"en\":\"two\"}},"                                                               \
    "{\"number\":3,\"published_at\":\"2026-11-05T00:00:00Z\",\"effective_at\":\"2026-11-06T00:00:00Z\","          \
    "\"replaces\":2,\"override_notice\":true,\"override_reason\":{\"de\":\"Lücke & mehr\",\"en\":\"Flaw & more\"},"  \
    "\"summary\":{\"de\":\"drei\",\"en\":\"three\"}}]"

static void test_a_replaced_announcement_in_the_feed(void **state)
{
    (void)state;
    cJSON *pubs = cJSON_Parse(REPLACED_PUBS);
    assert_non_null(pubs);
    assert_int_equal((int)cJSON_GetNumberValue(json_get(publication_replaced_by(pubs, cJSON_GetArrayItem(pubs, 0)),
                                                         "number")), 3);
    assert_null(publication_replaced_by(pubs, cJSON_GetArrayItem(pubs, 1)));
    strbuf atom = {0};
    render_atom(pubs, "https://x.example", "2026-11-05T00:00:00Z", NULL, &atom);
    /* the replaced entry no longer says when it takes effect, and is updated when replaced */
    assert_non_null(strstr(atom.data, "<title>Version 2, replaced by version 3 before it took effect</title>\n"
                                      "    <id>https://x.example/public/v1/subprocessors/versions/2</id>\n"
                                      "    <updated>2026-11-05T00:00:00Z</updated>"));
    assert_null(strstr(atom.data, "Version 2, effective"));
    /* the replacing entry names and links the announcement it replaces, and its shortened notice */
    assert_non_null(strstr(atom.data, "<link rel=\"related\" type=\"application/json\" "
                                      "href=\"https://x.example/public/v1/subprocessors/versions/2\"/>"));
    assert_non_null(strstr(atom.data, "Replaces the announcement of version 2, which does not take effect"));
    assert_non_null(strstr(atom.data, "The notice period was shortened. Reason: Flaw &amp; more"));
    sb_free(&atom);
    /* the page: version 3 in effect with its note; version 2 in the history as replaced */
    cJSON *history = cJSON_CreateArray();
    cJSON_AddItemReferenceToArray(history, cJSON_GetArrayItem(pubs, 1));
    cJSON_AddItemReferenceToArray(history, cJSON_GetArrayItem(pubs, 0));
    cJSON *upcoming = cJSON_CreateArray();
    strbuf html = {0};
    render_html(cJSON_GetArrayItem(pubs, 1), upcoming, history, "de", NULL, NULL, &html);
    assert_non_null(strstr(html.data, "<p class=\"override\">Die Ankündigungsfrist wurde verkürzt. Grund: Lücke &amp; mehr</p>"));
    assert_non_null(strstr(html.data, "Version 2</a>, angekündigt für <time datetime=\"2026-12-01T00:00:00Z\">"));
    assert_non_null(strstr(html.data, ", ersetzt durch Version 3, nicht wirksam geworden: zwei</li>"));
    assert_non_null(strstr(html.data, "(Ankündigungsfrist verkürzt): drei</li>"));
    sb_free(&html);
    /* announced (upcoming), version 3 says what it replaces */
    cJSON_AddItemReferenceToArray(upcoming, cJSON_GetArrayItem(pubs, 1));
    cJSON *none = cJSON_CreateArray();
    render_html(NULL, upcoming, none, "en", NULL, NULL, &html);
    cJSON_Delete(none);
    assert_non_null(strstr(html.data, "<p class=\"replaces\">Replaces the announcement of version 2, which does not take effect"));
    assert_non_null(strstr(html.data, "<p class=\"override\">The notice period was shortened. Reason: Flaw &amp; more</p>"));
    sb_free(&html);
    cJSON_Delete(upcoming);
    cJSON_Delete(history);
    cJSON_Delete(pubs);
}

/* Any stored string: the feed and the CSV carry U+FFFD for what XML 1.0 refuses. */
static void test_renderers_replace_xml_illegal_text(void **state)
{
    (void)state;
    const char *bad = "A\xef\xbf\xbe\x01" "B\xff";
    cJSON *pubs = cJSON_CreateArray(), *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "number", 1);
    cJSON_AddStringToObject(p, "effective_at", bad);
    cJSON_AddStringToObject(p, "published_at", "2026-01-01T00:00:00Z");
    cJSON *summary = cJSON_AddObjectToObject(p, "summary");
    cJSON_AddStringToObject(summary, "de", bad);
    cJSON_AddStringToObject(summary, "en", bad);
    cJSON_AddItemToArray(pubs, p);
    strbuf atom = {0};
    render_atom(pubs, "https://x.example", "2026-01-01T00:00:00Z", NULL, &atom);
    assert_true(text_valid(atom.data, atom.len));
    assert_non_null(strstr(atom.data, "A\xef\xbf\xbd\xef\xbf\xbd" "B\xef\xbf\xbd"));
    sb_free(&atom);
    cJSON *items = cJSON_CreateArray(), *it = cJSON_CreateObject();
    cJSON_AddStringToObject(it, "id", "sp_1");
    cJSON_AddStringToObject(it, "legal_name", bad);
    cJSON_AddItemToArray(items, it);
    strbuf csv = {0};
    render_csv(items, "en", &csv);
    assert_true(text_valid(csv.data, csv.len));
    sb_free(&csv);
    json_clean_text(items);
    assert_string_equal(json_get_str(it, "legal_name"), "A\xef\xbf\xbd\xef\xbf\xbd" "B\xef\xbf\xbd");
    cJSON_Delete(items);
    cJSON_Delete(pubs);
}

/* Found by tests/fuzz (fuzz_escape): the Atom title escapes effective_at, the
 * feed holds no U+FFFF or C0 control (not XML characters), and a CSV cell
 * starting with a tab is defused like one starting with "=". */
static void test_renderers_escape_what_the_fuzzer_found(void **state)
{
    (void)state;
    cJSON *pubs = cJSON_Parse("[{\"number\":1,\"effective_at\":\"<b>&\",\"published_at\":\"x\","
                              "\"summary\":{\"de\":\"a\",\"en\":\"\\uffff\\u0001\"}}]");
    assert_non_null(pubs);
    strbuf atom = {0};
    render_atom(pubs, "https://example.com", "2025-01-01T00:00:00Z", NULL, &atom);
    assert_non_null(strstr(atom.data, "<title>Version 1, effective &lt;b&gt;&amp;</title>"));
    assert_null(strstr(atom.data, "\xef\xbf\xbf"));
    assert_null(strchr(atom.data, '\x01'));
    assert_non_null(strstr(atom.data, "\xef\xbf\xbd\xef\xbf\xbd"));
    sb_free(&atom);
    cJSON_Delete(pubs);

    cJSON *items = cJSON_Parse("[{\"id\":\"sp_1\",\"legal_name\":\"\\t=1+1\",\"website\":\"@x\"}]");
    strbuf csv = {0};
    render_csv(items, "en", &csv);
    assert_non_null(strstr(csv.data, "\r\nsp_1,\"'\t=1+1\","));
    assert_non_null(strstr(csv.data, ",\"'@x\"\r\n"));
    sb_free(&csv);
    cJSON_Delete(items);
}

/* The spreadsheet: a zip (an Office Open XML package) whose bytes depend only on
 * the rows and the date given, so every instance serves the same file. */
static void test_xlsx_is_a_package_and_reproducible(void **state)
{
    (void)state;
    cJSON *items = cJSON_Parse("[{\"id\":\"sp_1\",\"legal_name\":\"=1+1\",\"purpose\":{\"de\":\"a\",\"en\":\"b\"}}]");
    strbuf a = {0}, b = {0}, c = {0};
    assert_true(render_xlsx(items, "en", 1767225600, &a));
    assert_true(render_xlsx(items, "en", 1767225600, &b));
    assert_true(render_xlsx(items, "en", 1767225601, &c));
    assert_true(a.len > 1000 && memcmp(a.data, "PK\x03\x04", 4) == 0);
    assert_true(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    assert_false(a.len == c.len && memcmp(a.data, c.data, a.len) == 0);
    sb_free(&a);
    sb_free(&b);
    sb_free(&c);
    cJSON_Delete(items);
}

/* ---- services (issue 12) ---------------------------------------------------- */

/* Two publications as the contract has them: hosting and erp public, intern
 * not; sp_a serves hosting, sp_b erp, sp_ab both and intern, sp_all (no
 * "services") every service. Version 2 changes only sp_a's purpose and moves
 * sp_b from erp into intern too. */
#define SERVICES_CAT                                                                                               \
    "'services':[{'id':'hosting','name':{'de':'Hosting','en':'Hosting'},'public':true,'sort':1},"               \
    "{'id':'intern','name':{'de':'Intern','en':'Internal'},'public':false},"                                        \
    "{'id':'erp','name':{'de':'ERP','en':'ERP <&>'},'description':{'de':'d','en':'e'},'public':true}]"
static const char *const SVC_PUBS =
    "[{'number':1,'published_at':'2026-01-01T00:00:00Z','effective_at':'2026-01-01T00:00:00Z',"
    "'summary':{'de':'eins','en':'one'}," SERVICES_CAT ","
    "'items':[{'id':'sp_a','legal_name':'A','services':['hosting']},{'id':'sp_ab','legal_name':'AB',"
    "'services':['erp','hosting','intern']},{'id':'sp_all','legal_name':'All'},"
    "{'id':'sp_b','legal_name':'B','services':['erp']}],"
    "'diff':{'added':[{'id':'sp_a','legal_name':'A','services':['hosting']},{'id':'sp_ab','legal_name':'AB',"
    "'services':['erp','hosting','intern']}],'removed':[],'changed':[]}},"
    "{'number':2,'published_at':'2026-02-01T00:00:00Z','effective_at':'2026-02-01T00:00:00Z','diff_against':1,"
    "'summary':{'de':'zwei','en':'two'}," SERVICES_CAT ","
    "'items':[{'id':'sp_a','legal_name':'A','purpose':'new','services':['hosting']},{'id':'sp_ab','legal_name':'AB',"
    "'services':['erp','hosting','intern']},{'id':'sp_all','legal_name':'All'},"
    "{'id':'sp_b','legal_name':'B','services':['erp','intern']}],"
    "'diff':{'added':[],'removed':[],'changed':[{'id':'sp_a','legal_name':'A','fields':[{'field':'purpose',"
    "'before':null,'after':'new'}]},{'id':'sp_b','legal_name':'B','fields':[{'field':'services',"
    "'before':['erp'],'after':['erp','intern']}]}]},"
    "'service_changes':{'hosting':{'added':[],'removed':[],'changed':[{'id':'sp_a','legal_name':'A',"
    "'fields':[{'field':'purpose','before':null,'after':'new'}]}]},'erp':{'added':[],'removed':[],'changed':[]},"
    "'intern':{'added':[{'id':'sp_b','legal_name':'B','services':['erp','intern']}],'removed':[],'changed':[]}}}]";

static char *dump(const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);
    assert_non_null(s);
    return s;
}

static void test_item_serves(void **state)
{
    (void)state;
    cJSON *items = parse_q("[{'id':'a','services':['x','y']},{'id':'b'},{'id':'c','services':[]}]");
    assert_true(item_serves(cJSON_GetArrayItem(items, 0), "y"));
    assert_false(item_serves(cJSON_GetArrayItem(items, 0), "z"));
    assert_true(item_serves(cJSON_GetArrayItem(items, 1), "z")); /* no member: every service */
    assert_false(item_serves(cJSON_GetArrayItem(items, 2), "x"));
    cJSON_Delete(items);
}

/* Public ones only, in the newest catalogue's order, then the older ones'; the
 * newest entry wins (a service made non-public disappears). */
static void test_public_services_of_the_live_publications(void **state)
{
    (void)state;
    cJSON *pubs = parse_q("[{'services':[{'id':'old','name':{'de':'Alt','en':'Old'},'public':true},"
                          "{'id':'gone','name':{'de':'G','en':'G'},'public':true},"
                          "{'id':'b','name':{'de':'B1','en':'B1'},'public':true}]},"
                          "{'services':[{'id':'b','name':{'de':'B','en':'B'},'public':true,'sort':0},"
                          "{'id':'gone','name':{'de':'G','en':'G'},'public':false},"
                          "{'id':'a','name':{'de':'A','en':'A'},'description':{'de':'x','en':'y'},'public':true,'sort':5}]},"
                          "{'number':3}]");
    cJSON *s = public_services(pubs);
    char *text = dump(s);
    assert_string_equal(text, "[{\"id\":\"b\",\"name\":{\"de\":\"B\",\"en\":\"B\"}},"
                              "{\"id\":\"a\",\"name\":{\"de\":\"A\",\"en\":\"A\"},\"description\":{\"de\":\"x\",\"en\":\"y\"}},"
                              "{\"id\":\"old\",\"name\":{\"de\":\"Alt\",\"en\":\"Old\"}}]");
    assert_non_null(json_find_by_id(s, "a"));
    assert_null(json_find_by_id(s, "gone"));
    assert_null(json_find_by_id(s, NULL));
    free(text);
    cJSON_Delete(s);
    cJSON *none = parse_q("[{'number':1}]");
    s = public_services(none);
    assert_int_equal(cJSON_GetArraySize(s), 0);
    cJSON_Delete(s);
    cJSON_Delete(none);
    cJSON_Delete(pubs);
}

/* Whom a version concerns: a customer of an untouched service is not told;
 * one without services, or with only retired ones (fail closed), sees the
 * whole list; inactive customers never count; the notice is the longest of
 * those owed it. */
static void test_affected_customers(void **state)
{
    (void)state;
    cJSON *catalogue = parse_q("[{'id':'A','name':{'de':'A','en':'A'},'public':true},"
                               "{'id':'B','name':{'de':'B','en':'B'},'public':true}]");
    cJSON *before = parse_q("[{'id':'sp1','legal_name':'One','services':['A']}]");
    cJSON *after = parse_q("[{'id':'sp1','legal_name':'One','services':['A']},"
                           "{'id':'sp2','legal_name':'Two','services':['B']}]");
    cJSON *customers = parse_q("[{'id':'all','status':'active','notice_days':10,'objection_days':5},"
                               "{'id':'a','status':'active','services':['A'],'notice_days':90,'objection_days':90},"
                               "{'id':'b','status':'active','services':['B'],'notice_days':30,'objection_days':7},"
                               "{'id':'x','status':'active','services':['X'],'notice_days':40,'objection_days':3},"
                               "{'id':'off','status':'inactive','services':['B'],'notice_days':99,'objection_days':99}]");
    cJSON *changes = service_changes(before, after, catalogue), *whole = service_diff(before, after, NULL);
    notice_terms t;
    cJSON *ids = affected_customers(customers, whole, changes, &t);
    char *text = dump(ids);
    assert_string_equal(text, "[\"all\",\"b\",\"x\"]");
    free(text);
    text = dump(t.owed);
    assert_string_equal(text, "[\"all\",\"b\",\"x\"]");
    free(text);
    assert_true(t.any && t.needs_notice);
    assert_int_equal(t.notice_days, 40);
    assert_int_equal(t.objection_days, 7);
    cJSON_Delete(ids);
    cJSON_Delete(t.owed);
    /* a removal concerns the same customers, but owes no notice */
    cJSON_Delete(changes);
    cJSON_Delete(whole);
    changes = service_changes(after, before, catalogue);
    whole = service_diff(after, before, NULL);
    ids = affected_customers(customers, whole, changes, &t);
    text = dump(ids);
    assert_string_equal(text, "[\"all\",\"b\",\"x\"]");
    free(text);
    assert_false(t.needs_notice);
    assert_int_equal(cJSON_GetArraySize(t.owed), 0);
    assert_int_equal(t.notice_days, 0);
    cJSON_Delete(ids);
    cJSON_Delete(t.owed);
    /* moving sp1 into B as well: B's list gains it, the whole list does not change */
    cJSON *moved = parse_q("[{'id':'sp1','legal_name':'One','services':['A','B']}]");
    cJSON_Delete(changes);
    cJSON_Delete(whole);
    changes = service_changes(before, moved, catalogue);
    whole = service_diff(before, moved, NULL);
    ids = affected_customers(customers, whole, changes, &t);
    text = dump(ids);
    assert_string_equal(text, "[\"b\"]");
    free(text);
    assert_int_equal(t.notice_days, 30);
    cJSON_Delete(ids);
    cJSON_Delete(t.owed);
    cJSON_Delete(moved);
    cJSON_Delete(changes);
    cJSON_Delete(whole);
    cJSON_Delete(customers);
    cJSON_Delete(after);
    cJSON_Delete(before);
    cJSON_Delete(catalogue);
}

static void test_strip_services(void **state)
{
    (void)state;
    cJSON *pubs = parse_q(SVC_PUBS);
    cJSON *items = cJSON_Duplicate(json_get(cJSON_GetArrayItem(pubs, 0), "items"), 1);
    strip_services(items);
    char *text = dump(items);
    assert_null(strstr(text, "services"));
    assert_non_null(strstr(text, "sp_ab"));
    free(text);
    cJSON_Delete(items);
    cJSON_Delete(pubs);
}

static void test_public_changes(void **state)
{
    (void)state;
    cJSON *pubs = parse_q(SVC_PUBS);
    cJSON *services = public_services(pubs);
    const cJSON *v1 = cJSON_GetArrayItem(pubs, 0), *v2 = cJSON_GetArrayItem(pubs, 1);
    /* the whole list: sp_b's move into a non-public service is no change */
    cJSON *d = public_changes(v2, NULL);
    char *text = dump(d);
    assert_string_equal(text, "{\"added\":[],\"removed\":[],\"changed\":[{\"id\":\"sp_a\",\"legal_name\":\"A\","
                              "\"fields\":[{\"field\":\"purpose\",\"before\":null,\"after\":\"new\"}]}]}");
    free(text);
    cJSON_Delete(d);
    /* a service's own changes: hosting sees sp_a, erp nothing */
    d = public_changes(v2, "hosting");
    assert_int_equal(cJSON_GetArraySize(json_get(d, "changed")), 1);
    cJSON_Delete(d);
    d = public_changes(v2, "erp");
    assert_true(diff_is_empty(d));
    cJSON_Delete(d);
    /* without service_changes (an older version): its diff, filtered */
    d = public_changes(v1, "erp");
    text = dump(d);
    assert_string_equal(text, "{\"added\":[{\"id\":\"sp_ab\",\"legal_name\":\"AB\"}],\"removed\":[],\"changed\":[]}");
    free(text);
    cJSON_Delete(d);
    d = public_changes(v1, NULL);
    text = dump(d);
    assert_null(strstr(text, "intern"));
    assert_int_equal(cJSON_GetArraySize(json_get(d, "added")), 2);
    free(text);
    cJSON_Delete(d);
    /* the fallback filters changed entries by the version's items, and drops services changes */
    cJSON *old = cJSON_Duplicate(v2, 1);
    cJSON_DeleteItemFromObject(old, "service_changes");
    d = public_changes(old, "erp");
    assert_true(diff_is_empty(d)); /* sp_a serves hosting only; sp_b's change is its services */
    cJSON_Delete(d);
    d = public_changes(old, "hosting");
    assert_int_equal(cJSON_GetArraySize(json_get(d, "changed")), 1);
    cJSON_Delete(d);
    cJSON_Delete(old);
    cJSON_Delete(services);
    cJSON_Delete(pubs);
}

/* A service's view shares the publication's members: no item is copied. */
static void test_publication_view_shares_the_items(void **state)
{
    (void)state;
    cJSON *pubs = parse_q(SVC_PUBS);
    cJSON *services = public_services(pubs);
    const cJSON *v2 = cJSON_GetArrayItem(pubs, 1);
    cJSON *v = publication_view(v2, "erp");
    const cJSON *items = json_get(v, "items");
    assert_int_equal(cJSON_GetArraySize(items), 3); /* sp_ab, sp_all, sp_b */
    assert_string_equal(json_get_str(items->child, "id"), "sp_ab");
    assert_ptr_equal(items->child->child, json_get(v2, "items")->child->next->child);
    assert_true(items->child->type & cJSON_IsReference);
    assert_ptr_equal(json_get(v, "summary")->child, json_get(v2, "summary")->child);
    assert_true(diff_is_empty(json_get(v, "diff")));
    cJSON_Delete(v);
    v = publication_view(v2, NULL);
    assert_int_equal(cJSON_GetArraySize(json_get(v, "items")), 4);
    assert_int_equal(cJSON_GetArraySize(json_get(json_get(v, "diff"), "changed")), 1);
    cJSON_Delete(v);
    cJSON_Delete(services);
    cJSON_Delete(pubs);
}

/* The page's selector (a GET form with every public service), the service's
 * name in the heading and ?service= on the links; the feed likewise. */
static void test_renderers_for_one_service(void **state)
{
    (void)state;
    cJSON *pubs = parse_q(SVC_PUBS);
    cJSON *services = public_services(pubs);
    const cJSON *erp = json_find_by_id(services, "erp");
    cJSON *v = publication_view(cJSON_GetArrayItem(pubs, 1), "erp");
    cJSON *history = cJSON_CreateArray(), *upcoming = cJSON_CreateArray();
    cJSON_AddItemReferenceToArray(history, v);
    strbuf html = {0};
    render_html(v, upcoming, history, "en", services, erp, &html);
    assert_non_null(strstr(html.data, "<h1>Subprocessors for ERP &lt;&amp;&gt;</h1>"));
    assert_non_null(strstr(html.data, "<form class=\"services\" method=\"get\" action=\"/subprocessors\">\n"
                                      "<label for=\"service\">Service</label>\n<select id=\"service\" name=\"service\">\n"
                                      "<option value=\"\">All services</option>\n"
                                      "<option value=\"hosting\">Hosting</option>\n"
                                      "<option value=\"erp\" selected>ERP &lt;&amp;&gt;</option>\n</select>\n"
                                      "<input type=\"hidden\" name=\"lang\" value=\"en\">\n"
                                      "<button type=\"submit\">Show</button>\n</form>"));
    assert_null(strstr(html.data, "intern"));
    assert_non_null(strstr(html.data, "href=\"?service=erp&amp;lang=de\""));
    assert_non_null(strstr(html.data, "href=\"/public/v1/subprocessors?format=csv&amp;lang=en&amp;service=erp\""));
    assert_non_null(strstr(html.data, "href=\"/public/v1/subprocessors/versions/2?service=erp\""));
    assert_non_null(strstr(html.data, "data-id=\"sp_b\""));
    assert_null(strstr(html.data, "data-id=\"sp_a\""));
    sb_free(&html);
    /* the whole list: "all services" selected, no service in the links */
    render_html(cJSON_GetArrayItem(pubs, 1), upcoming, history, "de", services, NULL, &html);
    assert_non_null(strstr(html.data, "<option value=\"\" selected>Alle Dienste</option>"));
    assert_non_null(strstr(html.data, "href=\"?lang=en\""));
    assert_null(strstr(html.data, "service="));
    sb_free(&html);
    /* no public service: no selector */
    render_html(NULL, upcoming, upcoming, "de", NULL, NULL, &html);
    assert_null(strstr(html.data, "<form"));
    sb_free(&html);
    strbuf atom = {0};
    render_atom(history, "https://x.example", "2026-02-01T00:00:00Z", erp, &atom);
    assert_non_null(strstr(atom.data, "<title>Subprocessors of ERP &lt;&amp;&gt;: published versions</title>"));
    assert_non_null(strstr(atom.data, "<id>https://x.example/public/v1/subprocessors/feed.atom?service=erp</id>"));
    assert_non_null(strstr(atom.data, "<id>https://x.example/public/v1/subprocessors/versions/2?service=erp</id>"));
    sb_free(&atom);
    strbuf annex = {0};
    render_annex(v, "de", "https://x.example/subprocessors?service=erp", erp, &annex);
    assert_non_null(strstr(annex.data, "<h1>Anlage zum Auftragsverarbeitungsvertrag: Unterauftragsverarbeiter für ERP</h1>"));
    sb_free(&annex);
    /* the running head of every printed page names the service, as CSS string text */
    render_annex(v, "en", "https://x.example/subprocessors?service=erp", erp, &annex);
    assert_non_null(strstr(annex.data, "@top-left{content:\"Subprocessors, version 2, in effect since 1 Feb 2026, 00:00 UTC "
                                       "\\2014  Service: ERP \\3c \\26 \\3e \";"));
    assert_null(strstr(annex.data, "<&>"));
    sb_free(&annex);
    cJSON_Delete(history);
    cJSON_Delete(upcoming);
    cJSON_Delete(v);
    cJSON_Delete(services);
    cJSON_Delete(pubs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_view_keeps_only_the_allow_list),
        cmocka_unit_test(test_xlsx_is_a_package_and_reproducible),
        cmocka_unit_test(test_public_view_of_a_minimal_subprocessor),
        cmocka_unit_test(test_retired_and_unlisted_have_no_public_view),
        cmocka_unit_test(test_public_items_sorted_and_filtered),
        cmocka_unit_test(test_first_publication_adds_everything),
        cmocka_unit_test(test_identical_versions_have_an_empty_diff),
        cmocka_unit_test(test_added_removed_and_changed),
        cmocka_unit_test(test_each_part_makes_a_diff_non_empty),
        cmocka_unit_test(test_retired_or_unlisted_leaves_the_public_list),
        cmocka_unit_test(test_internal_fields_never_reach_the_diff),
        cmocka_unit_test(test_csv_neutralises_every_formula_start),
        cmocka_unit_test(test_a_replaced_announcement_in_the_feed),
        cmocka_unit_test(test_renderers_replace_xml_illegal_text),
        cmocka_unit_test(test_renderers_escape_what_the_fuzzer_found),
        cmocka_unit_test(test_item_serves),
        cmocka_unit_test(test_public_services_of_the_live_publications),
        cmocka_unit_test(test_affected_customers),
        cmocka_unit_test(test_strip_services),
        cmocka_unit_test(test_public_changes),
        cmocka_unit_test(test_publication_view_shares_the_items),
        cmocka_unit_test(test_renderers_for_one_service),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
