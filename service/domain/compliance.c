/* compliance: the checks a legal team wants computed, not remembered. Pure
 * functions over documents in API shape; "today" and "now" are inputs. The rule
 * ids are COMPLIANCE_RULES (below, the one list); each finding names its legal
 * ground from the GROUND_* texts. notice_period and public_list_drift need the
 * publications, customers and objections, and "now". */
#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compliance_internal.h"
#include "subreg/json.h"
#include "subreg/util.h"
#include "subreg/resource.h"

const char *const COMPLIANCE_SEVERITIES[] = {"critical", "high", "medium", "low", "info", NULL};
const char *const COMPLIANCE_RULES[] = {"no_valid_basis",   "partial_adequacy", "repealed_scc",  "wrong_scc_module",
                                        "scc_clauses",      "tia_missing",      "no_active_dpa", "expiring",
                                        "adequacy_at_risk", "notice_period",    "public_list_drift", NULL};

/* ---- small helpers ------------------------------------------------------- */

char *cx_fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *out = xmalloc(n > 0 ? (size_t)n + 1 : 1);
    vsnprintf(out, n > 0 ? (size_t)n + 1 : 1, f, ap2);
    va_end(ap2);
    return out;
}

bool cx_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

bool cx_str_is(const cJSON *doc, const char *name, const char *value)
{
    return cx_eq(json_get_str(doc, name), value);
}

/* A date member that is present and a real calendar date, else NULL. */
const char *cx_get_date(const cJSON *doc, const char *name)
{
    const char *s = json_get_str(doc, name);
    return s && is_valid_date(s) ? s : NULL;
}

void cx_days_str(int64_t days, char out[16])
{
    format_date(days * MS_PER_DAY, out);
}

/* "2022-12-27" -> "27.12.2022", the way a German reader writes a date. */
void cx_date_de(const char *iso, char out[16])
{
    if (!iso || strlen(iso) != 10) {
        snprintf(out, 16, "%s", iso ? iso : "");
        return;
    }
    snprintf(out, 16, "%.2s.%.2s.%.4s", iso + 8, iso + 5, iso);
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The same calendar day one year later (29 Feb -> 28 Feb), as days. */
int64_t cx_plus_one_year(const char *iso)
{
    int y = atoi(iso), m = atoi(iso + 5), d = atoi(iso + 8);
    y += 1;
    if (m == 2 && d == 29 && !is_leap(y)) d = 28;
    char buf[32];
    snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
    return date_to_days(buf);
}

/* ---- lookups ------------------------------------------------------------- */


const cJSON *cx_find_sp(const ctx *c, const char *id)
{
    return json_index_find(&c->sps, id);
}

const char *cx_sp_name(const cJSON *sp, const char *fallback)
{
    const char *n = sp ? json_get_str(sp, "legal_name") : NULL;
    return n ? n : fallback ? fallback : "(unknown subprocessor)";
}

bool cx_sp_retired(const cJSON *sp)
{
    return sp && cx_str_is(sp, "status", "retired");
}

/* A country missing from the reference list counts as outside the EEA. */
bool cx_is_eea(const ctx *c, const char *code)
{
    const cJSON *country = json_index_find(&c->countries, code);
    return country && cJSON_IsTrue(json_get(country, "eea"));
}

static bool decision_valid(const ctx *c, const cJSON *d)
{
    if (!cx_str_is(d, "status", "in_force")) return false;
    /* in force from its adoption (as_of: a day before it, the country had none) */
    const char *from = cx_get_date(d, "adopted_on"), *until = cx_get_date(d, "valid_until");
    return (!from || date_to_days(from) <= c->today) && (!until || date_to_days(until) >= c->today);
}

/* The in-force adequacy decision for a country (adopted by today, valid_until absent or not passed). */
static const cJSON *decision_for(const ctx *c, const char *country)
{
    const cJSON *d;
    if (!country) return NULL;
    cJSON_ArrayForEach(d, c->in->adequacy_decisions) if (cx_str_is(d, "country", country) && decision_valid(c, d)) return d;
    return NULL;
}

/* The latest lapsed valid_until of an in-force decision for a country: the day
 * adequacy ran out. INT64_MIN when there is none. */
int64_t cx_decision_lapsed(const ctx *c, const char *country)
{
    const cJSON *d;
    int64_t best = INT64_MIN;
    cJSON_ArrayForEach(d, c->in->adequacy_decisions)
    {
        const char *until = cx_get_date(d, "valid_until");
        if (cx_str_is(d, "country", country) && cx_str_is(d, "status", "in_force") && until &&
            date_to_days(until) < c->today && date_to_days(until) > best)
            best = date_to_days(until);
    }
    return best;
}

/* The decision a transfer relies on: its destination's for adequacy, the US one
 * for the Data Privacy Framework. NULL when none is in force. */
const cJSON *cx_relied_decision(const ctx *c, const cJSON *t)
{
    const char *basis = json_get_str(t, "basis");
    if (cx_eq(basis, "adequacy")) return decision_for(c, json_get_str(t, "destination_country"));
    if (cx_eq(basis, "dpf")) return decision_for(c, "US");
    return NULL;
}

const char *cx_decision_act(const cJSON *d)
{
    const char *act = json_get_str(d, "act");
    return act ? act : "(unnamed)";
}

/* The name of a legal act, as a German reader writes it: the reference data
 * carries the English citation ("Implementing Decision (EU) 2023/1795",
 * "Decision 2001/497/EC"). Caller frees. */
char *cx_act_de(const char *act)
{
    static const char *const map[][2] = {
        {"Implementing Decision", "Durchführungsbeschluss"},
        {"Decisions", "Beschlüsse"},
        {"Decision", "Beschluss"},
        {"/EC", "/EG"},
        {" and ", " und "},
        {"UK transitional provisions", "britische Übergangsbestimmungen"},
    };
    strbuf sb = {0};
    sb_puts(&sb, "");
    for (const char *p = act; *p;) {
        size_t i, n = sizeof map / sizeof map[0];
        for (i = 0; i < n; i++) {
            size_t len = strlen(map[i][0]);
            if (strncmp(p, map[i][0], len) == 0) {
                sb_puts(&sb, map[i][1]);
                p += len;
                break;
            }
        }
        if (i == n) sb_append(&sb, p++, 1);
    }
    return sb.data;
}

/* A localized text member ({de, en}) in one language, or NULL. */
const char *cx_loc(const cJSON *doc, const char *name, const char *lang)
{
    const cJSON *o = json_get(doc, name);
    return o ? json_get_str(o, lang) : NULL;
}

/* ---- findings ------------------------------------------------------------ */


/* The href of an entity: its resource's collection URL and id. */
char *cx_href_of(const char *etype, const char *eid)
{
    const resource *res = resource_by_type(etype);
    return cx_fmt("%s/%s", res ? res->path : "", eid);
}

__attribute__((unused)) static bool rule_listed(const char *rule)
{
    for (const char *const *r = COMPLIANCE_RULES; *r; r++)
        if (cx_eq(*r, rule)) return true;
    return false;
}

/* Takes ownership of de and en. */
void cx_add(findings *fs, const char *rule, int sev, const char *etype, const char *eid, const char *spid, char *de,
            char *en, const char *ground, const char *since)
{
    assert(rule_listed(rule)); /* COMPLIANCE_RULES is the one list of rule ids */
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "rule", rule);
    cJSON_AddStringToObject(f, "severity", COMPLIANCE_SEVERITIES[sev]);
    cJSON_AddStringToObject(f, "entity_type", etype);
    cJSON_AddStringToObject(f, "entity_id", eid);
    char *href = cx_href_of(etype, eid);
    cJSON_AddStringToObject(f, "href", href);
    free(href);
    if (spid) cJSON_AddStringToObject(f, "subprocessor_id", spid);
    cJSON *msg = cJSON_AddObjectToObject(f, "message");
    cJSON_AddStringToObject(msg, "de", de);
    cJSON_AddStringToObject(msg, "en", en);
    free(de);
    free(en);
    cJSON_AddStringToObject(f, "legal_ground", ground);
    if (since) cJSON_AddStringToObject(f, "since", since);
    if (fs->n == fs->cap) {
        fs->cap = fs->cap ? fs->cap * 2 : 16;
        fs->v = xrealloc(fs->v, fs->cap * sizeof *fs->v);
    }
    fs->v[fs->n] = (finding){.f = f, .sev = sev, .rule = json_get_str(f, "rule"),
                             .eid = json_get_str(f, "entity_id"), .seq = fs->n};
    fs->n++;
}

static int cmp_finding(const void *a, const void *b)
{
    const finding *x = a, *y = b;
    if (x->sev != y->sev) return x->sev < y->sev ? -1 : 1;
    int r = strcmp(x->rule, y->rule);
    if (r) return r;
    r = strcmp(x->eid, y->eid);
    if (r) return r;
    const char *xs = json_get_str(x->f, "since"), *ys = json_get_str(y->f, "since");
    if (xs && ys && (r = strcmp(xs, ys))) return r;
    if (!xs != !ys) return xs ? 1 : -1; /* unknown since first */
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- entry points -------------------------------------------------------- */

static bool init(ctx *c, const compliance_input *in)
{
    if (!in || !in->today || !is_valid_date(in->today)) return false;
    c->in = in;
    c->today = date_to_days(in->today);
    c->horizon = in->horizon_days >= 0 ? in->horizon_days : 30;
    json_index_build(&c->sps, in->subprocessors, "id");
    json_index_build(&c->countries, in->countries, "id");
    json_index_build(&c->agreements_by_sp, in->agreements, "subprocessor_id");
    json_index_build(&c->transfers_by_sp, in->transfers, "subprocessor_id");
    return true;
}

static void done(ctx *c)
{
    json_index_free(&c->sps);
    json_index_free(&c->countries);
    json_index_free(&c->agreements_by_sp);
    json_index_free(&c->transfers_by_sp);
}

cJSON *compliance_findings(const compliance_input *in)
{
    cJSON *out = cJSON_CreateArray();
    ctx c;
    if (!init(&c, in)) return out;
    findings fs = {0};
    cx_rule_no_valid_basis(&c, &fs);
    cx_rule_partial_adequacy(&c, &fs);
    cx_rule_repealed_scc(&c, &fs);
    cx_rule_wrong_scc_module(&c, &fs);
    cx_rule_scc_clauses(&c, &fs);
    cx_rule_tia_missing(&c, &fs);
    cx_rule_no_active_dpa(&c, &fs);
    cx_rule_expiring(&c, &fs);
    cx_rule_adequacy_at_risk(&c, &fs);
    int64_t now;
    if (in->now && parse_rfc3339(in->now, &now)) {
        cx_rule_notice_period(&c, &fs, now);
        cx_rule_public_list_drift(&c, &fs, now);
    }
    if (fs.n) qsort(fs.v, fs.n, sizeof *fs.v, cmp_finding);
    for (size_t i = 0; i < fs.n; i++) cJSON_AddItemToArray(out, fs.v[i].f);
    free(fs.v);
    done(&c);
    return out;
}

cJSON *compliance_expiring(const compliance_input *in, int within_days)
{
    cJSON *out = cJSON_CreateArray();
    ctx c;
    if (!init(&c, in)) return out;
    dues ds = {0};
    cx_collect_dues(&c, within_days >= 0 ? within_days : 0, &ds);
    for (size_t i = 0; i < ds.n; i++) {
        const due *d = &ds.v[i];
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "date", d->date);
        cJSON_AddStringToObject(it, "kind", d->kind);
        cJSON_AddStringToObject(it, "entity_type", d->etype);
        cJSON_AddStringToObject(it, "entity_id", d->eid);
        char *href = cx_href_of(d->etype, d->eid);
        cJSON_AddStringToObject(it, "href", href);
        free(href);
        if (d->spid) cJSON_AddStringToObject(it, "subprocessor_id", d->spid);
        cJSON_AddStringToObject(it, "title", d->title);
        cJSON_AddBoolToObject(it, "overdue", d->day < c.today);
        cJSON_AddItemToArray(out, it);
    }
    cx_dues_free(&ds);
    done(&c);
    return out;
}

