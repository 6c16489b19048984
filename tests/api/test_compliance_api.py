"""Compliance findings and the expiry report (service/api/compliance.c,
service/domain/compliance.c): computed per request from the registry and the
reference law, so a finding appears and disappears with the data that causes it.

Every test filters by its own subprocessor (or entity ids): the shared server
holds everybody's data. Each test removes its subprocessors (and what refers to
them) when it ends (the `sps` fixture), so findings stay per test."""

import datetime as dt

import pytest

from helpers import DELETE, assert_problem, assert_status, purge_subprocessor, sp_body, unique_name

FINDINGS = "/v1/compliance/findings"
EXPIRING = "/v1/reports/expiring"


def server_today(api):
    resp = api.get(FINDINGS, params={"rule": "public_list_drift", "subprocessor_id": "sp_none"})
    assert_status(resp, 200)
    return dt.date.fromisoformat(resp.json()["computed_on"])


def day(today, offset):
    return (today + dt.timedelta(days=offset)).isoformat()


def findings(api, **params):
    resp = api.get(FINDINGS, params=params)
    assert_status(resp, 200)
    body = resp.json()
    assert isinstance(body["items"], list)
    assert body["count"] == len(body["items"])
    dt.date.fromisoformat(body["computed_on"])
    return body["items"]


def for_entity(items, entity_id, rule=None):
    return [f for f in items if f["entity_id"] == entity_id and (rule is None or f["rule"] == rule)]


def check_shape(f):
    assert f["severity"] in ("critical", "high", "medium", "low", "info")
    assert f["entity_type"] in ("transfer", "subprocessor", "agreement", "tom_document",
                                "publication")
    base = {"transfer": "/v1/transfers/", "subprocessor": "/v1/subprocessors/",
            "agreement": "/v1/agreements/", "tom_document": "/v1/tom-documents/",
            "publication": "/v1/publications/"}[f["entity_type"]]
    assert f["href"] == base + f["entity_id"], f
    assert isinstance(f["message"]["de"], str) and f["message"]["de"].strip(), f
    assert isinstance(f["message"]["en"], str) and f["message"]["en"].strip(), f
    assert isinstance(f["legal_ground"], str) and f["legal_ground"], f


def new_sp(api, **kw):
    defaults = dict(legal_name=unique_name("Compliance SP"), status="active", role="subprocessor",
                    hq_country="US", locations=[{"country": "US", "role": "hosting"}],
                    dpf={"participating": True, "verified_on": dt.date.today().isoformat()},
                    certifications=[], next_review_on="2030-01-15",
                    last_review_on="2026-01-15")
    defaults.update(kw)
    return api.create_sp(sp_body(**defaults))


@pytest.fixture
def sps(admin):
    """new_sp() whose subprocessors are purged after the test."""
    made = []

    def make(**kw):
        sp = new_sp(admin, **kw)
        made.append(sp["id"])
        return sp

    yield make
    for sp_id in made:
        purge_subprocessor(admin, sp_id)


def patch_ok(api, path, patch):
    cur = api.get(path)
    assert_status(cur, 200)
    resp = api.patch(path, patch, if_match=cur.json()["version"])
    assert_status(resp, 200)
    return resp.json()


# ---------------------------------------------------------------------------
# the Must-show: a transfer's findings follow its data


def test_transfer_findings_follow_the_data(admin, sps):
    sp = sps()
    sp_id, sp_path = sp["id"], f"/v1/subprocessors/{sp['id']}"
    resp = admin.post("/v1/transfers", {"subprocessor_id": sp_id, "destination_country": "US",
                                        "basis": "none"})
    assert_status(resp, 201)
    tr = resp.json()
    tr_id, tr_path = tr["id"], f"/v1/transfers/{tr['id']}"

    # basis "none" to a third country: critical no_valid_basis for the transfer
    items = findings(admin, rule="no_valid_basis", subprocessor_id=sp_id)
    assert all(f["rule"] == "no_valid_basis" and f["subprocessor_id"] == sp_id for f in items)
    mine = for_entity(items, tr_id)
    assert len(mine) == 1, items
    f = mine[0]
    check_shape(f)
    assert f["severity"] == "critical"
    assert f["entity_type"] == "transfer"
    assert f["href"] == f"/v1/transfers/{tr_id}"
    assert "GDPR Art. 44" in f["legal_ground"]
    assert sp["legal_name"] in f["message"]["en"] and "US" in f["message"]["en"]
    # the US location is covered by the transfer: no finding for the subprocessor itself
    assert for_entity(items, sp_id) == []

    # DPF with a participating recipient: the basis is valid, the condition met
    patch_ok(admin, tr_path, {"basis": "dpf"})
    items = findings(admin, subprocessor_id=sp_id)
    assert for_entity(items, tr_id, "no_valid_basis") == []
    assert for_entity(items, tr_id, "partial_adequacy") == []
    # the DPF decision is under challenge (seeded reference data): informational
    risk = for_entity(items, tr_id, "adequacy_at_risk")
    assert len(risk) == 1 and risk[0]["severity"] == "info", items
    check_shape(risk[0])

    # the recipient leaves the DPF: partial adequacy no longer covers the transfer
    patch_ok(admin, sp_path, {"dpf": {"participating": False}})
    items = findings(admin, subprocessor_id=sp_id)
    partial = for_entity(items, tr_id, "partial_adequacy")
    assert len(partial) == 1, items
    check_shape(partial[0])
    assert partial[0]["severity"] == "critical"
    assert partial[0]["entity_type"] == "transfer"
    assert for_entity(items, tr_id, "no_valid_basis") == []
    only = findings(admin, rule="partial_adequacy", subprocessor_id=sp_id)
    assert [x["entity_id"] for x in only] == [tr_id]

    # SCCs 2021 with Module 2 for a subprocessor (needs Module 3)
    patch_ok(admin, tr_path, {"basis": "scc_2021", "scc_module": 2})
    items = findings(admin, subprocessor_id=sp_id)
    wrong = for_entity(items, tr_id, "wrong_scc_module")
    assert len(wrong) == 1, items
    check_shape(wrong[0])
    assert wrong[0]["severity"] == "high"
    assert for_entity(items, tr_id, "partial_adequacy") == []
    assert for_entity(items, tr_id, "adequacy_at_risk") == []

    # Module 3 without a TIA: the module is right, the TIA is missing
    patch_ok(admin, tr_path, {"scc_module": 3})
    items = findings(admin, subprocessor_id=sp_id)
    assert for_entity(items, tr_id, "wrong_scc_module") == []
    tia = for_entity(items, tr_id, "tia_missing")
    assert len(tia) == 1, items
    check_shape(tia[0])
    assert tia[0]["severity"] == "high"
    assert "Schrems II" in tia[0]["legal_ground"]

    # a TIA performed today: nothing left for the transfer
    today = server_today(admin)
    patch_ok(admin, tr_path, {"tia": {"performed_on": today.isoformat(), "risk": "low"}})
    items = findings(admin, subprocessor_id=sp_id)
    assert for_entity(items, tr_id, "tia_missing") == []
    assert for_entity(items, tr_id) == [], items

    # a TIA older than 12 months is stale again (medium)
    patch_ok(admin, tr_path, {"tia": {"performed_on": day(today, -400)}})
    stale = for_entity(findings(admin, rule="tia_missing", subprocessor_id=sp_id), tr_id)
    assert len(stale) == 1 and stale[0]["severity"] == "medium", stale
    assert "since" in stale[0]


def test_processor_needs_module_2(admin, sps):
    sp = sps(role="processor")
    tr = admin.post("/v1/transfers", {
        "subprocessor_id": sp["id"], "destination_country": "US", "basis": "scc_2021",
        "scc_module": 3, "tia": {"performed_on": "2026-01-01", "risk": "low"}}).json()
    wrong = findings(admin, rule="wrong_scc_module", subprocessor_id=sp["id"])
    assert [f["entity_id"] for f in wrong] == [tr["id"]]
    patch_ok(admin, f"/v1/transfers/{tr['id']}", {"scc_module": 2})
    assert findings(admin, rule="wrong_scc_module", subprocessor_id=sp["id"]) == []


def test_transfer_inside_the_eea_needs_no_basis(admin, sps):
    sp = sps(locations=[{"country": "NO", "role": "hosting"}], hq_country="NO")
    tr = admin.post("/v1/transfers", {"subprocessor_id": sp["id"], "destination_country": "NO",
                                      "basis": "none"}).json()
    items = findings(admin, subprocessor_id=sp["id"])
    assert for_entity(items, tr["id"]) == [], items


def test_location_without_transfer(admin, sps):
    sp = sps(locations=[{"country": "IN", "role": "support"},
                                  {"country": "DE", "role": "hosting"}])
    items = findings(admin, rule="no_valid_basis", subprocessor_id=sp["id"])
    assert len(items) == 1, items
    f = items[0]
    check_shape(f)
    assert f["entity_type"] == "subprocessor" and f["entity_id"] == sp["id"]
    assert f["severity"] == "critical" and "IN" in f["message"]["en"]
    admin.post("/v1/transfers", {"subprocessor_id": sp["id"], "destination_country": "IN",
                                 "basis": "scc_2021", "scc_module": 3,
                                 "tia": {"performed_on": "2026-01-01", "risk": "low"}})
    assert findings(admin, rule="no_valid_basis", subprocessor_id=sp["id"]) == []


def test_retired_subprocessor_has_no_transfer_findings(admin, sps):
    sp = sps()
    tr = admin.post("/v1/transfers", {"subprocessor_id": sp["id"], "destination_country": "US",
                                      "basis": "none"}).json()
    assert for_entity(findings(admin, subprocessor_id=sp["id"]), tr["id"])
    patch_ok(admin, f"/v1/subprocessors/{sp['id']}", {"status": "retired"})
    items = findings(admin, subprocessor_id=sp["id"])
    assert for_entity(items, tr["id"]) == [], items
    assert for_entity(items, sp["id"], "no_active_dpa") == []


# ---------------------------------------------------------------------------
# no_active_dpa


def test_no_active_dpa(admin, sps):
    sp = sps(locations=[{"country": "DE", "role": "hosting"}], hq_country="DE")
    sp_id = sp["id"]
    items = findings(admin, rule="no_active_dpa", subprocessor_id=sp_id)
    assert len(items) == 1, items
    f = items[0]
    check_shape(f)
    assert f["entity_type"] == "subprocessor" and f["entity_id"] == sp_id
    assert f["href"] == f"/v1/subprocessors/{sp_id}"
    assert f["severity"] == "high" and "Art. 28" in f["legal_ground"]

    # a draft DPA, or an active MSA, is not enough
    draft = admin.post("/v1/agreements", {"subprocessor_id": sp_id, "type": "dpa",
                                          "title": "AVV (Entwurf)"}).json()
    assert_status(admin.post("/v1/agreements", {
        "subprocessor_id": sp_id, "type": "msa", "title": "MSA", "status": "active",
        "signed_on": "2026-01-02"}), 201)
    assert len(findings(admin, rule="no_active_dpa", subprocessor_id=sp_id)) == 1

    # signing the DPA makes it active: the finding is gone
    patch_ok(admin, f"/v1/agreements/{draft['id']}", {"status": "active",
                                                      "signed_on": "2026-01-05"})
    assert findings(admin, rule="no_active_dpa", subprocessor_id=sp_id) == []


def test_no_active_dpa_after_expiry(admin, sps):
    today = server_today(admin)
    sp = sps(locations=[{"country": "DE", "role": "hosting"}], hq_country="DE")
    resp = admin.post("/v1/agreements", {
        "subprocessor_id": sp["id"], "type": "dpa", "title": "AVV 2024", "status": "active",
        "signed_on": day(today, -700), "expires_on": day(today, -1)})
    assert_status(resp, 201)
    items = findings(admin, rule="no_active_dpa", subprocessor_id=sp["id"])
    assert len(items) == 1, items
    assert items[0]["since"] == today.isoformat()
    # an active DPA added later settles it
    assert_status(admin.post("/v1/agreements", {
        "subprocessor_id": sp["id"], "type": "dpa", "title": "AVV 2026", "status": "active",
        "signed_on": day(today, -1)}), 201)
    assert findings(admin, rule="no_active_dpa", subprocessor_id=sp["id"]) == []


def test_proposed_subprocessor_needs_no_dpa_yet(admin, sps):
    sp = sps(status="proposed", locations=[{"country": "DE", "role": "hosting"}])
    assert findings(admin, rule="no_active_dpa", subprocessor_id=sp["id"]) == []


# ---------------------------------------------------------------------------
# filters and errors


def test_severity_filter(admin, sps):
    sp = sps()
    tr = admin.post("/v1/transfers", {"subprocessor_id": sp["id"], "destination_country": "US",
                                      "basis": "none"}).json()
    every = findings(admin, subprocessor_id=sp["id"])
    rules = {(f["rule"], f["severity"]) for f in every}
    assert ("no_valid_basis", "critical") in rules and ("no_active_dpa", "high") in rules, every
    crit = findings(admin, severity="critical", subprocessor_id=sp["id"])
    assert crit and all(f["severity"] == "critical" for f in crit)
    assert tr["id"] in [f["entity_id"] for f in crit]
    high = findings(admin, severity="high", subprocessor_id=sp["id"])
    assert high and all(f["severity"] == "high" for f in high)
    assert [f["rule"] for f in high] == ["no_active_dpa"]
    assert findings(admin, severity="low", subprocessor_id=sp["id"]) == []
    assert findings(admin, severity="high", rule="no_valid_basis", subprocessor_id=sp["id"]) == []
    # the unfiltered list is ordered by severity, most severe first
    order = ["critical", "high", "medium", "low", "info"]
    sev = [order.index(f["severity"]) for f in every]
    assert sev == sorted(sev)
    # every finding of this subprocessor names it
    assert all(f.get("subprocessor_id") == sp["id"] for f in every)
    # the unfiltered list holds them too
    allf = findings(admin)
    assert {f["entity_id"] for f in every} <= {f["entity_id"] for f in allf}
    for f in allf:
        check_shape(f)


@pytest.mark.parametrize("params", [
    {"rule": "no_such_rule"},
    {"rule": ""},
    {"severity": "urgent"},
    {"severity": "CRITICAL"},
    {"subprocessor_id": "not an id!"},
    {"within_days": "abc"},
    {"within_days": "-1"},
    {"within_days": "3651"},
    {"colour": "blue"},
])
def test_findings_bad_query(admin, params):
    assert_problem(admin.get(FINDINGS, params=params), 400, "malformed-request")


@pytest.mark.parametrize("params", [
    {"within_days": "abc"}, {"within_days": ""}, {"within_days": "-5"}, {"within_days": "1e3"},
    {"within_days": "3651"}, {"rule": "expiring"},
])
def test_expiring_bad_query(admin, params):
    assert_problem(admin.get(EXPIRING, params=params), 400, "malformed-request")


def test_access(server, reader, editor):
    for api in (reader, editor):
        assert_status(api.get(FINDINGS, params={"severity": "critical"}), 200)
        assert_status(api.get(EXPIRING), 200)
    anon = server.anon()
    for path in (FINDINGS, EXPIRING):
        resp = anon.get(path)
        assert_problem(resp, 401, "unauthorized")
        assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")
        bad = anon.get(path, token="not-a-jwt")
        assert_problem(bad, 401, "unauthorized")
    assert_problem(reader.post(FINDINGS, {}), 405, "method-not-allowed")


# ---------------------------------------------------------------------------
# the expiry report


def test_expiring_report(admin, sps):
    today = server_today(admin)
    sp = sps(locations=[{"country": "DE", "role": "hosting"}], hq_country="DE")
    soon = admin.post("/v1/agreements", {
        "subprocessor_id": sp["id"], "type": "dpa", "title": "AVV bald", "status": "active",
        "signed_on": day(today, -300), "expires_on": day(today, 10)}).json()
    late = admin.post("/v1/agreements", {
        "subprocessor_id": sp["id"], "type": "msa", "title": "MSA spät", "status": "active",
        "signed_on": day(today, -300), "expires_on": day(today, 200)}).json()
    draft = admin.post("/v1/agreements", {
        "subprocessor_id": sp["id"], "type": "nda", "title": "NDA Entwurf",
        "expires_on": day(today, 5)}).json()

    resp = admin.get(EXPIRING, params={"within_days": "90"})
    assert_status(resp, 200)
    body = resp.json()
    assert body["within_days"] == 90
    assert body["computed_on"] == today.isoformat()
    items = body["items"]
    dates = [it["date"] for it in items]
    assert dates == sorted(dates), "the report is not sorted by date"
    mine = [it for it in items if it["entity_id"] == soon["id"]]
    assert len(mine) == 1, items
    it = mine[0]
    assert it["kind"] == "agreement_expiry"
    assert it["date"] == day(today, 10)
    assert it["entity_type"] == "agreement"
    assert it["href"] == f"/v1/agreements/{soon['id']}"
    assert it["subprocessor_id"] == sp["id"]
    assert it["overdue"] is False
    assert isinstance(it["title"], str) and it["title"]
    ids = [x["entity_id"] for x in items]
    assert late["id"] not in ids
    assert draft["id"] not in ids  # only active agreements expire

    # the default horizon is 90 days
    resp = admin.get(EXPIRING)
    assert_status(resp, 200)
    assert resp.json()["within_days"] == 90
    assert soon["id"] in [x["entity_id"] for x in resp.json()["items"]]
    # a wider horizon reaches the later one, after the earlier one
    items = admin.get(EXPIRING, params={"within_days": "250"}).json()["items"]
    ids = [x["entity_id"] for x in items]
    assert soon["id"] in ids and late["id"] in ids
    assert ids.index(soon["id"]) < ids.index(late["id"])
    # a narrower one drops both
    ids = [x["entity_id"] for x in admin.get(EXPIRING, params={"within_days": "9"}).json()["items"]]
    assert soon["id"] not in ids
    # day 10 is included at within_days=10
    ids = [x["entity_id"] for x in admin.get(EXPIRING, params={"within_days": "10"}).json()["items"]]
    assert soon["id"] in ids

    # the same date shows up as an expiring finding within the findings horizon
    exp = findings(admin, rule="expiring", subprocessor_id=sp["id"])
    assert [f["entity_id"] for f in exp] == [soon["id"]], exp
    # a DPA that lapses within the horizon will soon leave the processing without a contract: high
    assert exp[0]["severity"] == "high" and exp[0]["since"] == day(today, 10)
    check_shape(exp[0])
    exp = findings(admin, rule="expiring", subprocessor_id=sp["id"], within_days="250")
    assert {f["entity_id"] for f in exp} == {soon["id"], late["id"]}


def test_expiring_report_overdue_and_other_kinds(admin, sps):
    today = server_today(admin)
    sp = sps(locations=[{"country": "US", "role": "hosting"}],
                certifications=[{"name": "ISO/IEC 27001", "valid_until": day(today, 20)}],
                next_review_on=day(today, 30), last_review_on=day(today, -335))
    ag = admin.post("/v1/agreements", {
        "subprocessor_id": sp["id"], "type": "dpa", "title": "AVV alt", "status": "active",
        "signed_on": day(today, -800), "expires_on": day(today, -3),
        "review_on": day(today, 40)}).json()
    tr = admin.post("/v1/transfers", {
        "subprocessor_id": sp["id"], "destination_country": "US", "basis": "scc_2021",
        "scc_module": 3, "valid_until": day(today, 60),
        "tia": {"performed_on": day(today, -100), "next_review_on": day(today, 50),
                "risk": "medium"}}).json()
    tom = admin.post("/v1/tom-documents", {
        "owner": "subprocessor", "subprocessor_id": sp["id"], "title": unique_name("TOM"),
        "version_label": "1", "status": "active", "effective_on": day(today, -100),
        "next_review_on": day(today, 70)}).json()

    items = admin.get(EXPIRING, params={"within_days": "90"}).json()["items"]
    mine = [it for it in items if it.get("subprocessor_id") == sp["id"]]
    got = [(it["kind"], it["entity_id"], it["date"], it["overdue"]) for it in mine]
    assert got == [
        ("agreement_expiry", ag["id"], day(today, -3), True),
        ("certification", sp["id"], day(today, 20), False),
        ("subprocessor_review", sp["id"], day(today, 30), False),
        ("agreement_review", ag["id"], day(today, 40), False),
        ("tia_review", tr["id"], day(today, 50), False),
        ("transfer_validity", tr["id"], day(today, 60), False),
        ("tom_review", tom["id"], day(today, 70), False),
    ], got
    hrefs = {it["kind"]: it["href"] for it in mine}
    assert hrefs["tom_review"] == f"/v1/tom-documents/{tom['id']}"
    assert hrefs["tia_review"] == f"/v1/transfers/{tr['id']}"
    assert hrefs["certification"] == f"/v1/subprocessors/{sp['id']}"

    # the lapsed DPA is high in the findings; the reviews and the certificate are record-keeping
    exp = findings(admin, rule="expiring", subprocessor_id=sp["id"])
    overdue = [f for f in exp if f["entity_id"] == ag["id"] and f["severity"] == "high"]
    assert len(overdue) == 1, exp
    assert {f["severity"] for f in exp if f["entity_id"] == sp["id"]} == {"medium"}, exp


# ---------------------------------------------------------------------------
# issue 11: each regime against its own list, derogations, record-keeping


def test_dpf_frameworks_validated(admin, sps):
    sp = sps()
    path = f"/v1/subprocessors/{sp['id']}"
    cur = admin.get(path).json()
    for dpf, where in (({"participating": False, "frameworks": ["eu-us"]}, "/dpf/frameworks"),
                       ({"participating": True, "frameworks": ["uk-extension"]}, "/dpf/frameworks"),
                       ({"participating": True, "frameworks": ["eu-us", "eu-us"]}, "/dpf/frameworks/1"),
                       ({"participating": True, "frameworks": ["us-eu"]}, "/dpf/frameworks/0")):
        resp = admin.patch(path, {"dpf": dpf}, if_match=cur["version"])
        assert_problem(resp, 400, "validation-error")
        assert where in [e["pointer"] for e in resp.json()["errors"]], resp.json()
    assert admin.get(path).json()["version"] == cur["version"]  # nothing changed
    doc = patch_ok(admin, path, {"dpf": {"frameworks": ["eu-us", "uk-extension", "swiss-us"]}})
    assert doc["dpf"]["frameworks"] == ["eu-us", "uk-extension", "swiss-us"]


def test_uk_transfer_needs_the_uk_extension(admin, sps):
    today = server_today(admin)
    sp = sps(dpf={"participating": True, "frameworks": ["eu-us"], "verified_on": today.isoformat()})
    sp_path = f"/v1/subprocessors/{sp['id']}"
    tr = admin.post("/v1/transfers", {"subprocessor_id": sp["id"], "destination_country": "US",
                                      "regime": "uk", "basis": "dpf"})
    assert_status(tr, 201)
    tr_id = tr.json()["id"]
    partial = for_entity(findings(admin, subprocessor_id=sp["id"]), tr_id, "partial_adequacy")
    assert len(partial) == 1 and partial[0]["severity"] == "critical", partial
    check_shape(partial[0])
    assert partial[0]["legal_ground"].startswith("UK GDPR Art. 45")
    assert "UK Extension" in partial[0]["message"]["en"]
    patch_ok(admin, sp_path, {"dpf": {"frameworks": ["eu-us", "uk-extension"]}})
    items = findings(admin, subprocessor_id=sp["id"])
    assert for_entity(items, tr_id, "partial_adequacy") == [] and for_entity(items, tr_id, "no_valid_basis") == []
    # a listing never verified is a finding of its own
    patch_ok(admin, sp_path, {"dpf": {"verified_on": None}})
    never = for_entity(findings(admin, subprocessor_id=sp["id"]), tr_id, "partial_adequacy")
    assert len(never) == 1 and never[0]["severity"] == "high" and "never verified" in never[0]["message"]["en"]


def test_derogation_for_hosting_is_a_finding(admin, sps):
    sp = sps(locations=[{"country": "IN", "role": "hosting"}], hq_country="IN", dpf=DELETE)
    tr = admin.post("/v1/transfers", {"subprocessor_id": sp["id"], "destination_country": "IN",
                                      "basis": "art49", "art49_derogation": "b"})
    assert_status(tr, 201)
    hits = for_entity(findings(admin, rule="derogation_systematic", subprocessor_id=sp["id"]), tr.json()["id"])
    assert len(hits) == 1 and hits[0]["severity"] == "critical", hits
    check_shape(hits[0])
    assert hits[0]["legal_ground"] == "GDPR Art. 49(1); EDPB Guidelines 2/2018"
    # occasional support access from there is what a derogation can carry
    patch_ok(admin, f"/v1/subprocessors/{sp['id']}", {"locations": [{"country": "IN", "role": "support"}],
                                                     "category": "other"})
    assert findings(admin, rule="derogation_systematic", subprocessor_id=sp["id"]) == []


def test_adequate_location_without_transfer_is_record_keeping(admin, sps):
    sp = sps(locations=[{"country": "CH", "role": "hosting"}, {"country": "IN", "role": "backup"}],
             hq_country="CH", dpf=DELETE)
    items = findings(admin, subprocessor_id=sp["id"])
    gap = for_entity(items, sp["id"], "transfer_not_recorded")
    assert len(gap) == 1 and gap[0]["severity"] == "medium" and "CH" in gap[0]["message"]["en"], items
    check_shape(gap[0])
    assert gap[0]["legal_ground"] == "GDPR Art. 30(1)(e), 30(2)(c)"
    nobasis = for_entity(items, sp["id"], "no_valid_basis")
    assert len(nobasis) == 1 and nobasis[0]["severity"] == "critical" and "IN" in nobasis[0]["message"]["en"]
