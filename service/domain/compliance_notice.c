/* The publication rules (GDPR Art. 28(2)): notice_period, public_list_drift
 * and override_notice. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compliance_internal.h"
#include "subreg/json.h"
#include "subreg/publication.h"
#include "subreg/util.h"

/* ---- rules 8 and 9: publications ------------------------------------------ */

static int64_t ts(const cJSON *doc, const char *name)
{
    int64_t ms = 0;
    const char *v = json_get_str(doc, name);
    return v && parse_rfc3339(v, &ms) ? ms : INT64_MIN;
}

static bool announces_changes(const cJSON *pub)
{
    const cJSON *d = json_get(pub, "diff");
    return cJSON_GetArraySize(json_get(d, "added")) > 0 || cJSON_GetArraySize(json_get(d, "changed")) > 0;
}

/* Whether the version owed the customer notice: the customers it recorded as
 * seeing an addition or change (customers_owed_notice); a version from before
 * that record owed every active customer, when it added or changed anything. */
static bool owes_notice(const cJSON *customer, const cJSON *pub)
{
    const cJSON *owed = json_get(pub, "customers_owed_notice");
    if (cJSON_IsArray(owed)) return json_array_has_string(owed, json_get_str(customer, "id"));
    return announces_changes(pub);
}

/* 8: a version taking effect before a customer's notice period has passed, or
 * with an open objection. Looks at the versions not yet in effect and the one in
 * effect (the others are history). */
void cx_rule_notice_period(const ctx *c, findings *fs, int64_t now)
{
    const cJSON *current = publication_in_effect(c->in->publications, now);
    for (const cJSON *p = c->in->publications ? c->in->publications->child : NULL; p; p = p->next) {
        int64_t eff = ts(p, "effective_at"), pub = ts(p, "published_at");
        if (eff == INT64_MIN || pub == INT64_MIN || (eff <= now && p != current)) continue;
        const char *id = json_get_str(p, "id");
        int number = (int)cJSON_GetNumberValue(json_get(p, "number"));
        bool first = number <= 1;
        if (!id) continue;
        char eff_day[16];
        snprintf(eff_day, sizeof eff_day, "%.10s", json_get_str(p, "effective_at"));
        /* a replaced announcement never takes effect: its notice does not matter */
        const cJSON *owed = json_get(p, "customers_owed_notice");
        bool owes_any = cJSON_IsArray(owed) ? cJSON_GetArraySize(owed) > 0 : announces_changes(p);
        if (!first && owes_any && !publication_replaced_by(c->in->publications, p)) {
            int short_customers = 0, worst = 0;
            /* only the customers the version owed notice (in the services they buy) */
            for (const cJSON *cu = c->in->customers ? c->in->customers->child : NULL; cu; cu = cu->next) {
                if (!cx_str_is(cu, "status", "active") || !owes_notice(cu, p)) continue;
                const cJSON *nd = json_get(cu, "notice_days");
                int days = cJSON_IsNumber(nd) ? nd->valueint : 0;
                int64_t promised = pub + (int64_t)days * MS_PER_DAY;
                if (eff < promised) {
                    short_customers++;
                    int missing = (int)((promised - eff + MS_PER_DAY - 1) / MS_PER_DAY);
                    if (missing > worst) worst = missing;
                }
            }
            if (short_customers)
                cx_add(fs, "notice_period", eff > now ? SEV_HIGH : SEV_MEDIUM, "publication", id, NULL,
                    cx_fmt("Version %d der Liste der Unterauftragsverarbeiter wird am %s wirksam, bevor die "
                        "vereinbarte Ankündigungsfrist von %d Kunden abgelaufen ist (bis zu %d Tage zu früh; " GROUND_NOTICE_DE ").",
                        number, eff_day, short_customers, worst),
                    cx_fmt("Version %d of the subprocessor list takes effect on %s, before the notice period promised to "
                        "%d customer(s) has passed (up to %d days early; " GROUND_NOTICE ").",
                        number, eff_day, short_customers, worst),
                    GROUND_NOTICE, eff_day);
        }
        int open = 0;
        for (const cJSON *o = c->in->objections ? c->in->objections->child : NULL; o; o = o->next)
            if (cx_str_is(o, "publication_id", id) && cx_str_is(o, "status", "open")) open++;
        if (open)
            cx_add(fs, "notice_period", eff > now ? SEV_HIGH : SEV_MEDIUM, "publication", id, NULL,
                cx_fmt("Gegen Version %d der Liste (wirksam %s %s) liegen %d offene Einsprüche vor (" GROUND_NOTICE_DE ").",
                    number, eff > now ? "ab" : "seit", eff_day, open),
                cx_fmt("Version %d of the list (effective %s %s) has %d open objection(s) (" GROUND_NOTICE ").", number,
                    eff > now ? "from" : "since", eff_day, open),
                GROUND_NOTICE, NULL);
    }
}

static bool listed(const cJSON *sp)
{
    return !cJSON_IsFalse(json_get(json_get(sp, "public"), "listed"));
}

/* 9: the public list in effect disagrees with the registry. */
void cx_rule_public_list_drift(const ctx *c, findings *fs, int64_t now)
{
    const cJSON *current = publication_in_effect(c->in->publications, now);
    const cJSON *items = current ? json_get(current, "items") : NULL;
    json_index listed_ix;
    json_index_build(&listed_ix, items, "id");
    for (const cJSON *sp = c->in->subprocessors ? c->in->subprocessors->child : NULL; sp; sp = sp->next) {
        const char *id = json_get_str(sp, "id");
        if (!id) continue;
        bool on_list = json_index_find(&listed_ix, id) != NULL;
        const char *name = cx_sp_name(sp, id);
        if (cx_str_is(sp, "status", "active") && listed(sp) && !on_list)
            cx_add(fs, "public_list_drift", SEV_MEDIUM, "subprocessor", id, id,
                cx_fmt("%s ist aktiv, steht aber nicht in der wirksamen öffentlichen Liste%s (" GROUND_DRIFT_DE ").",
                    name, current ? "" : " (es ist noch keine Version veröffentlicht)"),
                cx_fmt("%s is active but missing from the public list in effect%s (" GROUND_DRIFT ").", name,
                    current ? "" : " (no version has been published yet)"),
                GROUND_DRIFT, NULL);
        else if (cx_str_is(sp, "status", "retired") && on_list)
            cx_add(fs, "public_list_drift", SEV_MEDIUM, "subprocessor", id, id,
                cx_fmt("%s ist ausgeschieden, steht aber noch in der wirksamen öffentlichen Liste (" GROUND_DRIFT_DE ").",
                    name),
                cx_fmt("%s is retired but still on the public list in effect (" GROUND_DRIFT ").", name), GROUND_DRIFT,
                NULL);
    }
    /* Deleted from the registry (by an import or a manual edit: the API refuses
     * to delete what is published) but still on the list in effect. */
    json_index registry_ix;
    json_index_build(&registry_ix, c->in->subprocessors, "id");
    for (const cJSON *it = items ? items->child : NULL; it; it = it->next) {
        const char *id = json_get_str(it, "id");
        if (!id || json_index_find(&registry_ix, id)) continue;
        const char *name = json_get_str(it, "legal_name") ? json_get_str(it, "legal_name") : id;
        cx_add(fs, "public_list_drift", 2, "subprocessor", id, id,
            cx_fmt("%s (%s) ist aus dem Register gelöscht, steht aber noch in der wirksamen öffentlichen Liste ("
                GROUND_DRIFT_DE ").", name, id),
            cx_fmt("%s (%s) was deleted from the registry but is still on the public list in effect (" GROUND_DRIFT ").",
                name, id),
            GROUND_DRIFT, NULL);
    }
    json_index_free(&registry_ix);
    json_index_free(&listed_ix);
}

/* 12: a version that took (or takes) effect before the promised notice period
 * ended, by an admin's override. Reported from its publication until a later
 * regular version (no override, not replaced) has taken effect: until then the
 * customers' list still carries the shortened notice. */
void cx_rule_override_notice(const ctx *c, findings *fs, int64_t now)
{
    const cJSON *pubs = c->in->publications;
    for (const cJSON *p = pubs ? pubs->child : NULL; p; p = p->next) {
        const char *id = json_get_str(p, "id");
        if (!id || !cJSON_IsTrue(json_get(p, "override_notice")) || publication_replaced_by(pubs, p)) continue;
        double number = cJSON_GetNumberValue(json_get(p, "number"));
        bool ended = false;
        for (const cJSON *q = pubs->child; q && !ended; q = q->next)
            ended = cJSON_GetNumberValue(json_get(q, "number")) > number && !cJSON_IsTrue(json_get(q, "override_notice")) &&
                    ts(q, "effective_at") <= now && !publication_replaced_by(pubs, q);
        if (ended) continue;
        const cJSON *reason = json_get(p, "override_reason");
        const char *why_de = json_get_str(reason, "de"), *why_en = json_get_str(reason, "en");
        char eff_day[16];
        snprintf(eff_day, sizeof eff_day, "%.10s", json_get_str(p, "effective_at") ? json_get_str(p, "effective_at") : "");
        bool upcoming = ts(p, "effective_at") > now;
        cx_add(fs, "override_notice", 2, "publication", id, NULL,
            cx_fmt("Version %d der Liste %s %s mit verkürzter Ankündigungsfrist wirksam (Grund: %s); das gilt, bis "
                "eine reguläre Version wirksam wird (" GROUND_NOTICE_DE ").",
                (int)number, upcoming ? "wird am" : "ist seit dem", eff_day, why_de ? why_de : "nicht angegeben"),
            cx_fmt("Version %d of the list %s effect on %s on shortened notice (reason: %s); this stands until a regular "
                "version takes effect (" GROUND_NOTICE ").",
                (int)number, upcoming ? "takes" : "took", eff_day, why_en ? why_en : "none given"),
            GROUND_NOTICE, eff_day);
    }
}

