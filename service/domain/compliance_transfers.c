/* The transfer rules (GDPR Chapter V, UK GDPR, Swiss FADP), each regime judged
 * against its own adequacy list: no_valid_basis, transfer_not_recorded,
 * derogation_systematic, partial_adequacy, repealed_scc, wrong_scc_module,
 * scc_clauses, tia_missing. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compliance_internal.h"
#include "subreg/json.h"
#include "subreg/util.h"

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
        if (cx_eq(basis, map[i][0])) return map[i][de ? 2 : 1];
    return basis ? basis : "?";
}


bool cx_load_xfer(const ctx *c, const cJSON *t, xfer *x)
{
    x->t = t;
    x->id = json_get_str(t, "id");
    x->spid = json_get_str(t, "subprocessor_id");
    x->dest = json_get_str(t, "destination_country");
    x->basis = json_get_str(t, "basis");
    x->regime = cx_regime_of(t);
    x->sp = cx_find_sp(c, x->spid);
    x->name = cx_sp_name(x->sp, x->spid);
    if (!x->id || !x->dest || !x->basis) return false;
    /* A retired subprocessor's transfers no longer happen; a transfer inside the
     * EEA needs no transfer tool at all (the UK and Switzerland recognise the EEA
     * as adequate, DPA 2018 Sch. 21 para. 4, DPO Annex 1), nor one within the
     * regime's own country. */
    return !cx_sp_retired(x->sp) && !cx_is_eea(c, x->dest) && !cx_eq(x->dest, cx_regime_home(x->regime));
}

/* A finding about a transfer (takes ownership of de and en). */
void cx_add_xfer(findings *fs, const char *rule, int sev, const xfer *x, char *de, char *en, const char *ground,
                 const char *since)
{
    cx_add(fs, rule, sev, "transfer", x->id, x->spid, de, en, ground, since);
}

/* ---- the Data Privacy Framework per regime --------------------------------
 * One US listing, three parts: the EU-US DPF (Implementing Decision (EU)
 * 2023/1795), its UK Extension (the UK-US data bridge, SI 2023/1028) and the
 * Swiss-US DPF (DPO Annex 1 from 15 Sep 2024). Each regime's US adequacy covers
 * only a recipient certified under its part. */

static const char *dpf_framework(const char *regime)
{
    return cx_eq(regime, "uk") ? "uk-extension" : cx_eq(regime, "ch") ? "swiss-us" : "eu-us";
}

static const char *dpf_label(const char *regime, bool de)
{
    if (cx_eq(regime, "uk"))
        return de ? "die UK Extension zum EU-US Data Privacy Framework (UK-US Data Bridge)"
                  : "the UK Extension to the EU-US Data Privacy Framework (UK-US data bridge)";
    if (cx_eq(regime, "ch")) return de ? "das Swiss-US Data Privacy Framework" : "the Swiss-US Data Privacy Framework";
    return de ? "das EU-US Data Privacy Framework" : "the EU-US Data Privacy Framework";
}

/* Is the subprocessor certified under the regime's part of the DPF? A listing
 * recorded without its parts (before they were recorded) is an EU-US one. */
static bool dpf_covers(const cJSON *sp, const char *regime)
{
    const cJSON *dpf = sp ? json_get(sp, "dpf") : NULL;
    if (!dpf || !cJSON_IsTrue(json_get(dpf, "participating"))) return false;
    const cJSON *parts = json_get(dpf, "frameworks"), *p;
    const char *want = dpf_framework(regime);
    if (cJSON_GetArraySize(parts) == 0) return cx_eq(want, "eu-us");
    cJSON_ArrayForEach(p, parts) if (cJSON_IsString(p) && cx_eq(p->valuestring, want)) return true;
    return false;
}

/* ---- rule 1: no_valid_basis ---------------------------------------------- */

static void locations_unrecorded(const ctx *c, findings *fs, bool adequate);

/* Where data goes when it leaves the regime's territory. */
static const char *leaving(const char *regime, bool de)
{
    if (cx_eq(regime, "uk")) return de ? "das Vereinigte Königreich" : "the United Kingdom";
    if (cx_eq(regime, "ch")) return de ? "die Schweiz" : "Switzerland";
    return de ? "den EWR" : "the EEA";
}

/* A transfer relying on adequacy (or the DPF) when no decision of its regime
 * counts today: lapsed, not yet in force, or none at all. */
static void no_decision(const ctx *c, findings *fs, const xfer *x)
{
    const char *country = cx_eq(x->basis, "dpf") ? "US" : x->dest;
    const char *g = cx_ground(x->regime, G_BASIS, false), *g_de = cx_ground(x->regime, G_BASIS, true);
    int64_t lapsed, starts;
    cx_decision_gap(c, country, x->regime, &lapsed, &starts);
    if (lapsed == INT64_MIN && starts == INT64_MIN) {
        cx_add_xfer(fs, "no_valid_basis", SEV_CRITICAL, x,
            cx_fmt("Die Übermittlung von %s nach %s stützt sich auf einen Angemessenheitsbeschluss, für %s ist "
                "aber keiner in Kraft (%s).",
                x->name, x->dest, country, g_de),
            cx_fmt("The transfer of %s to %s relies on adequacy, but no adequacy decision for %s is in force (%s).",
                x->name, x->dest, country, g),
            g, NULL);
        return;
    }
    /* lapsed: since the day after; not yet in force: no since (it never had a basis) */
    bool past = lapsed != INT64_MIN;
    char day[16], day_de[16], since[16];
    cx_days_str(past ? lapsed : starts, day);
    if (past) cx_days_str(lapsed + 1, since);
    cx_date_de(day, day_de);
    cx_add_xfer(fs, "no_valid_basis", SEV_CRITICAL, x,
        cx_fmt("Die Übermittlung von %s nach %s stützt sich auf einen Angemessenheitsbeschluss für %s, der %s %s "
            "%s; %s fehlt eine gültige Rechtsgrundlage (%s).",
            x->name, x->dest, country, past ? "nur bis" : "erst ab", day_de, past ? "galt" : "gilt",
            past ? "seitdem" : "bis dahin", g_de),
        cx_fmt("The transfer of %s to %s relies on an adequacy decision for %s that %s %s; %s it has no valid basis "
            "(%s).",
            x->name, x->dest, country, past ? "was valid only until" : "applies only from", day,
            past ? "since then" : "until then", g),
        g, past ? since : NULL);
}

void cx_rule_no_valid_basis(const ctx *c, findings *fs)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        if (!cx_load_xfer(c, t, &x)) continue;
        char since[16], de1[16];
        const char *until = cx_get_date(t, "valid_until");
        const char *regime = x.regime;
        const char *g = cx_ground(regime, G_BASIS, false), *g_de = cx_ground(regime, G_BASIS, true);
        if (cx_eq(x.basis, "none")) {
            cx_add_xfer(fs, "no_valid_basis", SEV_CRITICAL, &x,
                cx_fmt("Die Übermittlung von %s nach %s hat keine Rechtsgrundlage (Grundlage „none“); Daten, die %s "
                    "verlassen, brauchen einen Angemessenheitsbeschluss, geeignete Garantien oder eine Ausnahme (%s).",
                    x.name, x.dest, leaving(regime, true), g_de),
                cx_fmt("The transfer of %s to %s has no legal basis (basis \"none\"); data leaving %s needs an "
                    "adequacy decision, appropriate safeguards or a derogation (%s).",
                    x.name, x.dest, leaving(regime, false), g),
                g, cx_get_date(t, "valid_from")); /* since the transfer began, when known */
        } else if (cx_eq(x.basis, "dpf") && !cx_eq(x.dest, "US")) {
            cx_add_xfer(fs, "no_valid_basis", SEV_CRITICAL, &x,
                cx_fmt("Die Übermittlung von %s nach %s stützt sich auf %s, das nur Empfänger in den USA erfasst (%s).",
                    x.name, x.dest, dpf_label(regime, true), g_de),
                cx_fmt("The transfer of %s to %s relies on %s, which covers only recipients in the United States (%s).",
                    x.name, x.dest, dpf_label(regime, false), g),
                g, NULL);
        } else if ((cx_eq(x.basis, "adequacy") || cx_eq(x.basis, "dpf")) && !cx_relied_decision(c, t)) {
            no_decision(c, fs, &x);
        } else if (!cx_eq(regime, "uk") && (cx_eq(x.basis, "uk_idta") || cx_eq(x.basis, "uk_addendum"))) {
            bool ch = cx_eq(regime, "ch");
            cx_add_xfer(fs, "no_valid_basis", SEV_CRITICAL, &x,
                cx_fmt("Die Übermittlung von %s nach %s fällt unter %s, erfolgt aber auf Grundlage %s, eines Instruments "
                    "der UK GDPR, das dafür keine geeignete Garantie ist (%s).",
                    x.name, x.dest, ch ? "das Schweizer DSG" : "die DSGVO", basis_label(x.basis, true),
                    ch ? GROUND_CH_DE : GROUND_BASIS_DE),
                cx_fmt("The transfer of %s to %s falls under the %s but relies on %s, an instrument of the UK GDPR that "
                    "is no appropriate safeguard there (%s).",
                    x.name, x.dest, ch ? "Swiss FADP" : "EU GDPR", basis_label(x.basis, false),
                    ch ? GROUND_CH : GROUND_BASIS),
                ch ? GROUND_CH : GROUND_BASIS, cx_get_date(t, "valid_from"));
        } else if (cx_eq(regime, "uk") && cx_eq(x.basis, "scc_2021")) {
            cx_add_xfer(fs, "no_valid_basis", SEV_CRITICAL, &x,
                cx_fmt("Die Übermittlung von %s nach %s fällt unter die UK GDPR; die EU-Standardvertragsklauseln 2021 "
                    "gelten dafür nur zusammen mit dem UK-Addendum (Grundlage „uk_addendum“) oder an ihrer Stelle das "
                    "IDTA (" GROUND_UK_DE ").",
                    x.name, x.dest),
                cx_fmt("The transfer of %s to %s falls under the UK GDPR; the EU SCCs 2021 are valid for it only with the "
                    "UK Addendum (basis \"uk_addendum\"), or the IDTA instead (" GROUND_UK ").",
                    x.name, x.dest),
                GROUND_UK, cx_get_date(t, "valid_from"));
        } else if (until && date_to_days(until) < c->today) {
            cx_days_str(date_to_days(until) + 1, since);
            cx_date_de(until, de1);
            cx_add_xfer(fs, "no_valid_basis", SEV_CRITICAL, &x,
                cx_fmt("Die Übermittlung von %s nach %s war nur bis %s gültig; seitdem fehlt eine gültige "
                    "Rechtsgrundlage (%s).",
                    x.name, x.dest, de1, g_de),
                cx_fmt("The transfer of %s to %s was valid only until %s; since then it has no valid basis (%s).",
                    x.name, x.dest, until, g),
                g, since);
        }
    }
    locations_unrecorded(c, fs, false);
}

/* ---- rules 1b and 1c: a location with no transfer recorded ----------------
 * A non-EEA location of an active or proposed subprocessor with no transfer to
 * that country. Where the EU recognises the country as adequate for this
 * recipient (a full decision, or the DPF for a participant), the data may flow
 * lawfully and what is missing is the record (Art. 30): transfer_not_recorded.
 * Anywhere else (a partial decision whose scope the registry cannot tell
 * without a transfer included) nothing shows a basis: no_valid_basis. */

static bool location_adequate(const ctx *c, const cJSON *sp, const char *cc)
{
    const cJSON *d = cx_eu_decision(c, cc);
    if (!d) return false;
    const char *cond = json_get_str(d, "condition");
    return cx_eq(cond, "dpf_participation") ? dpf_covers(sp, "eu") : !cx_eq(cond, "recipient_in_scope");
}

static void locations_unrecorded(const ctx *c, findings *fs, bool adequate)
{
    const cJSON *sp;
    cJSON_ArrayForEach(sp, c->in->subprocessors)
    {
        const char *spid = json_get_str(sp, "id");
        const char *status = json_get_str(sp, "status");
        if (!spid || !(cx_eq(status, "active") || cx_eq(status, "proposed"))) continue;
        const cJSON *locs = json_get(sp, "locations"), *l;
        const char *seen[64];
        size_t nseen = 0;
        cJSON_ArrayForEach(l, locs)
        {
            const char *cc = json_get_str(l, "country");
            if (!cc || cx_is_eea(c, cc)) continue;
            bool dup = false;
            for (size_t i = 0; i < nseen; i++) dup = dup || cx_eq(seen[i], cc);
            if (dup) continue;
            if (nseen < sizeof seen / sizeof seen[0]) seen[nseen++] = cc;
            bool covered = false;
            const json_index_entry *e;
            for (size_t k = json_index_range(&c->transfers_by_sp, spid, &e); k--; e++)
                covered = covered || cx_str_is(e->item, "destination_country", cc);
            if (covered || location_adequate(c, sp, cc) != adequate) continue;
            const char *name = cx_sp_name(sp, spid);
            const char *st_de = cx_eq(status, "active") ? "aktiv" : "vorgeschlagen";
            if (adequate)
                cx_add(fs, "transfer_not_recorded", SEV_MEDIUM, "subprocessor", spid, spid,
                    cx_fmt("%s (Status „%s“) verarbeitet Daten in %s, außerhalb des EWR; ein Angemessenheitsbeschluss "
                        "erfasst das, aber die Übermittlung nach %s ist nicht im Verzeichnis erfasst (" GROUND_RECORDS_DE
                        ").",
                        name, st_de, cc, cc),
                    cx_fmt("%s (status %s) processes data in %s, outside the EEA; an adequacy decision covers it, but the "
                        "transfer to %s is not recorded (" GROUND_RECORDS ").",
                        name, status, cc, cc),
                    GROUND_RECORDS, NULL);
            else
                cx_add(fs, "no_valid_basis", SEV_CRITICAL, "subprocessor", spid, spid,
                    cx_fmt("%s (Status „%s“) verarbeitet Daten in %s, außerhalb des EWR, aber für %s ist keine "
                        "Übermittlung mit Rechtsgrundlage erfasst (" GROUND_BASIS_DE ").",
                        name, st_de, cc, cc),
                    cx_fmt("%s (status %s) processes data in %s, outside the EEA, but no transfer with a legal basis is "
                        "recorded for %s (" GROUND_BASIS ").",
                        name, status, cc, cc),
                    GROUND_BASIS, NULL);
        }
    }
}

void cx_rule_transfer_not_recorded(const ctx *c, findings *fs)
{
    locations_unrecorded(c, fs, true);
}

/* ---- rule 1d: derogation_systematic ---------------------------------------
 * Art. 49 derogations are for occasional, non-repetitive transfers (EDPB
 * Guidelines 2/2018, 2.1): hosting, storage or ongoing remote access in the
 * destination is systematic by nature and needs Art. 45 or 46. Seen from the
 * subprocessor: a location there in such a role, or a hosting or RMM service. */

static bool systematic_use(const xfer *x, const char **en, const char **de)
{
    static const char *const ROLES[][3] = {
        {"hosting", "hosts the data there", "hostet die Daten dort"},
        {"backup", "stores backups there", "speichert dort Sicherungen"},
        {"remote_access", "has ongoing remote access from there", "hat von dort laufenden Fernzugriff"},
    };
    static const char *const CATEGORIES[][3] = {
        {"hosting", "is a hosting provider", "ist ein Hosting-Anbieter"},
        {"rmm", "provides remote monitoring and management (ongoing remote access)",
         "erbringt Fernüberwachung und -wartung (laufender Fernzugriff)"},
    };
    const cJSON *l, *locs = x->sp ? json_get(x->sp, "locations") : NULL;
    cJSON_ArrayForEach(l, locs)
    {
        if (!cx_str_is(l, "country", x->dest)) continue;
        for (size_t i = 0; i < sizeof ROLES / sizeof ROLES[0]; i++)
            if (cx_str_is(l, "role", ROLES[i][0])) return *en = ROLES[i][1], *de = ROLES[i][2], true;
    }
    for (size_t i = 0; x->sp && i < sizeof CATEGORIES / sizeof CATEGORIES[0]; i++)
        if (cx_str_is(x->sp, "category", CATEGORIES[i][0])) return *en = CATEGORIES[i][1], *de = CATEGORIES[i][2], true;
    return false;
}

void cx_rule_derogation_systematic(const ctx *c, findings *fs)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        const char *en, *de;
        if (!cx_load_xfer(c, t, &x) || !cx_eq(x.basis, "art49") || !systematic_use(&x, &en, &de)) continue;
        const char *letter = json_get_str(t, "art49_derogation");
        if (!letter) letter = "?";
        const char *g = cx_ground(x.regime, G_DEROGATION, false);
        cx_add_xfer(fs, "derogation_systematic", SEV_CRITICAL, &x,
            cx_fmt("Die Übermittlung von %s nach %s stützt sich auf eine Ausnahme für bestimmte Fälle (Buchstabe %s), "
                "doch %s %s: eine systematische, wiederholte Übermittlung. Ausnahmen tragen nur gelegentliche "
                "Übermittlungen; nötig ist ein Angemessenheitsbeschluss oder eine geeignete Garantie (%s).",
                x.name, x.dest, letter, x.name, de, cx_ground(x.regime, G_DEROGATION, true)),
            cx_fmt("The transfer of %s to %s relies on a derogation for specific situations (letter %s), but %s %s: "
                "a systematic, repeated transfer. Derogations cover only occasional transfers; it needs an adequacy "
                "decision or appropriate safeguards (%s).",
                x.name, x.dest, letter, x.name, en, g),
            g, cx_get_date(t, "valid_from"));
    }
}

/* ---- rule 2: partial_adequacy -------------------------------------------- */

/* Does the transfer meet the condition of a partial decision (DPF
 * participation under the decision's regime, recipient within scope)? True for
 * a full decision. */
bool cx_condition_met(const xfer *x, const cJSON *t, const cJSON *d)
{
    const char *cond = json_get_str(d, "condition");
    if (cx_eq(cond, "dpf_participation")) return dpf_covers(x->sp, cx_regime_of(d));
    if (cx_eq(cond, "recipient_in_scope")) return cJSON_IsTrue(json_get(t, "recipient_in_adequacy_scope"));
    return true;
}

/* A DPF participant whose listing was never checked, last checked more than a
 * year ago (they re-certify yearly), or checked before the regime's decision
 * counted (it could not show that part): nothing proves the transfer lawful. */
static void dpf_recheck(const ctx *c, findings *fs, const xfer *x, const cJSON *d, const char *act, const char *ade)
{
    const cJSON *dpf = x->sp ? json_get(x->sp, "dpf") : NULL;
    const char *checked = cx_get_date(dpf, "verified_on"), *from = cx_decision_since(d);
    const char *g = cx_ground(x->regime, G_ADEQUACY, false), *g_de = cx_ground(x->regime, G_ADEQUACY, true);
    if (!checked) {
        cx_add_xfer(fs, "partial_adequacy", SEV_HIGH, x,
            cx_fmt("Die Teilnahme von %s am Data Privacy Framework ist erfasst, aber nie geprüft worden (kein "
                "Prüfdatum); die DPF-Liste ist zu prüfen (%s, %s).",
                x->name, ade, g_de),
            cx_fmt("The Data Privacy Framework participation of %s is recorded but was never verified (no "
                "verification date); the DPF list needs checking (%s, %s).",
                x->name, act, g),
            g, NULL);
        return;
    }
    int64_t day = date_to_days(checked), stale = cx_plus_one_year(checked);
    bool before_decision = from && day < date_to_days(from);
    if (!before_decision && stale >= c->today) return;
    char d1[16], since[16];
    cx_date_de(checked, d1);
    if (!before_decision) cx_days_str(stale + 1, since); /* the first day it is more than a year old */
    cx_add_xfer(fs, "partial_adequacy", SEV_HIGH, x,
             cx_fmt("Die Teilnahme von %s am Data Privacy Framework wurde zuletzt am %s geprüft%s; Organisationen "
                 "zertifizieren sich jährlich neu, die Liste ist erneut zu prüfen (%s, %s).",
                 x->name, d1, before_decision ? ", bevor der Beschluss galt" : "", ade, g_de),
             cx_fmt("The Data Privacy Framework participation of %s was last verified on %s%s; organisations re-certify "
                 "every year, so the DPF list needs checking again (%s, %s).",
                 x->name, checked, before_decision ? ", before the decision applied" : "", act, g),
             g, before_decision ? NULL : since);
}

const cJSON *cx_adequacy_relied(const ctx *c, const cJSON *t, xfer *x)
{
    if (!cx_load_xfer(c, t, x)) return NULL;
    if (!cx_eq(x->basis, "adequacy") && !cx_eq(x->basis, "dpf")) return NULL;
    return cx_relied_decision(c, t);
}

void cx_rule_partial_adequacy(const ctx *c, findings *fs)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        const cJSON *d = cx_adequacy_relied(c, t, &x);
        if (!d) continue; /* another basis, or no decision in force: no_valid_basis */
        bool dpf = cx_eq(json_get_str(d, "condition"), "dpf_participation");
        const char *act = cx_decision_act(d);
        const char *g = cx_ground(x.regime, G_ADEQUACY, false), *g_de = cx_ground(x.regime, G_ADEQUACY, true);
        char *ade = cx_act_de(act);
        if (cx_condition_met(&x, t, d)) {
            if (dpf) dpf_recheck(c, fs, &x, d, act, ade);
        } else if (dpf) {
            cx_add_xfer(fs, "partial_adequacy", SEV_CRITICAL, &x,
                cx_fmt("Die Übermittlung von %s nach %s stützt sich auf den Angemessenheitsbeschluss (%s), der nur "
                    "Organisationen erfasst, die unter %s zertifiziert sind; %s ist dafür nicht als Teilnehmer erfasst "
                    "(%s).",
                    x.name, x.dest, ade, dpf_label(x.regime, true), x.name, g_de),
                cx_fmt("The transfer of %s to %s relies on the adequacy decision (%s), which covers only organisations "
                    "certified under %s; %s is not recorded as participating in it (%s).",
                    x.name, x.dest, act, dpf_label(x.regime, false), x.name, g),
                g, NULL);
        } else {
            const char *note_de = cx_loc(d, "scope_note", "de"), *note_en = cx_loc(d, "scope_note", "en");
            cx_add_xfer(fs, "partial_adequacy", SEV_CRITICAL, &x,
                cx_fmt("Die Übermittlung von %s nach %s stützt sich auf den teilweisen Angemessenheitsbeschluss (%s), "
                    "es ist aber nicht erfasst, dass der Empfänger in dessen Geltungsbereich fällt%s%s (%s).",
                    x.name, x.dest, ade, note_de ? "; Geltungsbereich: " : "", note_de ? note_de : "", g_de),
                cx_fmt("The transfer of %s to %s relies on the partial adequacy decision (%s), but the recipient is not "
                    "recorded as within its scope%s%s (%s).",
                    x.name, x.dest, act, note_en ? "; scope: " : "", note_en ? note_en : "", g),
                g, NULL);
        }
        free(ade);
    }
}

/* ---- rule 3: repealed_scc ------------------------------------------------ */

static const cJSON *scc_set_for(const ctx *c, const char *basis, const char *regime)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, c->in->scc_sets) if (cx_str_is(s, "basis", basis) && cx_str_is(s, "regime", regime)) return s;
    if (cx_eq(regime, "uk")) return json_find_by_id(c->in->scc_sets, "uk-legacy-eu-scc");
    if (!cx_eq(regime, "eu")) return scc_set_for(c, basis, "eu");
    return NULL;
}

void cx_rule_repealed_scc(const ctx *c, findings *fs)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        if (!cx_load_xfer(c, t, &x)) continue;
        if (!cx_eq(x.basis, "scc_2001") && !cx_eq(x.basis, "scc_2004") && !cx_eq(x.basis, "scc_2010")) continue;
        const char *regime = json_get_str(t, "regime");
        const cJSON *set = scc_set_for(c, x.basis, regime ? regime : "eu");
        bool uk = cx_eq(regime, "uk");
        const char *ground = uk ? GROUND_SCC_UK : GROUND_SCC, *ground_de = uk ? GROUND_SCC_UK_DE : GROUND_SCC_DE;
        if (!set) {
            /* the reference entry was deleted: every old set has lapsed anyway */
            cx_add_xfer(fs, "repealed_scc", SEV_CRITICAL, &x,
                cx_fmt("Die Übermittlung von %s nach %s stützt sich auf aufgehobene Standardvertragsklauseln "
                    "(Grundlage „%s“), die in den Referenzdaten fehlen; keine dieser Fassungen darf heute noch "
                    "verwendet werden (%s).",
                    x.name, x.dest, x.basis, ground_de),
                cx_fmt("The transfer of %s to %s relies on repealed SCCs (basis \"%s\") missing from the reference "
                    "data; none of these sets may be relied on today (%s).",
                    x.name, x.dest, x.basis, ground),
                ground, NULL);
            continue;
        }
        const char *act = json_get_str(set, "legal_act");
        if (!act) act = x.basis;
        const char *until = cx_get_date(set, "valid_until");
        const char *cutoff = cx_get_date(set, "new_contracts_until");
        const char *signed_on = cx_get_date(t, "contract_signed_on");
        bool late = signed_on && cutoff && date_to_days(signed_on) > date_to_days(cutoff);
        bool lapsed = until && c->today > date_to_days(until);
        char since[16], d1[16], d2[16];
        char *ade = cx_act_de(act);
        if (late && (!lapsed || date_to_days(signed_on) <= date_to_days(until) + 1)) {
            cx_date_de(signed_on, d1);
            cx_date_de(cutoff, d2);
            cx_add_xfer(fs, "repealed_scc", SEV_CRITICAL, &x,
                cx_fmt("Der Vertrag für die Übermittlung von %s nach %s stützt sich auf die aufgehobenen "
                    "Standardvertragsklauseln (%s) und wurde am %s geschlossen, nach dem %s, dem letzten Tag, an dem "
                    "neue Verträge sie nutzen durften (%s).",
                    x.name, x.dest, ade, d1, d2, ground_de),
                cx_fmt("The contract for the transfer of %s to %s relies on the repealed SCCs (%s) and was signed on "
                    "%s, after %s, the last day new contracts could use them (%s).",
                    x.name, x.dest, act, signed_on, cutoff, ground),
                ground, signed_on);
        } else if (lapsed) {
            cx_days_str(date_to_days(until) + 1, since);
            cx_date_de(until, d1);
            cx_add_xfer(fs, "repealed_scc", SEV_CRITICAL, &x,
                cx_fmt("Die Übermittlung von %s nach %s stützt sich auf die aufgehobenen Standardvertragsklauseln "
                    "(%s), die nur bis %s verwendet werden durften (%s).",
                    x.name, x.dest, ade, d1, ground_de),
                cx_fmt("The transfer of %s to %s relies on the repealed SCCs (%s), which could be relied on only "
                    "until %s (%s).",
                    x.name, x.dest, act, until, ground),
                ground, since);
        }
        free(ade);
    }
}

/* ---- rule 4: wrong_scc_module -------------------------------------------- */

void cx_rule_wrong_scc_module(const ctx *c, findings *fs)
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
        if (!cx_load_xfer(c, t, &x)) continue;
        if (!cx_eq(x.basis, "scc_2021") && !cx_eq(x.basis, "ch_scc") && !cx_eq(x.basis, "uk_addendum")) continue;
        const char *sp_role = x.sp ? json_get_str(x.sp, "role") : NULL;
        bool processor = cx_eq(sp_role, "processor");
        int want = processor ? 2 : 3;
        const cJSON *m = json_get(t, "scc_module");
        int have = cJSON_IsNumber(m) ? m->valueint : 0;
        if (have == want) continue;
        char *have_en = have >= 1 && have <= 4 ? cx_fmt("SCC Module %d (%s)", have, MOD_EN[have])
                                                 : cx_fmt("no valid SCC module");
        char *have_de = have >= 1 && have <= 4 ? cx_fmt("SCC-Modul %d (%s)", have, MOD_DE[have])
                                                 : cx_fmt("kein gültiges SCC-Modul");
        cx_add_xfer(fs, "wrong_scc_module", SEV_HIGH, &x,
            cx_fmt("Die Übermittlung von %s nach %s verwendet %s, %s ist aber %s und braucht Modul %d (%s) "
                "(" GROUND_MODULE_DE ").",
                x.name, x.dest, have_de, x.name, processor ? "Auftragsverarbeiter" : "Unterauftragsverarbeiter",
                want, MOD_DE[want]),
            cx_fmt("The transfer of %s to %s uses %s, but %s acts as a %s and needs Module %d (%s) (" GROUND_MODULE ").",
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

void cx_rule_scc_clauses(const ctx *c, findings *fs)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        if (!cx_load_xfer(c, t, &x)) continue;
        bool ch = cx_eq(x.basis, "ch_scc");
        if (!cx_eq(x.basis, "scc_2021") && !ch) continue;
        const cJSON *m = json_get(t, "scc_module");
        if (!cJSON_IsNumber(m) || m->valueint < 1 || m->valueint > 3) continue;
        const cJSON *opts = json_get(t, "scc_options");
        static const char *const which[][4] = {
            {"governing_law", "17", "governing law", "das anwendbare Recht"},
            {"forum", "18", "forum", "den Gerichtsstand"},
        };
        for (size_t i = 0; i < 2; i++) {
            const char *cc = opts ? json_get_str(opts, which[i][0]) : NULL;
            if (!cc || cx_is_eea(c, cc) || (ch && cx_eq(cc, "CH"))) continue;
            cx_add_xfer(fs, "scc_clauses", SEV_HIGH, &x,
                cx_fmt("Die Übermittlung von %s nach %s verwendet Modul %d der Standardvertragsklauseln, wählt aber %s "
                    "in %s; Klausel %s verlangt für die Module 1–3 einen EU-Mitgliedstaat%s (" GROUND_CLAUSES_DE ").",
                    x.name, x.dest, m->valueint, which[i][3], cc, which[i][1], ch ? " oder die Schweiz" : ""),
                cx_fmt("The transfer of %s to %s uses Module %d of the SCCs but chooses %s as %s; Clause %s requires an "
                    "EU Member State for Modules 1–3%s (" GROUND_CLAUSES ").",
                    x.name, x.dest, m->valueint, cc, which[i][2], which[i][1], ch ? " or Switzerland" : ""),
                GROUND_CLAUSES, NULL);
        }
    }
}

/* ---- rule 5: tia_missing ------------------------------------------------- */

void cx_rule_tia_missing(const ctx *c, findings *fs)
{
    static const char *const NEEDS_TIA[] = {"scc_2021", "scc_2001", "scc_2004", "scc_2010",
                                            "uk_idta",  "uk_addendum", "ch_scc", "bcr"};
    const cJSON *t;
    cJSON_ArrayForEach(t, c->in->transfers)
    {
        xfer x;
        if (!cx_load_xfer(c, t, &x)) continue;
        bool needs = false;
        for (size_t i = 0; i < sizeof NEEDS_TIA / sizeof NEEDS_TIA[0]; i++) needs = needs || cx_eq(x.basis, NEEDS_TIA[i]);
        if (!needs) continue;
        const cJSON *tia = json_get(t, "tia");
        const char *performed = tia ? cx_get_date(tia, "performed_on") : NULL;
        if (!performed) {
            cx_add_xfer(fs, "tia_missing", SEV_HIGH, &x,
                cx_fmt("Für die Übermittlung von %s nach %s auf Grundlage %s liegt keine "
                    "Transfer-Folgenabschätzung (TIA) vor (" GROUND_TIA_DE ").",
                    x.name, x.dest, basis_label(x.basis, true)),
                cx_fmt("The transfer of %s to %s relies on %s but has no transfer impact assessment (" GROUND_TIA ").",
                    x.name, x.dest, basis_label(x.basis, false)),
                GROUND_TIA, NULL);
            continue;
        }
        int64_t stale = cx_plus_one_year(performed) + 1;
        if (stale > c->today) continue;
        char since[16], d1[16], d2[16];
        cx_days_str(stale, since);
        cx_date_de(performed, d1);
        cx_date_de(since, d2);
        cx_add_xfer(fs, "tia_missing", SEV_MEDIUM, &x,
            cx_fmt("Die Transfer-Folgenabschätzung (TIA) für die Übermittlung von %s nach %s wurde am %s durchgeführt "
                "und ist seit dem %s älter als 12 Monate (" GROUND_TIA_DE ").",
                x.name, x.dest, d1, d2),
            cx_fmt("The transfer impact assessment for the transfer of %s to %s was performed on %s and has been older "
                "than 12 months since %s (" GROUND_TIA ").",
                x.name, x.dest, performed, since),
            GROUND_TIA, since);
    }
}

