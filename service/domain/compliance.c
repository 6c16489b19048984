/* compliance: the checks a legal team wants computed, not remembered
 * (../shared/design/domain.md, "Checks"). Pure functions over documents in API
 * shape; "today" is an input. Rules and their ids:
 *   no_valid_basis    GDPR Art. 44–46          (check 1)
 *   partial_adequacy  GDPR Art. 45             (check 2)
 *   repealed_scc      (EU) 2021/914, Art. 4    (check 3)
 *   wrong_scc_module  (EU) 2021/914, Annex I   (check 4)
 *   scc_clauses       (EU) 2021/914, Clauses 17–18 (check 4: governing law, forum)
 *   tia_missing       Schrems II, EDPB 01/2020 (check 5)
 *   no_active_dpa     GDPR Art. 28(3)–(4)      (check 6)
 *   expiring          GDPR Art. 28, 32         (check 7)
 *   adequacy_at_risk  GDPR Art. 45(3)–(5)      (check 10)
 * Checks 8 and 9 need customers, objections and publications, which are not
 * part of compliance_input. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/compliance.h"
#include "subreg/json.h"
#include "subreg/util.h"

enum { SEV_CRITICAL, SEV_HIGH, SEV_MEDIUM, SEV_LOW, SEV_INFO };
static const char *const SEVERITIES[] = {"critical", "high", "medium", "low", "info"};

#define GROUND_BASIS "GDPR Art. 44–46"
#define GROUND_BASIS_DE "Art. 44–46 DSGVO"
#define GROUND_PARTIAL "GDPR Art. 45"
#define GROUND_PARTIAL_DE "Art. 45 DSGVO"
#define GROUND_SCC "Implementing Decision (EU) 2021/914, Art. 4"
#define GROUND_SCC_DE "Durchführungsbeschluss (EU) 2021/914, Art. 4"
#define GROUND_SCC_UK "UK GDPR Art. 46; ICO transitional provisions (s. 119A DPA 2018)"
#define GROUND_SCC_UK_DE "Art. 46 UK GDPR; Übergangsbestimmungen des ICO (s. 119A DPA 2018)"
#define GROUND_UK "UK GDPR Art. 46; s. 119A DPA 2018"
#define GROUND_UK_DE "Art. 46 UK GDPR; s. 119A DPA 2018"
#define GROUND_CH "Swiss FADP Art. 16"
#define GROUND_CH_DE "Art. 16 DSG (Schweiz)"
#define GROUND_CLAUSES "Implementing Decision (EU) 2021/914, Annex, Clauses 17 and 18"
#define GROUND_CLAUSES_DE "Durchführungsbeschluss (EU) 2021/914, Anhang, Klauseln 17 und 18"
#define GROUND_MODULE "Implementing Decision (EU) 2021/914, Annex, Section I"
#define GROUND_MODULE_DE "Durchführungsbeschluss (EU) 2021/914, Anhang, Abschnitt I"
#define GROUND_TIA "Schrems II (C-311/18); EDPB Recommendations 01/2020"
#define GROUND_TIA_DE "Schrems II (C-311/18); EDPB-Empfehlungen 01/2020"
#define GROUND_DPA "GDPR Art. 28(3)–(4)"
#define GROUND_DPA_DE "Art. 28 Abs. 3–4 DSGVO"
#define GROUND_EXPIRING "GDPR Art. 28, 32"
#define GROUND_EXPIRING_DE "Art. 28, 32 DSGVO"
#define GROUND_NOTICE "GDPR Art. 28(2)"
#define GROUND_NOTICE_DE "Art. 28 Abs. 2 DSGVO"
#define GROUND_DRIFT "GDPR Art. 28(2); EDPB Opinion 22/2024"
#define GROUND_DRIFT_DE "Art. 28 Abs. 2 DSGVO; EDSA-Stellungnahme 22/2024"
#define GROUND_RISK "GDPR Art. 45(3)–(5)"
#define GROUND_RISK_DE "Art. 45 Abs. 3–5 DSGVO"

/* ---- small helpers ------------------------------------------------------- */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
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

static bool eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static bool str_is(const cJSON *doc, const char *name, const char *value)
{
    return eq(json_get_str(doc, name), value);
}

/* A date member that is present and a real calendar date, else NULL. */
static const char *get_date(const cJSON *doc, const char *name)
{
    const char *s = json_get_str(doc, name);
    return s && is_valid_date(s) ? s : NULL;
}

static void days_str(int64_t days, char out[16])
{
    format_date(days * 86400000LL, out);
}

/* "2022-12-27" -> "27.12.2022", the way a German reader writes a date. */
static void date_de(const char *iso, char out[16])
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
static int64_t plus_one_year(const char *iso)
{
    int y = atoi(iso), m = atoi(iso + 5), d = atoi(iso + 8);
    y += 1;
    if (m == 2 && d == 29 && !is_leap(y)) d = 28;
    char buf[32];
    snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
    return date_to_days(buf);
}

/* ---- lookups ------------------------------------------------------------- */

typedef struct {
    const compliance_input *in;
    int64_t today;
    int horizon;
} ctx;

static const cJSON *find_by_id(const cJSON *arr, const char *id)
{
    const cJSON *it;
    if (!id) return NULL;
    cJSON_ArrayForEach(it, arr) if (str_is(it, "id", id)) return it;
    return NULL;
}

static const cJSON *find_sp(const ctx *c, const char *id)
{
    return find_by_id(c->in->subprocessors, id);
}

static const char *sp_name(const cJSON *sp, const char *fallback)
{
    const char *n = sp ? json_get_str(sp, "legal_name") : NULL;
    return n ? n : fallback ? fallback : "(unknown subprocessor)";
}

static bool sp_retired(const cJSON *sp)
{
    return sp && str_is(sp, "status", "retired");
}

/* A country missing from the reference list counts as outside the EEA. */
static bool is_eea(const ctx *c, const char *code)
{
    const cJSON *country = find_by_id(c->in->countries, code);
    return country && cJSON_IsTrue(json_get(country, "eea"));
}

static bool decision_valid(const ctx *c, const cJSON *d)
{
    if (!str_is(d, "status", "in_force")) return false;
    const char *until = get_date(d, "valid_until");
    return !until || date_to_days(until) >= c->today;
}

/* The in-force adequacy decision for a country (valid_until absent or not passed). */
static const cJSON *decision_for(const ctx *c, const char *country)
{
    const cJSON *d;
    if (!country) return NULL;
    cJSON_ArrayForEach(d, c->in->adequacy_decisions) if (str_is(d, "country", country) && decision_valid(c, d)) return d;
    return NULL;
}

/* The latest lapsed valid_until of an in-force decision for a country: the day
 * adequacy ran out. INT64_MIN when there is none. */
static int64_t decision_lapsed(const ctx *c, const char *country)
{
    const cJSON *d;
    int64_t best = INT64_MIN;
    cJSON_ArrayForEach(d, c->in->adequacy_decisions)
    {
        const char *until = get_date(d, "valid_until");
        if (str_is(d, "country", country) && str_is(d, "status", "in_force") && until &&
            date_to_days(until) < c->today && date_to_days(until) > best)
            best = date_to_days(until);
    }
    return best;
}

/* The decision a transfer relies on: its destination's for adequacy, the US one
 * for the Data Privacy Framework. NULL when none is in force. */
static const cJSON *relied_decision(const ctx *c, const cJSON *t)
{
    const char *basis = json_get_str(t, "basis");
    if (eq(basis, "adequacy")) return decision_for(c, json_get_str(t, "destination_country"));
    if (eq(basis, "dpf")) return decision_for(c, "US");
    return NULL;
}

static const char *decision_act(const cJSON *d)
{
    const char *act = json_get_str(d, "act");
    return act ? act : "(unnamed)";
}

/* The name of a legal act, as a German reader writes it: the reference data
 * carries the English citation ("Implementing Decision (EU) 2023/1795",
 * "Decision 2001/497/EC"). Caller frees. */
static char *act_de(const char *act)
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
static const char *loc(const cJSON *doc, const char *name, const char *lang)
{
    const cJSON *o = json_get(doc, name);
    return o ? json_get_str(o, lang) : NULL;
}

/* ---- findings ------------------------------------------------------------ */

typedef struct {
    cJSON *f;
    int sev;
    const char *rule;
    const char *eid;
    size_t seq;
} finding;

typedef struct {
    finding *v;
    size_t n, cap;
} findings;

static const char *href_base(const char *etype)
{
    if (eq(etype, "subprocessor")) return "/v1/subprocessors/";
    if (eq(etype, "agreement")) return "/v1/agreements/";
    if (eq(etype, "transfer")) return "/v1/transfers/";
    if (eq(etype, "publication")) return "/v1/publications/";
    return "/v1/tom-documents/";
}

/* Takes ownership of de and en. */
static void add(findings *fs, const char *rule, int sev, const char *etype, const char *eid, const char *spid,
                char *de, char *en, const char *ground, const char *since)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "rule", rule);
    cJSON_AddStringToObject(f, "severity", SEVERITIES[sev]);
    cJSON_AddStringToObject(f, "entity_type", etype);
    cJSON_AddStringToObject(f, "entity_id", eid);
    char *href = fmt("%s%s", href_base(etype), eid);
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

/* ---- transfer labels ----------------------------------------------------- */

static const char *basis_label(const char *basis, bool de)
{
    static const char *const map[][3] = {
        /* German in the genitive: "auf Grundlage der …" */
        {"scc_2021", "the EU SCCs 2021 ((EU) 2021/914)", "der EU-Standardvertragsklauseln 2021 ((EU) 2021/914)"},
        {"scc_2001", "the SCCs 2001 (2001/497/EC)", "der Standardvertragsklauseln 2001 (2001/497/EG)"},
        {"scc_2004", "the SCCs 2004 (2004/915/EC)", "der Standardvertragsklauseln 2004 (2004/915/EG)"},
        {"scc_2010", "the SCCs 2010 (2010/87/EU)", "der Standardvertragsklauseln 2010 (2010/87/EU)"},
        {"uk_idta", "the UK IDTA", "des UK IDTA"},
        {"uk_addendum", "the UK Addendum to the EU SCCs", "des UK-Addendums zu den EU-Standardvertragsklauseln"},
        {"ch_scc", "the EU SCCs with Swiss adaptations", "der EU-Standardvertragsklauseln mit Schweizer Anpassungen"},
        {"bcr", "binding corporate rules", "verbindlicher interner Datenschutzvorschriften (BCR)"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (eq(basis, map[i][0])) return map[i][de ? 2 : 1];
    return basis ? basis : "?";
}

/* Everything the transfer rules need about one transfer. */
typedef struct {
    const cJSON *t;
    const char *id, *spid, *dest, *basis, *name;
    const cJSON *sp;
} xfer;

static bool load_xfer(const ctx *c, const cJSON *t, xfer *x)
{
    x->t = t;
    x->id = json_get_str(t, "id");
    x->spid = json_get_str(t, "subprocessor_id");
    x->dest = json_get_str(t, "destination_country");
    x->basis = json_get_str(t, "basis");
    x->sp = find_sp(c, x->spid);
    x->name = sp_name(x->sp, x->spid);
    if (!x->id || !x->dest || !x->basis) return false;
    /* A retired subprocessor's transfers no longer happen; a transfer inside the
     * EEA needs no transfer tool at all. */
    return !sp_retired(x->sp) && !is_eea(c, x->dest);
}

/* A finding about a transfer (takes ownership of de and en). */
static void add_xfer(findings *fs, const char *rule, int sev, const xfer *x, char *de, char *en, const char *ground,
                     const char *since)
{
    add(fs, rule, sev, "transfer", x->id, x->spid, de, en, ground, since);
}

/* ---- rule 1: no_valid_basis ---------------------------------------------- */

static void rule_no_valid_basis(const ctx *c, findings *fs)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        if (!load_xfer(c, t, &x)) continue;
        char since[16], de1[16];
        const char *until = get_date(t, "valid_until");
        const char *regime = json_get_str(t, "regime");
        if (!regime) regime = "eu";
        if (eq(x.basis, "none")) {
            add_xfer(fs, "no_valid_basis", SEV_CRITICAL, &x,
                fmt("Die Übermittlung von %s nach %s hat keine Rechtsgrundlage (Grundlage „none“); Daten, die den "
                    "EWR verlassen, brauchen einen Angemessenheitsbeschluss, geeignete Garantien oder eine Ausnahme "
                    "(" GROUND_BASIS_DE ").",
                    x.name, x.dest),
                fmt("The transfer of %s to %s has no legal basis (basis \"none\"); data leaving the EEA needs an "
                    "adequacy decision, appropriate safeguards or a derogation (" GROUND_BASIS ").",
                    x.name, x.dest),
                GROUND_BASIS, get_date(t, "valid_from")); /* since the transfer began, when known */
        } else if (eq(x.basis, "dpf") && !eq(x.dest, "US")) {
            add_xfer(fs, "no_valid_basis", SEV_CRITICAL, &x,
                fmt("Die Übermittlung von %s nach %s stützt sich auf das EU-US Data Privacy Framework, das nur "
                    "Empfänger in den USA erfasst (" GROUND_BASIS_DE ").",
                    x.name, x.dest),
                fmt("The transfer of %s to %s relies on the EU-US Data Privacy Framework, which covers only "
                    "recipients in the United States (" GROUND_BASIS ").",
                    x.name, x.dest),
                GROUND_BASIS, NULL);
        } else if ((eq(x.basis, "adequacy") || eq(x.basis, "dpf")) && !relied_decision(c, t)) {
            const char *country = eq(x.basis, "dpf") ? "US" : x.dest;
            int64_t lapsed = decision_lapsed(c, country);
            if (lapsed != INT64_MIN) {
                char until_s[16];
                days_str(lapsed, until_s);
                days_str(lapsed + 1, since);
                date_de(until_s, de1);
                add_xfer(fs, "no_valid_basis", SEV_CRITICAL, &x,
                    fmt("Die Übermittlung von %s nach %s stützt sich auf einen Angemessenheitsbeschluss für %s, der "
                        "nur bis %s galt; seitdem fehlt eine gültige Rechtsgrundlage (" GROUND_BASIS_DE ").",
                        x.name, x.dest, country, de1),
                    fmt("The transfer of %s to %s relies on an adequacy decision for %s that was valid only until "
                        "%s; since then it has no valid basis (" GROUND_BASIS ").",
                        x.name, x.dest, country, until_s),
                    GROUND_BASIS, since);
            } else {
                add_xfer(fs, "no_valid_basis", SEV_CRITICAL, &x,
                    fmt("Die Übermittlung von %s nach %s stützt sich auf einen Angemessenheitsbeschluss, für %s ist "
                        "aber keiner in Kraft (" GROUND_BASIS_DE ").",
                        x.name, x.dest, country),
                    fmt("The transfer of %s to %s relies on adequacy, but no adequacy decision for %s is in force "
                        "(" GROUND_BASIS ").",
                        x.name, x.dest, country),
                    GROUND_BASIS, NULL);
            }
        } else if (!eq(regime, "uk") && (eq(x.basis, "uk_idta") || eq(x.basis, "uk_addendum"))) {
            bool ch = eq(regime, "ch");
            add_xfer(fs, "no_valid_basis", SEV_CRITICAL, &x,
                fmt("Die Übermittlung von %s nach %s fällt unter %s, erfolgt aber auf Grundlage %s, eines Instruments "
                    "der UK GDPR, das dafür keine geeignete Garantie ist (%s).",
                    x.name, x.dest, ch ? "das Schweizer DSG" : "die DSGVO", basis_label(x.basis, true),
                    ch ? GROUND_CH_DE : GROUND_BASIS_DE),
                fmt("The transfer of %s to %s falls under the %s but relies on %s, an instrument of the UK GDPR that "
                    "is no appropriate safeguard there (%s).",
                    x.name, x.dest, ch ? "Swiss FADP" : "EU GDPR", basis_label(x.basis, false),
                    ch ? GROUND_CH : GROUND_BASIS),
                ch ? GROUND_CH : GROUND_BASIS, get_date(t, "valid_from"));
        } else if (eq(regime, "uk") && eq(x.basis, "scc_2021")) {
            add_xfer(fs, "no_valid_basis", SEV_CRITICAL, &x,
                fmt("Die Übermittlung von %s nach %s fällt unter die UK GDPR; die EU-Standardvertragsklauseln 2021 "
                    "gelten dafür nur zusammen mit dem UK-Addendum (Grundlage „uk_addendum“) oder an ihrer Stelle das "
                    "IDTA (" GROUND_UK_DE ").",
                    x.name, x.dest),
                fmt("The transfer of %s to %s falls under the UK GDPR; the EU SCCs 2021 are valid for it only with the "
                    "UK Addendum (basis \"uk_addendum\"), or the IDTA instead (" GROUND_UK ").",
                    x.name, x.dest),
                GROUND_UK, get_date(t, "valid_from"));
        } else if (until && date_to_days(until) < c->today) {
            days_str(date_to_days(until) + 1, since);
            date_de(until, de1);
            add_xfer(fs, "no_valid_basis", SEV_CRITICAL, &x,
                fmt("Die Übermittlung von %s nach %s war nur bis %s gültig; seitdem fehlt eine gültige "
                    "Rechtsgrundlage (" GROUND_BASIS_DE ").",
                    x.name, x.dest, de1),
                fmt("The transfer of %s to %s was valid only until %s; since then it has no valid basis "
                    "(" GROUND_BASIS ").",
                    x.name, x.dest, until),
                GROUND_BASIS, since);
        }
    }

    /* (e) a non-EEA location of an active or proposed subprocessor with no transfer recorded. */
    const cJSON *sp;
    cJSON_ArrayForEach(sp, c->in->subprocessors)
    {
        const char *spid = json_get_str(sp, "id");
        const char *status = json_get_str(sp, "status");
        if (!spid || !(eq(status, "active") || eq(status, "proposed"))) continue;
        const cJSON *locs = json_get(sp, "locations"), *l;
        const char *seen[64];
        size_t nseen = 0;
        cJSON_ArrayForEach(l, locs)
        {
            const char *cc = json_get_str(l, "country");
            if (!cc || is_eea(c, cc)) continue;
            bool dup = false;
            for (size_t i = 0; i < nseen; i++) dup = dup || eq(seen[i], cc);
            if (dup) continue;
            if (nseen < sizeof seen / sizeof seen[0]) seen[nseen++] = cc;
            bool covered = false;
            const cJSON *tr;
            cJSON_ArrayForEach(tr, c->in->transfers) covered =
                covered || (str_is(tr, "subprocessor_id", spid) && str_is(tr, "destination_country", cc));
            if (covered) continue;
            const char *name = sp_name(sp, spid);
            add(fs, "no_valid_basis", SEV_CRITICAL, "subprocessor", spid, spid,
                fmt("%s (Status „%s“) verarbeitet Daten in %s, außerhalb des EWR, aber für %s ist keine "
                    "Übermittlung mit Rechtsgrundlage erfasst (" GROUND_BASIS_DE ").",
                    name, eq(status, "active") ? "aktiv" : "vorgeschlagen", cc, cc),
                fmt("%s (status %s) processes data in %s, outside the EEA, but no transfer with a legal basis is "
                    "recorded for %s (" GROUND_BASIS ").",
                    name, status, cc, cc),
                GROUND_BASIS, NULL);
        }
    }
}

/* ---- rule 2: partial_adequacy -------------------------------------------- */

/* Does the transfer meet the condition of a partial decision (DPF
 * participation, recipient within scope)? True for a full decision. */
static bool condition_met(const xfer *x, const cJSON *t, const cJSON *d)
{
    const char *cond = json_get_str(d, "condition");
    if (eq(cond, "dpf_participation")) {
        const cJSON *dpf = x->sp ? json_get(x->sp, "dpf") : NULL;
        return dpf && cJSON_IsTrue(json_get(dpf, "participating"));
    }
    if (eq(cond, "recipient_in_scope")) return cJSON_IsTrue(json_get(t, "recipient_in_adequacy_scope"));
    return true;
}

#define DPF_ADOPTED "2023-07-10" /* Implementing Decision (EU) 2023/1795 */

/* A DPF participant whose listing was last checked more than a year ago (they
 * re-certify yearly), or before the decision existed: the check proves nothing. */
static void dpf_recheck(const ctx *c, findings *fs, const xfer *x, const char *act, const char *ade)
{
    const cJSON *dpf = x->sp ? json_get(x->sp, "dpf") : NULL;
    const char *checked = get_date(dpf, "verified_on");
    if (!checked) return;
    int64_t day = date_to_days(checked), stale = plus_one_year(checked);
    bool before_decision = day < date_to_days(DPF_ADOPTED);
    if (!before_decision && stale >= c->today) return;
    char d1[16], since[16];
    date_de(checked, d1);
    if (!before_decision) days_str(stale + 1, since); /* the first day it is more than a year old */
    add_xfer(fs, "partial_adequacy", SEV_MEDIUM, x,
             fmt("Die Teilnahme von %s am Data Privacy Framework wurde zuletzt am %s geprüft; Organisationen "
                 "zertifizieren sich jährlich neu, die Liste ist erneut zu prüfen (%s, " GROUND_PARTIAL_DE ").",
                 x->name, d1, ade),
             fmt("The Data Privacy Framework participation of %s was last verified on %s; organisations re-certify "
                 "every year, so the DPF list needs checking again (%s, " GROUND_PARTIAL ").",
                 x->name, checked, act),
             GROUND_PARTIAL, before_decision ? NULL : since);
}

static void rule_partial_adequacy(const ctx *c, findings *fs)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        if (!load_xfer(c, t, &x)) continue;
        if (!eq(x.basis, "adequacy") && !eq(x.basis, "dpf")) continue;
        const cJSON *d = relied_decision(c, t);
        if (!d) continue; /* no decision in force: no_valid_basis */
        bool dpf = eq(json_get_str(d, "condition"), "dpf_participation");
        const char *act = decision_act(d);
        char *ade = act_de(act);
        if (condition_met(&x, t, d)) {
            if (dpf) dpf_recheck(c, fs, &x, act, ade);
        } else if (dpf) {
            add_xfer(fs, "partial_adequacy", SEV_CRITICAL, &x,
                fmt("Die Übermittlung von %s nach %s stützt sich auf den Angemessenheitsbeschluss (%s), der nur am "
                    "Data Privacy Framework teilnehmende Organisationen erfasst; %s ist nicht als Teilnehmer erfasst "
                    "(" GROUND_PARTIAL_DE ").",
                    x.name, x.dest, ade, x.name),
                fmt("The transfer of %s to %s relies on the adequacy decision (%s), which covers only organisations "
                    "participating in the Data Privacy Framework; %s is not recorded as participating "
                    "(" GROUND_PARTIAL ").",
                    x.name, x.dest, act, x.name),
                GROUND_PARTIAL, NULL);
        } else {
            const char *note_de = loc(d, "scope_note", "de"), *note_en = loc(d, "scope_note", "en");
            add_xfer(fs, "partial_adequacy", SEV_CRITICAL, &x,
                fmt("Die Übermittlung von %s nach %s stützt sich auf den teilweisen Angemessenheitsbeschluss (%s), "
                    "es ist aber nicht erfasst, dass der Empfänger in dessen Geltungsbereich fällt%s%s "
                    "(" GROUND_PARTIAL_DE ").",
                    x.name, x.dest, ade, note_de ? "; Geltungsbereich: " : "", note_de ? note_de : ""),
                fmt("The transfer of %s to %s relies on the partial adequacy decision (%s), but the recipient is not "
                    "recorded as within its scope%s%s (" GROUND_PARTIAL ").",
                    x.name, x.dest, act, note_en ? "; scope: " : "", note_en ? note_en : ""),
                GROUND_PARTIAL, NULL);
        }
        free(ade);
    }
}

/* ---- rule 3: repealed_scc ------------------------------------------------ */

static const cJSON *scc_set_for(const ctx *c, const char *basis, const char *regime)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, c->in->scc_sets) if (str_is(s, "basis", basis) && str_is(s, "regime", regime)) return s;
    if (eq(regime, "uk")) return find_by_id(c->in->scc_sets, "uk-legacy-eu-scc");
    if (!eq(regime, "eu")) return scc_set_for(c, basis, "eu");
    return NULL;
}

static void rule_repealed_scc(const ctx *c, findings *fs)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        if (!load_xfer(c, t, &x)) continue;
        if (!eq(x.basis, "scc_2001") && !eq(x.basis, "scc_2004") && !eq(x.basis, "scc_2010")) continue;
        const char *regime = json_get_str(t, "regime");
        const cJSON *set = scc_set_for(c, x.basis, regime ? regime : "eu");
        bool uk = eq(regime, "uk");
        const char *ground = uk ? GROUND_SCC_UK : GROUND_SCC, *ground_de = uk ? GROUND_SCC_UK_DE : GROUND_SCC_DE;
        if (!set) {
            /* the reference entry was deleted: every old set has lapsed anyway */
            add_xfer(fs, "repealed_scc", SEV_CRITICAL, &x,
                fmt("Die Übermittlung von %s nach %s stützt sich auf aufgehobene Standardvertragsklauseln "
                    "(Grundlage „%s“), die in den Referenzdaten fehlen; keine dieser Fassungen darf heute noch "
                    "verwendet werden (%s).",
                    x.name, x.dest, x.basis, ground_de),
                fmt("The transfer of %s to %s relies on repealed SCCs (basis \"%s\") missing from the reference "
                    "data; none of these sets may be relied on today (%s).",
                    x.name, x.dest, x.basis, ground),
                ground, NULL);
            continue;
        }
        const char *act = json_get_str(set, "legal_act");
        if (!act) act = x.basis;
        const char *until = get_date(set, "valid_until");
        const char *cutoff = get_date(set, "new_contracts_until");
        const char *signed_on = get_date(t, "contract_signed_on");
        bool late = signed_on && cutoff && date_to_days(signed_on) > date_to_days(cutoff);
        bool lapsed = until && c->today > date_to_days(until);
        char since[16], d1[16], d2[16];
        char *ade = act_de(act);
        if (late && (!lapsed || date_to_days(signed_on) <= date_to_days(until) + 1)) {
            date_de(signed_on, d1);
            date_de(cutoff, d2);
            add_xfer(fs, "repealed_scc", SEV_CRITICAL, &x,
                fmt("Der Vertrag für die Übermittlung von %s nach %s stützt sich auf die aufgehobenen "
                    "Standardvertragsklauseln (%s) und wurde am %s geschlossen, nach dem %s, dem letzten Tag, an dem "
                    "neue Verträge sie nutzen durften (%s).",
                    x.name, x.dest, ade, d1, d2, ground_de),
                fmt("The contract for the transfer of %s to %s relies on the repealed SCCs (%s) and was signed on "
                    "%s, after %s, the last day new contracts could use them (%s).",
                    x.name, x.dest, act, signed_on, cutoff, ground),
                ground, signed_on);
        } else if (lapsed) {
            days_str(date_to_days(until) + 1, since);
            date_de(until, d1);
            add_xfer(fs, "repealed_scc", SEV_CRITICAL, &x,
                fmt("Die Übermittlung von %s nach %s stützt sich auf die aufgehobenen Standardvertragsklauseln "
                    "(%s), die nur bis %s verwendet werden durften (%s).",
                    x.name, x.dest, ade, d1, ground_de),
                fmt("The transfer of %s to %s relies on the repealed SCCs (%s), which could be relied on only "
                    "until %s (%s).",
                    x.name, x.dest, act, until, ground),
                ground, since);
        }
        free(ade);
    }
}

/* ---- rule 4: wrong_scc_module -------------------------------------------- */

static void rule_wrong_scc_module(const ctx *c, findings *fs)
{
    static const char *const MOD_EN[] = {"", "controller to controller", "controller to processor",
                                         "processor to processor", "processor to controller"};
    static const char *const MOD_DE[] = {"", "Verantwortlicher an Verantwortlichen",
                                         "Verantwortlicher an Auftragsverarbeiter",
                                         "Auftragsverarbeiter an Auftragsverarbeiter",
                                         "Auftragsverarbeiter an Verantwortlichen"};
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        if (!load_xfer(c, t, &x)) continue;
        if (!eq(x.basis, "scc_2021") && !eq(x.basis, "ch_scc") && !eq(x.basis, "uk_addendum")) continue;
        const char *role = x.sp ? json_get_str(x.sp, "role") : NULL;
        bool processor = eq(role, "processor");
        int want = processor ? 2 : 3;
        const cJSON *m = json_get(t, "scc_module");
        int have = cJSON_IsNumber(m) ? m->valueint : 0;
        if (have == want) continue;
        char *have_en = have >= 1 && have <= 4 ? fmt("SCC Module %d (%s)", have, MOD_EN[have])
                                                 : fmt("no valid SCC module");
        char *have_de = have >= 1 && have <= 4 ? fmt("SCC-Modul %d (%s)", have, MOD_DE[have])
                                                 : fmt("kein gültiges SCC-Modul");
        add_xfer(fs, "wrong_scc_module", SEV_HIGH, &x,
            fmt("Die Übermittlung von %s nach %s verwendet %s, %s ist aber %s und braucht Modul %d (%s) "
                "(" GROUND_MODULE_DE ").",
                x.name, x.dest, have_de, x.name, processor ? "Auftragsverarbeiter" : "Unterauftragsverarbeiter",
                want, MOD_DE[want]),
            fmt("The transfer of %s to %s uses %s, but %s acts as a %s and needs Module %d (%s) (" GROUND_MODULE ").",
                x.name, x.dest, have_en, x.name, processor ? "processor" : "subprocessor", want, MOD_EN[want]),
            GROUND_MODULE, NULL);
        free(have_en);
        free(have_de);
    }
}

/* ---- rule 4b: scc_clauses ---------------------------------------------------
 * Modules 1–3 of the 2021 SCCs: Clause 17 governing law and Clause 18 forum of
 * an EU Member State (EEA through the EEA Agreement); the Swiss adaptations
 * also allow Switzerland. Module 4 and the UK Addendum choose freely / UK law. */

static void rule_scc_clauses(const ctx *c, findings *fs)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        if (!load_xfer(c, t, &x)) continue;
        bool ch = eq(x.basis, "ch_scc");
        if (!eq(x.basis, "scc_2021") && !ch) continue;
        const cJSON *m = json_get(t, "scc_module");
        if (!cJSON_IsNumber(m) || m->valueint < 1 || m->valueint > 3) continue;
        const cJSON *opts = json_get(t, "scc_options");
        static const char *const which[][4] = {
            {"governing_law", "17", "governing law", "das anwendbare Recht"},
            {"forum", "18", "forum", "den Gerichtsstand"},
        };
        for (size_t i = 0; i < 2; i++) {
            const char *cc = opts ? json_get_str(opts, which[i][0]) : NULL;
            if (!cc || is_eea(c, cc) || (ch && eq(cc, "CH"))) continue;
            add_xfer(fs, "scc_clauses", SEV_HIGH, &x,
                fmt("Die Übermittlung von %s nach %s verwendet Modul %d der Standardvertragsklauseln, wählt aber %s "
                    "in %s; Klausel %s verlangt für die Module 1–3 einen EU-Mitgliedstaat%s (" GROUND_CLAUSES_DE ").",
                    x.name, x.dest, m->valueint, which[i][3], cc, which[i][1], ch ? " oder die Schweiz" : ""),
                fmt("The transfer of %s to %s uses Module %d of the SCCs but chooses %s as %s; Clause %s requires an "
                    "EU Member State for Modules 1–3%s (" GROUND_CLAUSES ").",
                    x.name, x.dest, m->valueint, cc, which[i][2], which[i][1], ch ? " or Switzerland" : ""),
                GROUND_CLAUSES, NULL);
        }
    }
}

/* ---- rule 5: tia_missing ------------------------------------------------- */

static void rule_tia_missing(const ctx *c, findings *fs)
{
    static const char *const NEEDS_TIA[] = {"scc_2021", "scc_2001", "scc_2004", "scc_2010",
                                            "uk_idta",  "uk_addendum", "ch_scc", "bcr"};
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        if (!load_xfer(c, t, &x)) continue;
        bool needs = false;
        for (size_t i = 0; i < sizeof NEEDS_TIA / sizeof NEEDS_TIA[0]; i++) needs = needs || eq(x.basis, NEEDS_TIA[i]);
        if (!needs) continue;
        const cJSON *tia = json_get(t, "tia");
        const char *performed = tia ? get_date(tia, "performed_on") : NULL;
        if (!performed) {
            add_xfer(fs, "tia_missing", SEV_HIGH, &x,
                fmt("Für die Übermittlung von %s nach %s auf Grundlage %s liegt keine "
                    "Transfer-Folgenabschätzung (TIA) vor (" GROUND_TIA_DE ").",
                    x.name, x.dest, basis_label(x.basis, true)),
                fmt("The transfer of %s to %s relies on %s but has no transfer impact assessment (" GROUND_TIA ").",
                    x.name, x.dest, basis_label(x.basis, false)),
                GROUND_TIA, NULL);
            continue;
        }
        int64_t stale = plus_one_year(performed) + 1;
        if (stale > c->today) continue;
        char since[16], d1[16], d2[16];
        days_str(stale, since);
        date_de(performed, d1);
        date_de(since, d2);
        add_xfer(fs, "tia_missing", SEV_MEDIUM, &x,
            fmt("Die Transfer-Folgenabschätzung (TIA) für die Übermittlung von %s nach %s wurde am %s durchgeführt "
                "und ist seit dem %s älter als 12 Monate (" GROUND_TIA_DE ").",
                x.name, x.dest, d1, d2),
            fmt("The transfer impact assessment for the transfer of %s to %s was performed on %s and has been older "
                "than 12 months since %s (" GROUND_TIA ").",
                x.name, x.dest, performed, since),
            GROUND_TIA, since);
    }
}

/* ---- rule 6: no_active_dpa ----------------------------------------------- */

static void rule_no_active_dpa(const ctx *c, findings *fs)
{
    const cJSON *sp;
    cJSON_ArrayForEach(sp, c->in->subprocessors)
    {
        const char *spid = json_get_str(sp, "id");
        if (!spid || !str_is(sp, "status", "active")) continue;
        bool ok = false;
        int64_t last_expiry = INT64_MIN;
        const cJSON *a;
        cJSON_ArrayForEach(a, c->in->agreements)
        {
            if (!str_is(a, "subprocessor_id", spid) || !str_is(a, "type", "dpa")) continue;
            const char *exp = get_date(a, "expires_on");
            bool active = str_is(a, "status", "active");
            if (active && (!exp || date_to_days(exp) >= c->today)) ok = true;
            /* When the DPA ran out by date (still marked active, or expired), that is the day it lapsed. */
            if ((active || str_is(a, "status", "expired")) && exp && date_to_days(exp) < c->today &&
                date_to_days(exp) > last_expiry)
                last_expiry = date_to_days(exp);
        }
        if (ok) continue;
        const char *name = sp_name(sp, spid);
        if (last_expiry != INT64_MIN) {
            char exp_s[16], since[16], d1[16];
            days_str(last_expiry, exp_s);
            days_str(last_expiry + 1, since);
            date_de(exp_s, d1);
            add(fs, "no_active_dpa", SEV_HIGH, "subprocessor", spid, spid,
                fmt("%s ist aktiv, hat aber keinen gültigen Auftragsverarbeitungsvertrag (AVV); der letzte lief am %s "
                    "ab (" GROUND_DPA_DE ").",
                    name, d1),
                fmt("%s is active but has no active data processing agreement (DPA); the last one expired on %s "
                    "(" GROUND_DPA ").",
                    name, exp_s),
                GROUND_DPA, since);
        } else {
            add(fs, "no_active_dpa", SEV_HIGH, "subprocessor", spid, spid,
                fmt("%s ist aktiv, hat aber keinen aktiven Auftragsverarbeitungsvertrag (AVV) (" GROUND_DPA_DE ").",
                    name),
                fmt("%s is active but has no active data processing agreement (DPA) (" GROUND_DPA ").", name),
                GROUND_DPA, NULL);
        }
    }
}

/* ---- rule 7: dates due (shared with compliance_expiring) ------------------ */

typedef struct {
    int64_t day;
    char date[16];
    const char *kind, *etype, *eid, *spid;
    char *title, *de, *en;
    size_t seq;
} due;

typedef struct {
    due *v;
    size_t n, cap;
} dues;

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

static void dues_free(dues *ds)
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
    if (eq(type, "dpa")) return "AVV";
    if (eq(type, "msa")) return "Rahmenvertrag";
    if (eq(type, "sla")) return "SLA";
    if (eq(type, "nda")) return "Geheimhaltungsvereinbarung";
    return "Vertrag";
}

static const char *agreement_label(const char *type)
{
    if (eq(type, "dpa")) return "DPA";
    if (eq(type, "msa")) return "MSA";
    if (eq(type, "sla")) return "SLA";
    if (eq(type, "nda")) return "NDA";
    return "Agreement";
}

/* Is this date within reach: on or before today + within days? */
static const char *reachable(const ctx *c, const cJSON *doc, const char *name, int within)
{
    const char *d = get_date(doc, name);
    return d && date_to_days(d) <= c->today + within ? d : NULL;
}

/* Every date due within `within` days of today, overdue ones included. */
static void collect_dues(const ctx *c, int within, dues *ds)
{
    char dd[16];
    const cJSON *a;
    cJSON_ArrayForEach(a, c->in->agreements)
    {
        const char *id = json_get_str(a, "id");
        if (!id || !str_is(a, "status", "active")) continue;
        const char *spid = json_get_str(a, "subprocessor_id");
        const char *name = sp_name(find_sp(c, spid), spid);
        const char *label = agreement_label(json_get_str(a, "type"));
        const char *label_de = agreement_label_de(json_get_str(a, "type"));
        const char *title = json_get_str(a, "title");
        if (!title) title = label;
        const char *d;
        if ((d = reachable(c, a, "expires_on", within))) {
            bool past = date_to_days(d) < c->today;
            date_de(d, dd);
            due_add(ds, d, "agreement_expiry", "agreement", id, spid, fmt("%s %s expires", label, name),
                    past ? fmt("Der Vertrag „%s“ (%s) mit %s ist am %s abgelaufen, ist aber noch als aktiv erfasst "
                               "(" GROUND_EXPIRING_DE ").",
                               title, label_de, name, dd)
                         : fmt("Der Vertrag „%s“ (%s) mit %s läuft am %s ab (" GROUND_EXPIRING_DE ").", title, label_de,
                               name, dd),
                    past ? fmt("The %s \"%s\" with %s expired on %s but is still recorded as active "
                               "(" GROUND_EXPIRING ").",
                               label, title, name, d)
                         : fmt("The %s \"%s\" with %s expires on %s (" GROUND_EXPIRING ").", label, title, name, d));
        }
        if ((d = reachable(c, a, "review_on", within))) {
            bool past = date_to_days(d) < c->today;
            date_de(d, dd);
            due_add(ds, d, "agreement_review", "agreement", id, spid, fmt("%s %s review due", label, name),
                    fmt("Die Überprüfung des Vertrags „%s“ (%s) mit %s %s am %s fällig (" GROUND_EXPIRING_DE ").",
                        title, label_de, name, past ? "war" : "ist", dd),
                    fmt("The review of the %s \"%s\" with %s %s due on %s (" GROUND_EXPIRING ").", label, title, name,
                        past ? "was" : "is", d));
        }
    }

    const cJSON *sp;
    cJSON_ArrayForEach(sp, c->in->subprocessors)
    {
        const char *spid = json_get_str(sp, "id");
        if (!spid || sp_retired(sp)) continue;
        const char *name = sp_name(sp, spid);
        const cJSON *cert;
        cJSON_ArrayForEach(cert, json_get(sp, "certifications"))
        {
            const char *d = reachable(c, cert, "valid_until", within);
            if (!d) continue;
            const char *cname = json_get_str(cert, "name");
            if (!cname) cname = "(unnamed)";
            bool past = date_to_days(d) < c->today;
            date_de(d, dd);
            due_add(ds, d, "certification", "subprocessor", spid, spid,
                    fmt("%s certification of %s expires", cname, name),
                    past ? fmt("Die Zertifizierung %s von %s ist am %s abgelaufen (" GROUND_EXPIRING_DE ").", cname,
                               name, dd)
                         : fmt("Die Zertifizierung %s von %s läuft am %s ab (" GROUND_EXPIRING_DE ").", cname, name,
                               dd),
                    past ? fmt("The %s certification of %s expired on %s (" GROUND_EXPIRING ").", cname, name, d)
                         : fmt("The %s certification of %s expires on %s (" GROUND_EXPIRING ").", cname, name, d));
        }
        const char *d = reachable(c, sp, "next_review_on", within);
        if (d) {
            bool past = date_to_days(d) < c->today;
            date_de(d, dd);
            due_add(ds, d, "subprocessor_review", "subprocessor", spid, spid, fmt("Review of %s due", name),
                    fmt("Die Überprüfung von %s %s am %s fällig (" GROUND_EXPIRING_DE ").", name,
                        past ? "war" : "ist", dd),
                    fmt("The review of %s %s due on %s (" GROUND_EXPIRING ").", name, past ? "was" : "is", d));
        }
    }

    const cJSON *tom;
    cJSON_ArrayForEach(tom, c->in->tom_documents)
    {
        const char *id = json_get_str(tom, "id");
        if (!id || !str_is(tom, "status", "active")) continue;
        const char *d = reachable(c, tom, "next_review_on", within);
        if (!d) continue;
        const char *title = json_get_str(tom, "title");
        if (!title) title = id;
        const char *ver = json_get_str(tom, "version_label");
        bool past = date_to_days(d) < c->today;
        date_de(d, dd);
        due_add(ds, d, "tom_review", "tom_document", id, json_get_str(tom, "subprocessor_id"),
                fmt("TOM document %s review due", title),
                fmt("Die Überprüfung des TOM-Dokuments „%s“%s%s%s %s am %s fällig (" GROUND_EXPIRING_DE ").", title,
                    ver ? " (Version " : "", ver ? ver : "", ver ? ")" : "", past ? "war" : "ist", dd),
                fmt("The review of the TOM document \"%s\"%s%s%s %s due on %s (" GROUND_EXPIRING ").", title,
                    ver ? " (version " : "", ver ? ver : "", ver ? ")" : "", past ? "was" : "is", d));
    }

    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        const char *id = json_get_str(t, "id");
        if (!id) continue;
        const char *spid = json_get_str(t, "subprocessor_id");
        const cJSON *tsp = find_sp(c, spid);
        if (sp_retired(tsp)) continue;
        const char *name = sp_name(tsp, spid);
        const char *dest = json_get_str(t, "destination_country");
        if (!dest) dest = "?";
        const cJSON *tia = json_get(t, "tia");
        const char *d = tia ? reachable(c, tia, "next_review_on", within) : NULL;
        if (d) {
            bool past = date_to_days(d) < c->today;
            date_de(d, dd);
            due_add(ds, d, "tia_review", "transfer", id, spid, fmt("TIA %s to %s review due", name, dest),
                    fmt("Die Überprüfung der Transfer-Folgenabschätzung (TIA) für die Übermittlung von %s nach %s %s "
                        "am %s fällig (" GROUND_EXPIRING_DE ").",
                        name, dest, past ? "war" : "ist", dd),
                    fmt("The review of the transfer impact assessment for the transfer of %s to %s %s due on %s "
                        "(" GROUND_EXPIRING ").",
                        name, dest, past ? "was" : "is", d));
        }
        if ((d = reachable(c, t, "valid_until", within))) {
            bool past = date_to_days(d) < c->today;
            date_de(d, dd);
            due_add(ds, d, "transfer_validity", "transfer", id, spid, fmt("Transfer %s to %s expires", name, dest),
                    past ? fmt("Die Übermittlung von %s nach %s war nur bis %s gültig (" GROUND_EXPIRING_DE ").", name,
                               dest, dd)
                         : fmt("Die Übermittlung von %s nach %s ist bis %s gültig (" GROUND_EXPIRING_DE ").", name,
                               dest, dd),
                    past ? fmt("The transfer of %s to %s was valid only until %s (" GROUND_EXPIRING ").", name, dest, d)
                         : fmt("The transfer of %s to %s is valid until %s (" GROUND_EXPIRING ").", name, dest, d));
        }
    }
    if (ds->n) qsort(ds->v, ds->n, sizeof *ds->v, cmp_due);
}

static void rule_expiring(const ctx *c, findings *fs)
{
    dues ds = {0};
    collect_dues(c, c->horizon, &ds);
    for (size_t i = 0; i < ds.n; i++) {
        due *d = &ds.v[i];
        add(fs, "expiring", d->day < c->today ? SEV_HIGH : SEV_MEDIUM, d->etype, d->eid, d->spid, d->de, d->en,
            GROUND_EXPIRING, d->date);
        d->de = d->en = NULL; /* now owned by the finding */
    }
    dues_free(&ds);
}

/* ---- rule 10: adequacy_at_risk ------------------------------------------- */

static void rule_adequacy_at_risk(const ctx *c, findings *fs)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        if (!load_xfer(c, t, &x)) continue;
        if (!eq(x.basis, "adequacy") && !eq(x.basis, "dpf")) continue;
        const cJSON *d = relied_decision(c, t);
        if (!d) continue;                      /* none in force: no_valid_basis */
        if (!condition_met(&x, t, d)) continue; /* not covered at all: partial_adequacy */
        bool challenged = cJSON_IsTrue(json_get(d, "under_challenge"));
        const char *until = get_date(d, "valid_until");
        int64_t u = until ? date_to_days(until) : -1;
        bool near = until && u >= c->today && u <= c->today + 365;
        if (!challenged && !near) continue;
        int sev = until && u >= c->today && u <= c->today + c->horizon ? SEV_MEDIUM : SEV_INFO;
        const char *act = decision_act(d);
        char *ade = act_de(act);
        char d1[16];
        date_de(until, d1);
        const char *note_de = loc(d, "challenge_note", "de"), *note_en = loc(d, "challenge_note", "en");
        char *ch_de = challenged ? fmt(", der angefochten ist%s%s", note_de ? " (" : "", note_de ? note_de : "")
                                 : fmt("%s", "");
        char *ch_en = challenged ? fmt(", which is under challenge%s%s", note_en ? " (" : "", note_en ? note_en : "")
                                 : fmt("%s", "");
        char *ex_de = near ? fmt("%s am %s ausläuft", challenged ? " und der" : ", der", d1) : fmt("%s", "");
        char *ex_en = near ? fmt("%s expires on %s", challenged ? " and" : ", which", until) : fmt("%s", "");
        add_xfer(fs, "adequacy_at_risk", sev, &x,
            fmt("Die Übermittlung von %s nach %s stützt sich auf den Angemessenheitsbeschluss (%s)%s%s%s "
                "(" GROUND_RISK_DE ").",
                x.name, x.dest, ade, ch_de, challenged && note_de ? ")" : "", ex_de),
            fmt("The transfer of %s to %s relies on the adequacy decision (%s)%s%s%s (" GROUND_RISK ").", x.name,
                x.dest, act, ch_en, challenged && note_en ? ")" : "", ex_en),
            GROUND_RISK, near ? until : NULL);
        free(ade);
        free(ch_de);
        free(ch_en);
        free(ex_de);
        free(ex_en);
    }
}


/* ---- rules 8 and 9: publications ------------------------------------------ */

static int64_t ts(const cJSON *doc, const char *name)
{
    int64_t ms = 0;
    const char *v = json_get_str(doc, name);
    return v && parse_rfc3339(v, &ms) ? ms : INT64_MIN;
}

/* The version in effect at now: the highest number whose effective_at has come. */
static const cJSON *in_effect(const ctx *c, int64_t now)
{
    const cJSON *best = NULL;
    for (const cJSON *p = c->in->publications ? c->in->publications->child : NULL; p; p = p->next) {
        int64_t eff = ts(p, "effective_at");
        if (eff == INT64_MIN || eff > now) continue;
        if (!best || cJSON_GetNumberValue(json_get(p, "number")) > cJSON_GetNumberValue(json_get(best, "number")))
            best = p;
    }
    return best;
}

static bool announces_changes(const cJSON *pub)
{
    const cJSON *d = json_get(pub, "diff");
    return cJSON_GetArraySize(json_get(d, "added")) > 0 || cJSON_GetArraySize(json_get(d, "changed")) > 0;
}

/* 8: a version taking effect before a customer's notice period has passed, or
 * with an open objection. Looks at the versions not yet in effect and the one in
 * effect (the others are history). */
static void rule_notice_period(const ctx *c, findings *fs, int64_t now)
{
    const cJSON *current = in_effect(c, now);
    for (const cJSON *p = c->in->publications ? c->in->publications->child : NULL; p; p = p->next) {
        int64_t eff = ts(p, "effective_at"), pub = ts(p, "published_at");
        if (eff == INT64_MIN || pub == INT64_MIN || (eff <= now && p != current)) continue;
        const char *id = json_get_str(p, "id");
        int number = (int)cJSON_GetNumberValue(json_get(p, "number"));
        bool first = number <= 1;
        if (!id) continue;
        char eff_day[16];
        snprintf(eff_day, sizeof eff_day, "%.10s", json_get_str(p, "effective_at"));
        if (!first && announces_changes(p)) {
            int short_customers = 0, worst = 0;
            for (const cJSON *cu = c->in->customers ? c->in->customers->child : NULL; cu; cu = cu->next) {
                if (!str_is(cu, "status", "active")) continue;
                int days = (int)cJSON_GetNumberValue(json_get(cu, "notice_days"));
                int64_t promised = pub + (int64_t)days * 86400000;
                if (eff < promised) {
                    short_customers++;
                    int missing = (int)((promised - eff + 86399999) / 86400000);
                    if (missing > worst) worst = missing;
                }
            }
            if (short_customers)
                add(fs, "notice_period", eff > now ? 1 : 2, "publication", id, NULL,
                    fmt("Version %d der Liste der Unterauftragsverarbeiter wird am %s wirksam, bevor die "
                        "vereinbarte Ankündigungsfrist von %d Kunden abgelaufen ist (bis zu %d Tage zu früh; " GROUND_NOTICE_DE ").",
                        number, eff_day, short_customers, worst),
                    fmt("Version %d of the subprocessor list takes effect on %s, before the notice period promised to "
                        "%d customer(s) has passed (up to %d days early; " GROUND_NOTICE ").",
                        number, eff_day, short_customers, worst),
                    GROUND_NOTICE, eff_day);
        }
        int open = 0;
        for (const cJSON *o = c->in->objections ? c->in->objections->child : NULL; o; o = o->next)
            if (str_is(o, "publication_id", id) && str_is(o, "status", "open")) open++;
        if (open)
            add(fs, "notice_period", eff > now ? 1 : 2, "publication", id, NULL,
                fmt("Gegen Version %d der Liste (wirksam %s %s) liegen %d offene Einsprüche vor (" GROUND_NOTICE_DE ").",
                    number, eff > now ? "ab" : "seit", eff_day, open),
                fmt("Version %d of the list (effective %s %s) has %d open objection(s) (" GROUND_NOTICE ").", number,
                    eff > now ? "from" : "since", eff_day, open),
                GROUND_NOTICE, NULL);
    }
}

static bool listed(const cJSON *sp)
{
    return !cJSON_IsFalse(json_get(json_get(sp, "public"), "listed"));
}

/* 9: the public list in effect disagrees with the registry. */
static void rule_public_list_drift(const ctx *c, findings *fs, int64_t now)
{
    const cJSON *current = in_effect(c, now);
    const cJSON *items = current ? json_get(current, "items") : NULL;
    for (const cJSON *sp = c->in->subprocessors ? c->in->subprocessors->child : NULL; sp; sp = sp->next) {
        const char *id = json_get_str(sp, "id");
        if (!id) continue;
        bool on_list = find_by_id(items, id) != NULL;
        const char *name = sp_name(sp, id);
        if (str_is(sp, "status", "active") && listed(sp) && !on_list)
            add(fs, "public_list_drift", 2, "subprocessor", id, id,
                fmt("%s ist aktiv, steht aber nicht in der wirksamen öffentlichen Liste%s (" GROUND_DRIFT_DE ").",
                    name, current ? "" : " (es ist noch keine Version veröffentlicht)"),
                fmt("%s is active but missing from the public list in effect%s (" GROUND_DRIFT ").", name,
                    current ? "" : " (no version has been published yet)"),
                GROUND_DRIFT, NULL);
        else if (str_is(sp, "status", "retired") && on_list)
            add(fs, "public_list_drift", 2, "subprocessor", id, id,
                fmt("%s ist ausgeschieden, steht aber noch in der wirksamen öffentlichen Liste (" GROUND_DRIFT_DE ").",
                    name),
                fmt("%s is retired but still on the public list in effect (" GROUND_DRIFT ").", name), GROUND_DRIFT,
                NULL);
    }
}

/* ---- entry points -------------------------------------------------------- */

static bool init(ctx *c, const compliance_input *in)
{
    if (!in || !in->today || !is_valid_date(in->today)) return false;
    c->in = in;
    c->today = date_to_days(in->today);
    c->horizon = in->horizon_days >= 0 ? in->horizon_days : 30;
    return true;
}

cJSON *compliance_findings(const compliance_input *in)
{
    cJSON *out = cJSON_CreateArray();
    ctx c;
    if (!init(&c, in)) return out;
    findings fs = {0};
    rule_no_valid_basis(&c, &fs);
    rule_partial_adequacy(&c, &fs);
    rule_repealed_scc(&c, &fs);
    rule_wrong_scc_module(&c, &fs);
    rule_scc_clauses(&c, &fs);
    rule_tia_missing(&c, &fs);
    rule_no_active_dpa(&c, &fs);
    rule_expiring(&c, &fs);
    rule_adequacy_at_risk(&c, &fs);
    int64_t now;
    if (in->now && parse_rfc3339(in->now, &now)) {
        rule_notice_period(&c, &fs, now);
        rule_public_list_drift(&c, &fs, now);
    }
    if (fs.n) qsort(fs.v, fs.n, sizeof *fs.v, cmp_finding);
    for (size_t i = 0; i < fs.n; i++) cJSON_AddItemToArray(out, fs.v[i].f);
    free(fs.v);
    return out;
}

cJSON *compliance_expiring(const compliance_input *in, int within_days)
{
    cJSON *out = cJSON_CreateArray();
    ctx c;
    if (!init(&c, in)) return out;
    dues ds = {0};
    collect_dues(&c, within_days >= 0 ? within_days : 0, &ds);
    for (size_t i = 0; i < ds.n; i++) {
        const due *d = &ds.v[i];
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "date", d->date);
        cJSON_AddStringToObject(it, "kind", d->kind);
        cJSON_AddStringToObject(it, "entity_type", d->etype);
        cJSON_AddStringToObject(it, "entity_id", d->eid);
        char *href = fmt("%s%s", href_base(d->etype), d->eid);
        cJSON_AddStringToObject(it, "href", href);
        free(href);
        if (d->spid) cJSON_AddStringToObject(it, "subprocessor_id", d->spid);
        cJSON_AddStringToObject(it, "title", d->title);
        cJSON_AddBoolToObject(it, "overdue", d->day < c.today);
        cJSON_AddItemToArray(out, it);
    }
    dues_free(&ds);
    return out;
}
