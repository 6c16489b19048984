/* Contracts and dates: no_active_dpa, the dates due (rule expiring and the
 * expiring report), adequacy_at_risk. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compliance_internal.h"
#include "subreg/json.h"
#include "subreg/util.h"

/* ---- rule 6: no_active_dpa ----------------------------------------------- */

void cx_rule_no_active_dpa(const ctx *c, findings *fs)
{
    const cJSON *sp;
    cJSON_ArrayForEach(sp, c->in->subprocessors)
    {
        const char *spid = json_get_str(sp, "id");
        if (!spid || !cx_str_is(sp, "status", "active")) continue;
        bool ok = false;
        int64_t last_expiry = INT64_MIN;
        const json_index_entry *e;
        for (size_t k = json_index_range(&c->agreements_by_sp, spid, &e); k--; e++) {
            const cJSON *a = e->item;
            if (!cx_str_is(a, "type", "dpa")) continue;
            const char *exp = cx_get_date(a, "expires_on");
            bool active = cx_str_is(a, "status", "active");
            if (active && (!exp || date_to_days(exp) >= c->today)) ok = true;
            /* When the DPA ran out by date (still marked active, or expired), that is the day it lapsed. */
            if ((active || cx_str_is(a, "status", "expired")) && exp && date_to_days(exp) < c->today &&
                date_to_days(exp) > last_expiry)
                last_expiry = date_to_days(exp);
        }
        if (ok) continue;
        const char *name = cx_sp_name(sp, spid);
        if (last_expiry != INT64_MIN) {
            char exp_s[16], since[16], d1[16];
            cx_days_str(last_expiry, exp_s);
            cx_days_str(last_expiry + 1, since);
            cx_date_de(exp_s, d1);
            cx_add(fs, "no_active_dpa", SEV_HIGH, "subprocessor", spid, spid,
                cx_fmt("%s ist aktiv, hat aber keinen gültigen Auftragsverarbeitungsvertrag (AVV); der letzte lief am %s "
                    "ab (" GROUND_DPA_DE ").",
                    name, d1),
                cx_fmt("%s is active but has no active data processing agreement (DPA); the last one expired on %s "
                    "(" GROUND_DPA ").",
                    name, exp_s),
                GROUND_DPA, since);
        } else {
            cx_add(fs, "no_active_dpa", SEV_HIGH, "subprocessor", spid, spid,
                cx_fmt("%s ist aktiv, hat aber keinen aktiven Auftragsverarbeitungsvertrag (AVV) (" GROUND_DPA_DE ").",
                    name),
                cx_fmt("%s is active but has no active data processing agreement (DPA) (" GROUND_DPA ").", name),
                GROUND_DPA, NULL);
        }
    }
}

/* ---- rule 7: dates due (shared with compliance_expiring) ------------------ */


static void due_add(dues *ds, const char *date, const char *kind, const char *etype, const char *eid,
                    const char *spid, char *title, char *de, char *en)
{
    if (ds->n == ds->cap) {
        ds->cap = ds->cap ? ds->cap * 2 : 16;
        ds->v = xrealloc(ds->v, ds->cap * sizeof *ds->v);
    }
    due *d = &ds->v[ds->n];
    *d = (due){.day = date_to_days(date), .kind = kind, .etype = etype, .eid = eid, .spid = spid,
               .title = title, .de = de, .en = en, .seq = ds->n};
    snprintf(d->date, sizeof d->date, "%s", date);
    ds->n++;
}

void cx_dues_free(dues *ds)
{
    for (size_t i = 0; i < ds->n; i++) {
        free(ds->v[i].title);
        free(ds->v[i].de);
        free(ds->v[i].en);
    }
    free(ds->v);
}

static int cmp_due(const void *a, const void *b)
{
    const due *x = a, *y = b;
    if (x->day != y->day) return x->day < y->day ? -1 : 1;
    int r = strcmp(x->eid, y->eid);
    if (r) return r;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const char *agreement_label_de(const char *type)
{
    if (cx_eq(type, "dpa")) return "AVV";
    if (cx_eq(type, "msa")) return "Rahmenvertrag";
    if (cx_eq(type, "sla")) return "SLA";
    if (cx_eq(type, "nda")) return "Geheimhaltungsvereinbarung";
    return "Vertrag";
}

static const char *agreement_label(const char *type)
{
    if (cx_eq(type, "dpa")) return "DPA";
    if (cx_eq(type, "msa")) return "MSA";
    if (cx_eq(type, "sla")) return "SLA";
    if (cx_eq(type, "nda")) return "NDA";
    return "Agreement";
}

/* Is this date within reach: on or before today + within days? */
static const char *reachable(const ctx *c, const cJSON *doc, const char *name, int within)
{
    const char *d = cx_get_date(doc, name);
    return d && date_to_days(d) <= c->today + within ? d : NULL;
}

/* Every date due within `within` days of today, overdue ones included. */
void cx_collect_dues(const ctx *c, int within, dues *ds)
{
    char dd[16];
    const cJSON *a;
    cJSON_ArrayForEach(a, c->in->agreements)
    {
        const char *id = json_get_str(a, "id");
        if (!id || !cx_str_is(a, "status", "active")) continue;
        const char *spid = json_get_str(a, "subprocessor_id");
        const char *name = cx_sp_name(cx_find_sp(c, spid), spid);
        const char *label = agreement_label(json_get_str(a, "type"));
        const char *label_de = agreement_label_de(json_get_str(a, "type"));
        const char *title = json_get_str(a, "title");
        if (!title) title = label;
        const char *d;
        if ((d = reachable(c, a, "expires_on", within))) {
            bool past = date_to_days(d) < c->today;
            cx_date_de(d, dd);
            due_add(ds, d, "agreement_expiry", "agreement", id, spid, cx_fmt("%s %s expires", label, name),
                    past ? cx_fmt("Der Vertrag „%s“ (%s) mit %s ist am %s abgelaufen, ist aber noch als aktiv erfasst "
                               "(" GROUND_EXPIRING_DE ").",
                               title, label_de, name, dd)
                         : cx_fmt("Der Vertrag „%s“ (%s) mit %s läuft am %s ab (" GROUND_EXPIRING_DE ").", title, label_de,
                               name, dd),
                    past ? cx_fmt("The %s \"%s\" with %s expired on %s but is still recorded as active "
                               "(" GROUND_EXPIRING ").",
                               label, title, name, d)
                         : cx_fmt("The %s \"%s\" with %s expires on %s (" GROUND_EXPIRING ").", label, title, name, d));
        }
        if ((d = reachable(c, a, "review_on", within))) {
            bool past = date_to_days(d) < c->today;
            cx_date_de(d, dd);
            due_add(ds, d, "agreement_review", "agreement", id, spid, cx_fmt("%s %s review due", label, name),
                    cx_fmt("Die Überprüfung des Vertrags „%s“ (%s) mit %s %s am %s fällig (" GROUND_EXPIRING_DE ").",
                        title, label_de, name, past ? "war" : "ist", dd),
                    cx_fmt("The review of the %s \"%s\" with %s %s due on %s (" GROUND_EXPIRING ").", label, title, name,
                        past ? "was" : "is", d));
        }
    }

    const cJSON *sp;
    cJSON_ArrayForEach(sp, c->in->subprocessors)
    {
        const char *spid = json_get_str(sp, "id");
        if (!spid || cx_sp_retired(sp)) continue;
        const char *name = cx_sp_name(sp, spid);
        const cJSON *cert;
        cJSON_ArrayForEach(cert, json_get(sp, "certifications"))
        {
            const char *d = reachable(c, cert, "valid_until", within);
            if (!d) continue;
            const char *cname = json_get_str(cert, "name");
            if (!cname) cname = "(unnamed)";
            bool past = date_to_days(d) < c->today;
            cx_date_de(d, dd);
            due_add(ds, d, "certification", "subprocessor", spid, spid,
                    cx_fmt("%s certification of %s expires", cname, name),
                    past ? cx_fmt("Die Zertifizierung %s von %s ist am %s abgelaufen (" GROUND_EXPIRING_DE ").", cname,
                               name, dd)
                         : cx_fmt("Die Zertifizierung %s von %s läuft am %s ab (" GROUND_EXPIRING_DE ").", cname, name,
                               dd),
                    past ? cx_fmt("The %s certification of %s expired on %s (" GROUND_EXPIRING ").", cname, name, d)
                         : cx_fmt("The %s certification of %s expires on %s (" GROUND_EXPIRING ").", cname, name, d));
        }
        const char *d = reachable(c, sp, "next_review_on", within);
        if (d) {
            bool past = date_to_days(d) < c->today;
            cx_date_de(d, dd);
            due_add(ds, d, "subprocessor_review", "subprocessor", spid, spid, cx_fmt("Review of %s due", name),
                    cx_fmt("Die Überprüfung von %s %s am %s fällig (" GROUND_EXPIRING_DE ").", name,
                        past ? "war" : "ist", dd),
                    cx_fmt("The review of %s %s due on %s (" GROUND_EXPIRING ").", name, past ? "was" : "is", d));
        }
    }

    const cJSON *tom;
    cJSON_ArrayForEach(tom, c->in->tom_documents)
    {
        const char *id = json_get_str(tom, "id");
        if (!id || !cx_str_is(tom, "status", "active")) continue;
        const char *d = reachable(c, tom, "next_review_on", within);
        if (!d) continue;
        const char *title = json_get_str(tom, "title");
        if (!title) title = id;
        const char *ver = json_get_str(tom, "version_label");
        bool past = date_to_days(d) < c->today;
        cx_date_de(d, dd);
        due_add(ds, d, "tom_review", "tom_document", id, json_get_str(tom, "subprocessor_id"),
                cx_fmt("TOM document %s review due", title),
                cx_fmt("Die Überprüfung des TOM-Dokuments „%s“%s%s%s %s am %s fällig (" GROUND_EXPIRING_DE ").", title,
                    ver ? " (Version " : "", ver ? ver : "", ver ? ")" : "", past ? "war" : "ist", dd),
                cx_fmt("The review of the TOM document \"%s\"%s%s%s %s due on %s (" GROUND_EXPIRING ").", title,
                    ver ? " (version " : "", ver ? ver : "", ver ? ")" : "", past ? "was" : "is", d));
    }

    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        const char *id = json_get_str(t, "id");
        if (!id) continue;
        const char *spid = json_get_str(t, "subprocessor_id");
        const cJSON *tsp = cx_find_sp(c, spid);
        if (cx_sp_retired(tsp)) continue;
        const char *name = cx_sp_name(tsp, spid);
        const char *dest = json_get_str(t, "destination_country");
        if (!dest) dest = "?";
        const cJSON *tia = json_get(t, "tia");
        const char *d = tia ? reachable(c, tia, "next_review_on", within) : NULL;
        if (d) {
            bool past = date_to_days(d) < c->today;
            cx_date_de(d, dd);
            due_add(ds, d, "tia_review", "transfer", id, spid, cx_fmt("TIA %s to %s review due", name, dest),
                    cx_fmt("Die Überprüfung der Transfer-Folgenabschätzung (TIA) für die Übermittlung von %s nach %s %s "
                        "am %s fällig (" GROUND_EXPIRING_DE ").",
                        name, dest, past ? "war" : "ist", dd),
                    cx_fmt("The review of the transfer impact assessment for the transfer of %s to %s %s due on %s "
                        "(" GROUND_EXPIRING ").",
                        name, dest, past ? "was" : "is", d));
        }
        if ((d = reachable(c, t, "valid_until", within))) {
            bool past = date_to_days(d) < c->today;
            cx_date_de(d, dd);
            due_add(ds, d, "transfer_validity", "transfer", id, spid, cx_fmt("Transfer %s to %s expires", name, dest),
                    past ? cx_fmt("Die Übermittlung von %s nach %s war nur bis %s gültig (" GROUND_EXPIRING_DE ").", name,
                               dest, dd)
                         : cx_fmt("Die Übermittlung von %s nach %s ist bis %s gültig (" GROUND_EXPIRING_DE ").", name,
                               dest, dd),
                    past ? cx_fmt("The transfer of %s to %s was valid only until %s (" GROUND_EXPIRING ").", name, dest, d)
                         : cx_fmt("The transfer of %s to %s is valid until %s (" GROUND_EXPIRING ").", name, dest, d));
        }
    }
    if (ds->n) qsort(ds->v, ds->n, sizeof *ds->v, cmp_due);
}

/* The severity scale (docs/compliance.md): a contract or a transfer that lapses
 * within the horizon, or already did while still recorded, will be (or is)
 * unlawful — high; a review or a certificate falling due is record-keeping —
 * medium, overdue or not (the lapse itself is no_active_dpa / no_valid_basis). */
static int due_severity(const due *d)
{
    return cx_eq(d->kind, "agreement_expiry") || cx_eq(d->kind, "transfer_validity") ? SEV_HIGH : SEV_MEDIUM;
}

void cx_rule_expiring(const ctx *c, findings *fs)
{
    dues ds = {0};
    cx_collect_dues(c, c->horizon, &ds);
    for (size_t i = 0; i < ds.n; i++) {
        due *d = &ds.v[i];
        cx_add(fs, "expiring", due_severity(d), d->etype, d->eid, d->spid, d->de, d->en, GROUND_EXPIRING, d->date);
        d->de = d->en = NULL; /* now owned by the finding */
    }
    cx_dues_free(&ds);
}

/* ---- rule 10: adequacy_at_risk ------------------------------------------- */

void cx_rule_adequacy_at_risk(const ctx *c, findings *fs)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        const cJSON *d = cx_adequacy_relied(c, t, &x);
        if (!d) continue; /* another basis, or none in force: no_valid_basis */
        if (!cx_condition_met(&x, t, d)) continue; /* not covered at all: partial_adequacy */
        bool challenged = cJSON_IsTrue(json_get(d, "under_challenge"));
        const char *until = cx_get_date(d, "valid_until");
        int64_t u = until ? date_to_days(until) : -1;
        bool near = until && u >= c->today && u <= c->today + 365;
        if (!challenged && !near) continue;
        /* lapsing within the horizon: will be unlawful soon; a challenge or a later end: watch */
        int sev = until && u >= c->today && u <= c->today + c->horizon ? SEV_HIGH : SEV_INFO;
        const char *act = cx_decision_act(d);
        char *ade = cx_act_de(act);
        char d1[16];
        cx_date_de(until, d1);
        const char *note_de = cx_loc(d, "challenge_note", "de"), *note_en = cx_loc(d, "challenge_note", "en");
        char *ch_de = challenged ? cx_fmt(", der angefochten ist%s%s", note_de ? " (" : "", note_de ? note_de : "")
                                 : cx_fmt("%s", "");
        char *ch_en = challenged ? cx_fmt(", which is under challenge%s%s", note_en ? " (" : "", note_en ? note_en : "")
                                 : cx_fmt("%s", "");
        char *ex_de = near ? cx_fmt("%s am %s ausläuft", challenged ? " und der" : ", der", d1) : cx_fmt("%s", "");
        char *ex_en = near ? cx_fmt("%s expires on %s", challenged ? " and" : ", which", until) : cx_fmt("%s", "");
        cx_add_xfer(fs, "adequacy_at_risk", sev, &x,
            cx_fmt("Die Übermittlung von %s nach %s stützt sich auf den Angemessenheitsbeschluss (%s)%s%s%s "
                "(" GROUND_RISK_DE ").",
                x.name, x.dest, ade, ch_de, challenged && note_de ? ")" : "", ex_de),
            cx_fmt("The transfer of %s to %s relies on the adequacy decision (%s)%s%s%s (" GROUND_RISK ").", x.name,
                x.dest, act, ch_en, challenged && note_en ? ")" : "", ex_en),
            GROUND_RISK, near ? until : NULL);
        free(ade);
        free(ch_de);
        free(ch_en);
        free(ex_de);
        free(ex_en);
    }
}


