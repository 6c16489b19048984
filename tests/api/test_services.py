"""Services (issue 12): what the processor sells, which subprocessors serve each
service, which customers buy it — and, per publication, each service's view of
the change, the services it touches and the customers to tell. The notice
period counts only for customers whose list gains or changes a subprocessor;
publication.announced / .effective carry the scope (validated against the
`PublicationEvent` schema of openapi/openapi.yaml).

Publications are global to a database: this module runs on its own stack
(`hook_server`, with loopback webhook delivery).
"""

import datetime as dt
import uuid
from pathlib import Path

import jsonschema
import pytest
import referencing
import yaml

from helpers import (
    assert_problem,
    assert_status,
    assert_validation,
    describe,
    minimal_body,
    unique_name,
)
from receivers import verify

SVC = "/v1/services"
PUBS = "/v1/publications"
SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.yaml"


def in_days(days, seconds=0):
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days, seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_service(api, name, **kw):
    sid = f"{name}-{uuid.uuid4().hex[:6]}"
    body = {"id": sid, "name": {"de": f"Dienst {name}", "en": f"Service {name}"}, **kw}
    resp = api.post(SVC, body)
    assert_status(resp, 201)
    return resp.json()


def new_customer(api, services=None, **kw):
    body = {"name": unique_name("Kunde"), "notice_days": 30, "objection_days": 14, **kw}
    if services is not None:
        body["services"] = services
    resp = api.post("/v1/customers", body)
    assert_status(resp, 201)
    return resp.json()


def active_sp(api, services=None, **kw):
    kw.setdefault("legal_name", unique_name("Svc"))
    body = minimal_body(status="active", **kw)
    if services is not None:
        body["services"] = services
    return api.create_sp(body)


def publish(api, expect=201, **body):
    body.setdefault("summary", {"de": "Änderung", "en": "Change"})
    if body.get("override_notice"):
        body.setdefault("override_reason", {"de": "Abgleich", "en": "Sync"})
    resp = api.post(PUBS, body)
    assert resp.status_code == expect, describe(resp)
    return resp.json() if expect == 201 else resp


def sync(api):
    """Whatever is pending becomes a version in effect now."""
    resp = api.post(PUBS, {"summary": {"de": "Abgleich", "en": "Sync"}, "override_notice": True,
                           "override_reason": {"de": "Abgleich", "en": "Sync"}})
    assert resp.status_code in (201, 409), describe(resp)


def ids(items):
    return [i["id"] for i in items]


@pytest.fixture(scope="module")
def event_schema():
    spec = yaml.safe_load(SPEC.read_text())
    resource = referencing.Resource.from_contents(spec, default_specification=referencing.jsonschema.DRAFT202012)
    registry = referencing.Registry().with_resource("urn:subreg-openapi", resource)
    schema = {"$ref": "urn:subreg-openapi#/components/schemas/PublicationEvent"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


# ---------------------------------------------------------------------------
# the resource and its references


def test_service_resource_and_references(hook_server, hook_admin):
    editor = hook_server.api(roles=["editor"], sub="ed")
    reader = hook_server.api(roles=["reader"], sub="rea")
    body = {"id": f"hosting-{uuid.uuid4().hex[:6]}", "name": {"de": "Hosting", "en": "Hosting"},
            "description": {"de": "Rechenzentrum", "en": "Data centre"}, "sort": 20}
    assert_problem(reader.post(SVC, body), 403, "forbidden")
    resp = editor.post(SVC, body)
    assert_status(resp, 201)
    svc = resp.json()
    assert resp.headers["Location"] == f"{SVC}/{svc['id']}"
    assert svc["status"] == "active" and svc["public"] is True and svc["version"] == 1
    assert_problem(editor.post(SVC, body), 409, "conflict")
    assert reader.get(f"{SVC}/{svc['id']}").json()["name"] == body["name"]
    internal = new_service(editor, "internal", public=False)
    listed = ids(reader.list_all(SVC, public="false")[0])
    assert internal["id"] in listed and svc["id"] not in listed
    assert_validation(editor.post(SVC, {"id": "bad id!", "name": body["name"]}), "/id")
    assert_validation(editor.post(SVC, {"id": "x-" + uuid.uuid4().hex[:6]}), "/name")

    # references from subprocessors, customers and objections: must exist (422, with the pointer)
    unknown = "no-such-service"
    resp = hook_admin.post("/v1/subprocessors", minimal_body(legal_name=unique_name("Ref"), services=[svc["id"], unknown]))
    assert_problem(resp, 422, "unprocessable-entity")
    assert "/services/1" in [e["pointer"] for e in resp.json()["errors"]], describe(resp)
    assert_validation(hook_admin.post("/v1/subprocessors", minimal_body(legal_name=unique_name("Ref"), services=[])),
                      "/services")
    assert_validation(hook_admin.post("/v1/subprocessors",
                                      minimal_body(legal_name=unique_name("Ref"), services=[svc["id"], svc["id"]])),
                      "/services/1")
    resp = hook_admin.post("/v1/customers", {"name": unique_name("Kunde"), "services": [unknown]})
    assert_problem(resp, 422, "unprocessable-entity")
    sp = hook_admin.create_sp(minimal_body(legal_name=unique_name("Ref"), services=[svc["id"]]))
    assert sp["services"] == [svc["id"]]
    customer = new_customer(hook_admin, services=[svc["id"]])

    # a referenced service cannot be deleted: the 409 names who refers to it
    current = hook_admin.get(f"{SVC}/{svc['id']}").json()
    resp = hook_admin.delete(f"{SVC}/{svc['id']}", if_match=current["version"])
    assert_problem(resp, 409, "conflict")
    assert sp["id"] in resp.json()["detail"] and customer["id"] in resp.json()["detail"], describe(resp)
    # retiring it is the way out; removing the links frees it
    retired = hook_admin.patch(f"{SVC}/{svc['id']}", {"status": "retired"}, if_match=current["version"])
    assert_status(retired, 200)
    hook_admin.patch_sp(sp["id"], {"services": None}, sp["version"])
    resp = hook_admin.patch(f"/v1/customers/{customer['id']}", {"services": None, "status": "inactive"},
                            if_match=customer["version"])
    assert_status(resp, 200)
    assert "services" not in resp.json()
    resp = hook_admin.delete(f"{SVC}/{svc['id']}", if_match=retired.json()["version"])
    assert_status(resp, 204)
    assert_problem(hook_admin.get(f"{SVC}/{svc['id']}"), 404, "not-found")


# ---------------------------------------------------------------------------
# publications: each service's view, whom a change concerns, the notice


def test_a_change_in_one_service_concerns_only_its_customers(hook_server, hook_admin, subscribe, receivers,
                                                              event_schema):
    a, b = new_service(hook_admin, "a"), new_service(hook_admin, "b")
    shared = active_sp(hook_admin, services=[a["id"], b["id"]])
    only_b = active_sp(hook_admin, services=[b["id"]])
    everywhere = active_sp(hook_admin)  # no services: serves all
    cust_a = new_customer(hook_admin, services=[a["id"]], notice_days=10, objection_days=7)
    cust_b = new_customer(hook_admin, services=[b["id"]], notice_days=90, objection_days=60)
    cust_all = new_customer(hook_admin, notice_days=0, objection_days=5)
    sync(hook_admin)

    rcv = receivers()
    hook = subscribe(rcv, ["publication.announced"])
    new_in_a = active_sp(hook_admin, services=[a["id"]])

    # B's customer promised 90 days is not asked: the change is not in B's list
    resp = publish(hook_admin, 422, effective_at=in_days(9))
    assert "10 days" in resp.json()["detail"], describe(resp)
    pub = publish(hook_admin, effective_at=in_days(10, 120))
    assert pub["notice_days_required"] == 10
    assert pub["services_affected"] == [a["id"]]
    assert sorted(pub["customers_affected"]) == sorted([cust_a["id"], cust_all["id"]])
    assert cust_b["id"] not in pub["customers_affected"]
    # the objection deadline: the longest objection period among those concerned (7 days)
    deadline = dt.datetime.fromisoformat(pub["objection_deadline"].replace("Z", "+00:00"))
    published = dt.datetime.fromisoformat(pub["published_at"].replace("Z", "+00:00"))
    assert (deadline - published) == dt.timedelta(days=7)
    changes = pub["service_changes"]
    assert ids(changes[a["id"]]["added"]) == [new_in_a["id"]]
    assert changes[b["id"]] == {"added": [], "removed": [], "changed": []}
    # the catalogue and every item's explicit services
    assert [s["id"] for s in pub["services"] if s["id"] in (a["id"], b["id"])] == [a["id"], b["id"]]
    full = hook_admin.get(f"{PUBS}/{pub['number']}").json()
    by_id = {i["id"]: i for i in full["items"]}
    assert by_id[shared["id"]]["services"] == [a["id"], b["id"]]
    assert by_id[only_b["id"]]["services"] == [b["id"]]
    assert {a["id"], b["id"]} <= set(by_id[everywhere["id"]]["services"])
    assert by_id[new_in_a["id"]]["services"] == [a["id"]]

    # the announcement says whom to tell; its body follows the published schema
    (ann,) = rcv.wait_for(lambda r: r.event["data"].get("version") == pub["number"], timeout=10)
    payload = verify(ann, hook["secret"])
    event_schema.validate(payload)
    data = payload["data"]
    assert data["services_affected"] == [a["id"]]
    assert sorted(data["customers_affected"]) == sorted(pub["customers_affected"])
    assert data["customers_affected_count"] == 2

    # moving a subprocessor into B: B's list gains it (90 days for B's customer);
    # A's list and the whole list are unchanged, so A's and the all-services customer are not concerned
    moved = active_sp(hook_admin, services=[a["id"]], legal_name=unique_name("Moved"))
    sync(hook_admin)  # replaces the announcement, in effect now: the next changes are against it
    hook_admin.patch_sp(moved["id"], {"services": [a["id"], b["id"]]}, moved["version"])
    resp = publish(hook_admin, 422, effective_at=in_days(30))
    assert "90 days" in resp.json()["detail"], describe(resp)
    widened = publish(hook_admin, effective_at=in_days(90, 120))
    assert widened["services_affected"] == [b["id"]]
    assert widened["customers_affected"] == [cust_b["id"]]
    assert ids(widened["service_changes"][b["id"]]["added"]) == [moved["id"]]
    assert widened["service_changes"][a["id"]] == {"added": [], "removed": [], "changed": []}
    assert widened["diff"] == {"added": [], "removed": [], "changed": []}  # the whole list did not change


def test_a_version_that_concerns_no_customer_says_so(hook_server, hook_admin, subscribe, receivers,
                                                      event_schema):
    lonely = new_service(hook_admin, "lonely", public=False)
    # a customer without services sees the whole list: none of those may be active here
    for c in hook_admin.list_all("/v1/customers", status="active")[0]:
        if "services" not in c:
            assert_status(hook_admin.patch(f"/v1/customers/{c['id']}", {"status": "inactive"}, if_match=c["version"]), 200)
    sync(hook_admin)
    rcv = receivers()
    hook = subscribe(rcv, ["publication.announced"])
    active_sp(hook_admin, services=[lonely["id"]])
    # every active customer buys other services: nobody to tell, no notice owed
    pub = publish(hook_admin)
    assert pub["services_affected"] == [lonely["id"]]
    assert pub["customers_affected"] == [] and pub["notice_days_required"] == 0
    (ann,) = rcv.wait_for(lambda r: r.event["data"].get("version") == pub["number"], timeout=10)
    payload = verify(ann, hook["secret"])
    event_schema.validate(payload)
    assert payload["data"]["customers_affected"] == [] and payload["data"]["customers_affected_count"] == 0


def test_objections_name_their_services_and_rule_8_counts_only_concerned_customers(hook_server, hook_admin):
    a, b = new_service(hook_admin, "oa"), new_service(hook_admin, "ob")
    cust_a = new_customer(hook_admin, services=[a["id"]], notice_days=30)
    new_customer(hook_admin, services=[b["id"]], notice_days=30)
    sync(hook_admin)
    active_sp(hook_admin, services=[a["id"]])
    # shortened on purpose: rule 8 must count the one concerned customer, not B's
    pub = publish(hook_admin, effective_at=in_days(2), override_notice=True)
    assert pub["override_notice"] is True
    found = [f for f in hook_admin.get("/v1/compliance/findings", params={"rule": "notice_period"}).json()["items"]
             if f["entity_id"] == str(pub["number"])]
    assert len(found) == 1, found
    assert "notice period promised to 1 customer(s)" in found[0]["message"]["en"], found

    path = f"{PUBS}/{pub['number']}/objections"
    resp = hook_admin.post(path, {"customer_id": cust_a["id"], "services": [a["id"]], "reason": "no"})
    assert_status(resp, 201)
    assert resp.json()["services"] == [a["id"]]
    resp = hook_admin.post(path, {"customer_id": cust_a["id"], "services": ["no-such-service"]})
    assert_problem(resp, 422, "unprocessable-entity")
    # for a service the customer does not buy, or whose list the version does not change: 422
    resp = hook_admin.post(path, {"customer_id": cust_a["id"], "services": [a["id"], b["id"]]})
    assert_problem(resp, 422, "unprocessable-entity")
    assert resp.json()["errors"] == [{"pointer": "/services/1", "message": "the customer does not buy this service"}]
    cust_ab = new_customer(hook_admin, services=[a["id"], b["id"]])
    resp = hook_admin.post(path, {"customer_id": cust_ab["id"], "services": [b["id"]]})
    assert_problem(resp, 422, "unprocessable-entity")
    assert resp.json()["errors"][0]["message"] == "the publication does not change this service's list"
    objection = hook_admin.post(path, {"customer_id": cust_ab["id"]}).json()  # absent: every touched service
    resp = hook_admin.patch(f"/v1/objections/{objection['id']}", {"services": [b["id"]]}, if_match=objection["version"])
    assert_problem(resp, 422, "unprocessable-entity")


def test_dry_run_answers_whom_to_tell_and_writes_nothing(hook_server, hook_admin, subscribe, receivers):
    svc = new_service(hook_admin, "preview")
    cust = new_customer(hook_admin, services=[svc["id"]], notice_days=12)
    sync(hook_admin)
    rcv = receivers()
    subscribe(rcv, ["publication.announced"])
    added = active_sp(hook_admin, services=[svc["id"]])
    numbers = [p["number"] for p in hook_admin.get(PUBS).json()["items"]]
    body = {"summary": {"de": "Vorschau", "en": "Preview"}}
    resp = hook_admin.post(PUBS, body, params={"dry_run": "true"})
    assert_status(resp, 200)
    preview = resp.json()
    assert preview["dry_run"] is True and preview["number"] == max(numbers) + 1
    assert preview["customers_affected"] == [cust["id"]] and preview["services_affected"] == [svc["id"]]
    assert preview["notice_days_required"] == 12
    assert ids(preview["service_changes"][svc["id"]]["added"]) == [added["id"]]
    # nothing written, nothing announced
    assert [p["number"] for p in hook_admin.get(PUBS).json()["items"]] == numbers
    assert_problem(hook_admin.post(PUBS, body, params={"dry_run": "yes"}), 400, "malformed-request")
    # the preview checks what the publication checks: the notice it owes
    assert "12 days" in publish(hook_admin, 422, effective_at=in_days(11)).json()["detail"]
    early = hook_admin.post(PUBS, dict(body, effective_at=in_days(11)), params={"dry_run": "true"})
    assert_status(early, 200)
    assert early.json()["effective_at"] == early.json()["earliest_effective_at"]
    first = dt.datetime.fromisoformat(preview["earliest_effective_at"].replace("Z", "+00:00"))
    published = dt.datetime.fromisoformat(preview["published_at"].replace("Z", "+00:00"))
    assert first - published == dt.timedelta(days=12)
    # (the sync's own announcement may still arrive: the subscription came right after it)
    assert not [r for r in rcv.snapshot() if r.event["data"].get("version", 0) > max(numbers)]
    pub = publish(hook_admin, effective_at=in_days(12, 120), **body)
    assert pub["number"] == preview["number"] and pub["customers_affected"] == preview["customers_affected"]
    assert pub["service_changes"] == preview["service_changes"]


def deactivate_whole_list_customers(api):
    """A customer without services sees the whole list: none may be active where a test counts."""
    for c in api.list_all("/v1/customers", status="active")[0]:
        if "services" not in c:
            assert_status(api.patch(f"/v1/customers/{c['id']}", {"status": "inactive"}, if_match=c["version"]), 200)


def test_the_whole_list_and_its_readers_ignore_which_services_a_subprocessor_serves(hook_server, hook_admin):
    """Moving a subprocessor into another service changes that service's list
    only: the whole list's changes stay empty, and a customer who sees the
    whole list is neither told nor owed notice — nor reported by rule 8."""
    deactivate_whole_list_customers(hook_admin)
    a, b = new_service(hook_admin, "wa"), new_service(hook_admin, "wb")
    whole = new_customer(hook_admin, notice_days=30)
    gone = active_sp(hook_admin, services=[a["id"]])
    moving = active_sp(hook_admin, services=[a["id"]])
    sync(hook_admin)
    hook_admin.patch_sp(gone["id"], {"status": "retired"}, hook_admin.get_sp(gone["id"])["version"])
    hook_admin.patch_sp(moving["id"], {"services": [a["id"], b["id"]]}, hook_admin.get_sp(moving["id"])["version"])
    pub = publish(hook_admin)  # effective now: the removal owes no notice, B has no customers
    assert pub["notice_days_required"] == 0
    assert ids(pub["diff"]["removed"]) == [gone["id"]] and pub["diff"]["changed"] == []
    assert whole["id"] in pub["customers_affected"]  # told of the removal
    assert pub["customers_owed_notice"] == []
    assert ids(pub["service_changes"][b["id"]]["added"]) == [moving["id"]]
    found = [f for f in hook_admin.get("/v1/compliance/findings", params={"rule": "notice_period"}).json()["items"]
             if f["entity_id"] == str(pub["number"])]
    assert found == []


def test_a_catalogue_change_alone_is_published(hook_server, hook_admin):
    svc = new_service(hook_admin, "renamed")
    sync(hook_admin)
    assert_problem(hook_admin.post(PUBS, {"summary": {"de": "x", "en": "x"}}), 409, "conflict")
    resp = hook_admin.patch(f"{SVC}/{svc['id']}", {"name": {"de": "Umbenannt", "en": "Renamed"}}, if_match=svc["version"])
    assert_status(resp, 200)
    pub = publish(hook_admin)
    assert [s["name"]["en"] for s in pub["services"] if s["id"] == svc["id"]] == ["Renamed"]
    assert pub["diff"] == {"added": [], "removed": [], "changed": []}


def test_customers_of_retired_services_are_told_about_the_whole_list(hook_server, hook_admin):
    """Fail closed: a customer none of whose services is still sold sees the whole list."""
    deactivate_whole_list_customers(hook_admin)
    old = new_service(hook_admin, "old")
    stranded = new_customer(hook_admin, services=[old["id"]], notice_days=21)
    current = hook_admin.get(f"{SVC}/{old['id']}").json()
    assert_status(hook_admin.patch(f"{SVC}/{old['id']}", {"status": "retired"}, if_match=current["version"]), 200)
    fresh = new_service(hook_admin, "fresh")  # no customer buys it
    sync(hook_admin)
    active_sp(hook_admin, services=[fresh["id"]])
    assert "21 days" in publish(hook_admin, 422, effective_at=in_days(20)).json()["detail"]
    pub = publish(hook_admin, effective_at=in_days(21, 120))
    assert pub["customers_affected"] == [stranded["id"]] == pub["customers_owed_notice"]
    assert old["id"] not in [s["id"] for s in pub["services"]]
    deactivate_whole_list_customers(hook_admin)
    stranded = hook_admin.get(f"/v1/customers/{stranded['id']}").json()
    assert_status(hook_admin.patch(f"/v1/customers/{stranded['id']}", {"status": "inactive"},
                                   if_match=stranded["version"]), 200)


def test_an_objection_stays_resolvable_when_the_customer_stops_buying_its_service(hook_server, hook_admin):
    a, b = new_service(hook_admin, "ra"), new_service(hook_admin, "rb")
    cust = new_customer(hook_admin, services=[a["id"]], notice_days=0)
    sync(hook_admin)
    active_sp(hook_admin, services=[a["id"]])
    pub = publish(hook_admin, override_notice=True)
    objection = hook_admin.post(f"{PUBS}/{pub['number']}/objections",
                                {"customer_id": cust["id"], "services": [a["id"]]}).json()
    assert_status(hook_admin.patch(f"/v1/customers/{cust['id']}", {"services": [b["id"]]}, if_match=cust["version"]), 200)
    resp = hook_admin.patch(f"/v1/objections/{objection['id']}", {"status": "resolved", "resolution": "kept"},
                            if_match=objection["version"])
    assert_status(resp, 200)
    assert resp.json()["services"] == [a["id"]]


def test_a_replacing_version_names_whom_the_withdrawn_announcement_concerned(hook_server, hook_admin, subscribe,
                                                                             receivers, event_schema):
    deactivate_whole_list_customers(hook_admin)
    a = new_service(hook_admin, "wd")
    cust = new_customer(hook_admin, services=[a["id"]], notice_days=5)
    sync(hook_admin)
    rcv = receivers()
    hook = subscribe(rcv, ["publication.announced"])
    added = active_sp(hook_admin, services=[a["id"]])
    announced = publish(hook_admin, effective_at=in_days(5, 120))
    assert announced["customers_affected"] == [cust["id"]]
    # taken back before it takes effect: the new version changes nothing for A
    hook_admin.patch_sp(added["id"], {"status": "retired"}, hook_admin.get_sp(added["id"])["version"])
    back = publish(hook_admin)
    assert back["replaces"] == announced["number"]
    assert back["customers_affected"] == [] and back["customers_withdrawn"] == [cust["id"]]
    (ann,) = rcv.wait_for(lambda r: r.event["data"].get("version") == back["number"], timeout=10)
    payload = verify(ann, hook["secret"])
    event_schema.validate(payload)
    assert payload["data"]["customers_withdrawn"] == [cust["id"]]
