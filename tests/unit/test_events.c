/* events: the webhook event an audit record becomes (webhook_event_from_audit):
 * its type, which records emit none, and the shape of each payload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "subreg/json.h"
#include "subreg/webhook.h"

#include "json_q.h"

#define BASE "https://subreg.example"

/* The event of a single-quoted audit record (NULL: none). */
static cJSON *event_of(const char *record)
{
    cJSON *rec = parse_q(record);
    cJSON *ev = webhook_event_from_audit(rec, BASE);
    cJSON_Delete(rec);
    return ev;
}

/* The members of an object, in order, joined by spaces. */
static const char *keys(const cJSON *obj)
{
    static char out[512];
    out[0] = '\0';
    for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next) {
        if (out[0]) strcat(out, " ");
        strcat(out, c->string);
    }
    return out;
}

/* An audit record of entity id of type; before/after are JSON or "null". */
#define REC(type, id, action, before, after)                                                                       \
    "{'id':'au_1','at':'2026-05-04T03:02:01Z','actor':'alice','request_id':'req-1','entity_type':'" type "',"      \
    "'entity_id':'" id "','entity_version':3,'action':'" action "','before':" before ",'after':" after "}"

#define OLD "{'id':'sp_1','legal_name':'Old GmbH','version':2}"
#define NEW "{'id':'sp_1','legal_name':'New GmbH','version':3}"

static void test_entity_changes_become_created_updated_deleted(void **state)
{
    (void)state;
    static const struct {
        const char *action, *past;
    } acts[] = {{"create", "created"}, {"update", "updated"}, {"delete", "deleted"}};
    static const char *const types[] = {"subprocessor", "agreement",        "transfer", "tom_document", "customer",
                                        "document",     "objection",        "country",  "adequacy_decision",
                                        "scc_set"};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (size_t a = 0; a < 3; a++) {
            cJSON *rec = parse_q(REC("x", "sp_1", "x", OLD, NEW));
            cJSON_ReplaceItemInObject(rec, "entity_type", cJSON_CreateString(types[t]));
            cJSON_ReplaceItemInObject(rec, "action", cJSON_CreateString(acts[a].action));
            cJSON *ev = webhook_event_from_audit(rec, BASE);
            char want[96];
            snprintf(want, sizeof want, "%s.%s", types[t], acts[a].past);
            if (!ev) fail_msg("no event for %s %s", types[t], acts[a].action);
            assert_string_equal(json_get_str(ev, "type"), want);
            assert_string_equal(json_get_str(json_get(ev, "data"), "entity_type"), types[t]);
            cJSON_Delete(ev);
            cJSON_Delete(rec);
        }
    }
}

static void test_entity_event_payload(void **state)
{
    (void)state;
    cJSON *ev = event_of(REC("subprocessor", "sp_1", "update", OLD, NEW));
    assert_non_null(ev);
    assert_string_equal(keys(ev), "type timestamp data");
    assert_string_equal(json_get_str(ev, "type"), "subprocessor.updated");
    assert_string_equal(json_get_str(ev, "timestamp"), "2026-05-04T03:02:01Z");
    const cJSON *data = json_get(ev, "data");
    assert_string_equal(keys(data), "entity_type id version actor object");
    assert_string_equal(json_get_str(data, "entity_type"), "subprocessor");
    assert_string_equal(json_get_str(data, "id"), "sp_1");
    assert_int_equal((int)cJSON_GetNumberValue(json_get(data, "version")), 3);
    assert_string_equal(json_get_str(data, "actor"), "alice");
    /* the state after the change */
    cJSON *want = parse_q(NEW);
    assert_true(cJSON_Compare(json_get(data, "object"), want, 1));
    cJSON_Delete(want);
    /* neither the audit id, the request id nor the state before travel */
    char *text = cJSON_PrintUnformatted(ev);
    assert_null(strstr(text, "au_1"));
    assert_null(strstr(text, "req-1"));
    assert_null(strstr(text, "Old GmbH"));
    free(text);
    cJSON_Delete(ev);
}

static void test_created_and_deleted_carry_the_existing_state(void **state)
{
    (void)state;
    cJSON *ev = event_of(REC("agreement", "ag_1", "create", "null", NEW));
    assert_string_equal(json_get_str(ev, "type"), "agreement.created");
    assert_string_equal(json_get_str(json_get(json_get(ev, "data"), "object"), "legal_name"), "New GmbH");
    cJSON_Delete(ev);
    /* a deletion: the object is the state before it */
    ev = event_of(REC("agreement", "ag_1", "delete", OLD, "null"));
    assert_string_equal(json_get_str(ev, "type"), "agreement.deleted");
    assert_string_equal(json_get_str(json_get(json_get(ev, "data"), "object"), "legal_name"), "Old GmbH");
    cJSON_Delete(ev);
    /* no state at all: no object member */
    ev = event_of(REC("agreement", "ag_1", "delete", "null", "null"));
    assert_non_null(ev);
    assert_string_equal(keys(json_get(ev, "data")), "entity_type id version actor");
    cJSON_Delete(ev);
}

static void test_records_that_emit_nothing(void **state)
{
    (void)state;
    static const char *const none[] = {
        /* an action other than the three */
        REC("subprocessor", "sp_1", "effective", OLD, NEW),
        REC("subprocessor", "sp_1", "restore", OLD, NEW),
        /* the delivery log's own records */
        REC("delivery", "dl_1", "create", "null", NEW),
        REC("delivery", "dl_1", "update", OLD, NEW),
        /* publications announce on create and take effect on "effective" only */
        REC("publication", "7", "update", OLD, NEW),
        REC("publication", "7", "delete", OLD, "null"),
        /* subscriptions: only being disabled (see below) */
        REC("webhook", "wh_1", "create", "null", "{'url':'https://a.example/hook','enabled':true}"),
        REC("webhook", "wh_1", "delete", "{'url':'https://a.example/hook','enabled':true}", "null"),
        REC("webhook", "wh_1", "update", "{'enabled':true}", "{'enabled':true,'description':'x'}"),
        REC("webhook", "wh_1", "update", "{'enabled':false}", "{'enabled':true}"),
        /* disabled by hand (no reason), and disabled twice */
        REC("webhook", "wh_1", "update", "{'enabled':true}", "{'enabled':false}"),
        REC("webhook", "wh_1", "update", "{'enabled':false,'disabled_reason':'410 Gone'}",
            "{'enabled':false,'disabled_reason':'410 Gone'}"),
        /* records without a type or an action */
        "{'at':'2026-05-04T03:02:01Z','entity_id':'sp_1','action':'create','after':{}}",
        "{'at':'2026-05-04T03:02:01Z','entity_type':'subprocessor','entity_id':'sp_1','after':{}}",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        cJSON *ev = event_of(none[i]);
        if (ev) {
            char *text = cJSON_PrintUnformatted(ev);
            fail_msg("record %zu emitted %s", i, text);
        }
    }
}

static void test_webhook_disabled(void **state)
{
    (void)state;
    cJSON *ev = event_of(REC("webhook", "wh_1", "update", "{'url':'https://a.example/hook','enabled':true}",
                             "{'url':'https://a.example/hook','enabled':false,"
                             "'disabled_reason':'the receiver answered 410 Gone'}"));
    assert_non_null(ev);
    assert_string_equal(keys(ev), "type timestamp data");
    assert_string_equal(json_get_str(ev, "type"), "webhook.disabled");
    assert_string_equal(json_get_str(ev, "timestamp"), "2026-05-04T03:02:01Z");
    const cJSON *data = json_get(ev, "data");
    assert_string_equal(keys(data), "webhook_id url reason");
    assert_string_equal(json_get_str(data, "webhook_id"), "wh_1");
    assert_string_equal(json_get_str(data, "url"), "https://a.example/hook");
    assert_string_equal(json_get_str(data, "reason"), "the receiver answered 410 Gone");
    cJSON_Delete(ev);
}

/* A publication as the audit trail holds it (after), number 7. */
#define PUB                                                                                                        \
    "{'id':'7','number':7,'version':1,'published_at':'2026-05-04T03:02:01Z','effective_at':'2026-06-04T00:00:00Z',"  \
    "'objection_deadline':'2026-05-25T00:00:00Z','summary':{'de':'Neu','en':'New'},'published_by':'SECRET-admin',"   \
    "'override_notice':false,'diff':{'added':[{'id':'sp_9','legal_name':'Nine'}],'removed':[],'changed':[]}}"

static void test_publication_announced(void **state)
{
    (void)state;
    cJSON *ev = event_of(REC("publication", "7", "create", "null", PUB));
    assert_non_null(ev);
    assert_string_equal(keys(ev), "type timestamp data");
    assert_string_equal(json_get_str(ev, "type"), "publication.announced");
    assert_string_equal(json_get_str(ev, "timestamp"), "2026-05-04T03:02:01Z");
    const cJSON *data = json_get(ev, "data");
    assert_string_equal(keys(data),
                        "version published_at effective_at objection_deadline summary override_notice changes links");
    assert_int_equal((int)cJSON_GetNumberValue(json_get(data, "version")), 7); /* the list's version: number */
    cJSON *after = parse_q(PUB);
    static const char *const same[] = {"published_at", "effective_at", "objection_deadline", "summary", NULL};
    for (const char *const *k = same; *k; k++) assert_true(cJSON_Compare(json_get(data, *k), json_get(after, *k), 1));
    assert_true(cJSON_Compare(json_get(data, "changes"), json_get(after, "diff"), 1));
    cJSON *links = parse_q("{'json':'" BASE "/public/v1/subprocessors',"
                           "'csv':'" BASE "/public/v1/subprocessors?format=csv',"
                           "'html':'" BASE "/subprocessors',"
                           "'version':'" BASE "/public/v1/subprocessors/versions/7'}");
    assert_true(cJSON_Compare(json_get(data, "links"), links, 1));
    cJSON_Delete(links);
    /* who published is internal */
    char *text = cJSON_PrintUnformatted(ev);
    assert_null(strstr(text, "SECRET"));
    free(text);
    cJSON_Delete(after);
    cJSON_Delete(ev);
}

/* A version replacing an announcement on shortened notice says so, as the public forms do. */
static void test_publication_replacing_on_shortened_notice(void **state)
{
    (void)state;
    cJSON *ev = event_of(REC("publication", "8", "create", "null",
                             "{'number':8,'effective_at':'2026-06-04T00:00:00Z','replaces':7,'diff_against':6,"
                             "'override_notice':true,'override_reason':{'de':'Ausfall','en':'Outage'},"
                             "'diff':{'added':[],'removed':[],'changed':[]}}"));
    const cJSON *data = json_get(ev, "data");
    assert_string_equal(keys(data), "version effective_at replaces override_notice override_reason changes "
                                    "changes_against links");
    assert_int_equal((int)cJSON_GetNumberValue(json_get(data, "replaces")), 7);
    assert_int_equal((int)cJSON_GetNumberValue(json_get(data, "changes_against")), 6);
    assert_true(cJSON_IsTrue(json_get(data, "override_notice")));
    assert_string_equal(json_get_str(json_get(data, "override_reason"), "en"), "Outage");
    cJSON_Delete(ev);
}

static void test_publication_effective(void **state)
{
    (void)state;
    cJSON *ev = event_of(REC("publication", "7", "effective", PUB, PUB));
    assert_non_null(ev);
    assert_string_equal(json_get_str(ev, "type"), "publication.effective");
    const cJSON *data = json_get(ev, "data");
    assert_int_equal((int)cJSON_GetNumberValue(json_get(data, "version")), 7);
    assert_string_equal(json_get_str(data, "effective_at"), "2026-06-04T00:00:00Z");
    assert_string_equal(json_get_str(json_get(data, "links"), "version"), BASE "/public/v1/subprocessors/versions/7");
    cJSON_Delete(ev);
    /* members the stored publication lacks are left out, not made up */
    ev = event_of(REC("publication", "7", "create", "null", "{'number':2,'effective_at':'2026-06-04T00:00:00Z'}"));
    assert_string_equal(keys(json_get(ev, "data")), "version effective_at links");
    cJSON_Delete(ev);
}

static void test_a_record_without_a_time_has_an_empty_timestamp(void **state)
{
    (void)state;
    cJSON *ev = event_of("{'entity_type':'customer','entity_id':'cu_1','entity_version':1,'action':'create',"
                         "'after':{'id':'cu_1'}}");
    assert_non_null(ev);
    assert_string_equal(json_get_str(ev, "type"), "customer.created");
    assert_string_equal(json_get_str(ev, "timestamp"), "");
    assert_string_equal(json_get_str(json_get(ev, "data"), "actor"), "");
    cJSON_Delete(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entity_changes_become_created_updated_deleted),
        cmocka_unit_test(test_entity_event_payload),
        cmocka_unit_test(test_created_and_deleted_carry_the_existing_state),
        cmocka_unit_test(test_records_that_emit_nothing),
        cmocka_unit_test(test_webhook_disabled),
        cmocka_unit_test(test_publication_announced),
        cmocka_unit_test(test_publication_replacing_on_shortened_notice),
        cmocka_unit_test(test_publication_effective),
        cmocka_unit_test(test_a_record_without_a_time_has_an_empty_timestamp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
