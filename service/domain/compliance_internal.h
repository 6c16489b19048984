/* compliance_internal.h: what the compliance files share (service/domain only).
 *   compliance.c            helpers, lookups in the reference law, findings, the
 *                           entry points (compliance_findings, compliance_expiring)
 *   compliance_transfers.c  the transfer rules: no_valid_basis, transfer_not_recorded,
 *                           derogation_systematic, partial_adequacy, repealed_scc,
 *                           wrong_scc_module, scc_clauses, tia_missing
 *   compliance_dues.c       no_active_dpa, the dates due (expiring and the report),
 *                           adequacy_at_risk
 *   compliance_notice.c     the publication rules: notice_period, public_list_drift, override_notice
 * The legal grounds below are the one table of legal texts: each finding names
 * its ground in English (legal_ground) and both languages in its message. Every
 * string a cx_ function returns belongs to its input, except where it says
 * "caller frees" (cx_fmt, cx_act_de, cx_href_of). */
#ifndef SUBREG_COMPLIANCE_INTERNAL_H
#define SUBREG_COMPLIANCE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "subreg/compliance.h"
#include "subreg/json.h"

enum { SEV_CRITICAL, SEV_HIGH, SEV_MEDIUM, SEV_LOW, SEV_INFO };

/* ---- the legal grounds (English, German) ---------------------------------- */
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
/* each regime's own law (cx_ground picks by regime) */
#define GROUND_BASIS_UK "UK GDPR Art. 44–46"
#define GROUND_BASIS_UK_DE "Art. 44–46 UK GDPR"
#define GROUND_ADEQUACY_UK "UK GDPR Art. 45; DPA 2018 s. 17A, Sch. 21 para. 4–5"
#define GROUND_ADEQUACY_UK_DE "Art. 45 UK GDPR; s. 17A, Sch. 21 Abs. 4–5 DPA 2018"
#define GROUND_ADEQUACY_CH "Swiss FADP Art. 16(1); DPO Art. 8, Annex 1"
#define GROUND_ADEQUACY_CH_DE "Art. 16 Abs. 1 DSG; Art. 8 und Anhang 1 DSV (Schweiz)"
#define GROUND_DEROGATION "GDPR Art. 49(1); EDPB Guidelines 2/2018"
#define GROUND_DEROGATION_DE "Art. 49 Abs. 1 DSGVO; EDSA-Leitlinien 2/2018"
#define GROUND_DEROGATION_UK "UK GDPR Art. 49(1); EDPB Guidelines 2/2018"
#define GROUND_DEROGATION_UK_DE "Art. 49 Abs. 1 UK GDPR; EDSA-Leitlinien 2/2018"
#define GROUND_DEROGATION_CH "Swiss FADP Art. 17"
#define GROUND_DEROGATION_CH_DE "Art. 17 DSG (Schweiz)"
#define GROUND_RECORDS "GDPR Art. 30(1)(e), 30(2)(c)"
#define GROUND_RECORDS_DE "Art. 30 Abs. 1 lit. e, Abs. 2 lit. c DSGVO"

typedef enum { G_BASIS, G_ADEQUACY, G_DEROGATION } cx_ground_kind;

/* ---- shared state ------------------------------------------------------------ */
typedef struct {
    const compliance_input *in;
    int64_t today;
    int horizon;
    /* lookups for the rules' loops, built once per run (O(n log n) in all) */
    json_index sps, countries;            /* by id */
    json_index agreements_by_sp, transfers_by_sp; /* by subprocessor_id */
} ctx;

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

/* Everything the transfer rules need about one transfer. */
typedef struct {
    const cJSON *t;
    const char *id, *spid, *dest, *basis, *name, *regime;
    const cJSON *sp;
} xfer;

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

/* ---- the functions the rule files share ------------------------------------ */
char *cx_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
bool cx_eq(const char *a, const char *b);
bool cx_str_is(const cJSON *doc, const char *name, const char *value);
const char *cx_get_date(const cJSON *doc, const char *name);
void cx_days_str(int64_t days, char out[16]);
void cx_date_de(const char *iso, char out[16]);
const cJSON *cx_find_sp(const ctx *c, const char *id);
int64_t cx_plus_one_year(const char *iso);
const char *cx_regime_of(const cJSON *doc);
const char *cx_regime_home(const char *regime);
const char *cx_ground(const char *regime, cx_ground_kind kind, bool de);
void cx_decision_gap(const ctx *c, const char *country, const char *regime, int64_t *lapsed, int64_t *starts);
const cJSON *cx_relied_decision(const ctx *c, const cJSON *t);
const cJSON *cx_eu_decision(const ctx *c, const char *country);
const char *cx_decision_since(const cJSON *d);
/* A transfer relying on an adequacy decision (basis adequacy or dpf, loaded into
 * *x) and the decision in force it relies on; NULL for any other transfer, or
 * when none is in force. */
const cJSON *cx_adequacy_relied(const ctx *c, const cJSON *t, xfer *x);
bool cx_condition_met(const xfer *x, const cJSON *t, const cJSON *d);
const char *cx_sp_name(const cJSON *sp, const char *fallback);
bool cx_sp_retired(const cJSON *sp);
bool cx_is_eea(const ctx *c, const char *code);
const char *cx_decision_act(const cJSON *d);
char *cx_act_de(const char *act);
const char *cx_loc(const cJSON *doc, const char *name, const char *lang);
char *cx_href_of(const char *etype, const char *eid);
void cx_add(findings *fs, const char *rule, int sev, const char *etype, const char *eid, const char *spid, char *de,
            char *en, const char *ground, const char *since);
bool cx_load_xfer(const ctx *c, const cJSON *t, xfer *x);
void cx_add_xfer(findings *fs, const char *rule, int sev, const xfer *x, char *de, char *en, const char *ground,
                 const char *since);
void cx_rule_no_valid_basis(const ctx *c, findings *fs);
void cx_rule_transfer_not_recorded(const ctx *c, findings *fs);
void cx_rule_derogation_systematic(const ctx *c, findings *fs);
void cx_rule_partial_adequacy(const ctx *c, findings *fs);
void cx_rule_repealed_scc(const ctx *c, findings *fs);
void cx_rule_wrong_scc_module(const ctx *c, findings *fs);
void cx_rule_scc_clauses(const ctx *c, findings *fs);
void cx_rule_tia_missing(const ctx *c, findings *fs);
void cx_rule_no_active_dpa(const ctx *c, findings *fs);
void cx_dues_free(dues *ds);
void cx_collect_dues(const ctx *c, int within, dues *ds);
void cx_rule_expiring(const ctx *c, findings *fs);
void cx_rule_adequacy_at_risk(const ctx *c, findings *fs);
void cx_rule_notice_period(const ctx *c, findings *fs, int64_t now);
void cx_rule_public_list_drift(const ctx *c, findings *fs, int64_t now);
void cx_rule_override_notice(const ctx *c, findings *fs, int64_t now);

#endif
