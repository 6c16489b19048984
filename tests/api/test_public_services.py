"""The public list per service (issue 12): `?service=ID` on every public form.

Services A and B are public, H is not. Subprocessors serve A, B, both, none
given (= every service), H alone, and A with H. Version 1 publishes them; version
2 changes only a subprocessor of A: B's list, feed, page, versions and their
ETags and Last-Modified stay as they were (304 for the old validators), A's
move on. Version 3 changes B and, besides, only which non-public service a
subprocessor serves: that is no public change. The id of H is never in a public
form; an unknown or non-public service is 404.

Publications are global to a database: this module runs on its own stack.
"""

import csv
import io
import time
import uuid
import zipfile
import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime

import pytest
import requests

from helpers import (
    ok,
    PUBLIC,
    assert_problem,
    assert_status,
    describe,
    minimal_body,
    wait_until,
)

PUBS = "/v1/publications"
ATOM = "{http://www.w3.org/2005/Atom}"
TAG = uuid.uuid4().hex[:8]
A, B, H = f"svc-a-{TAG}", f"svc-b-{TAG}", f"svc-h-{TAG}"


def get(srv, path, params=None, headers=None):
    return requests.get(srv.url + path, params=params, headers=headers or {}, timeout=15,
                        allow_redirects=False)


def publish(admin, en):
    resp = admin.post(PUBS, {"summary": {"de": en, "en": en}})
    assert_status(resp, 201)
    return resp.json()["number"]


def wait_version(srv, number):
    wait_until(lambda: ok(get(srv, PUBLIC)).json()["version"] == number or None, 8, interval=0.1,
               message=f"version {number} in effect")


# Every form of one list: (label, path, params).
def forms_of(service):
    q = {"service": service} if service else {}
    return [
        ("json", PUBLIC, q),
        ("json de", PUBLIC, {**q, "lang": "de"}),
        ("json en", PUBLIC, {**q, "lang": "en"}),
        ("csv de", PUBLIC, {**q, "format": "csv", "lang": "de"}),
        ("csv en", PUBLIC, {**q, "format": "csv", "lang": "en"}),
        ("xlsx", PUBLIC, {**q, "format": "xlsx"}),
        ("atom", PUBLIC + "/feed.atom", q),
        ("versions", PUBLIC + "/versions", q),
        ("version 1", PUBLIC + "/versions/1", q),
        ("page de", "/subprocessors", {**q, "lang": "de"}),
        ("page en", "/subprocessors", {**q, "lang": "en"}),
        ("annex", "/subprocessors/annex", {**q, "lang": "en"}),
    ]


def snapshot_of(srv, service):
    """label -> (status, ETag, Last-Modified, body) of every form of the list."""
    out = {}
    for label, path, params in forms_of(service):
        resp = get(srv, path, params)
        out[label] = (resp.status_code, resp.headers.get("ETag"), resp.headers.get("Last-Modified"),
                      resp.content)
    return out


def ids(items):
    return sorted(i["id"] for i in items)


@pytest.fixture(scope="module")
def world(pub_server):
    admin = pub_server.api(roles=["admin"], sub="services-publisher")
    for sid, name, public, sort in ((A, "Managed IT", True, 1), (B, "ERP-Betrieb", True, 2),
                                    (H, f"Verborgen-{TAG}", False, 3)):
        assert_status(admin.post("/v1/services", {
            "id": sid, "name": {"de": name, "en": name + " (en)"}, "public": public, "sort": sort,
            "description": {"de": f"Dienst {name}", "en": f"Service {name}"}}), 201)

    def sp(name, services):
        body = minimal_body(legal_name=f"{name} {TAG} GmbH", status="active")
        if services is not None:
            body["services"] = services
        return admin.create_sp(body)

    made = {
        "a": sp("Nur-A", [A]),
        "b": sp("Nur-B", [B]),
        "ab": sp("Beide", [A, B]),
        "all": sp("Alle", None),
        "h": sp("Nur-H", [H]),
        "ah": sp("A-und-H", [A, H]),
    }
    assert publish(admin, "one") == 1
    wait_version(pub_server, 1)
    return {"admin": admin, "sp": made}


def sp_ids(world, *keys):
    return sorted(world["sp"][k]["id"] for k in keys)


# ---------------------------------------------------------------------------
# version 1


def test_each_service_lists_its_subprocessors(pub_server, world):
    whole = ok(get(pub_server, PUBLIC), "application/json").json()
    assert ids(whole["items"]) == sp_ids(world, "a", "b", "ab", "all", "h", "ah")
    # the whole list is as it was before services: no member names them
    assert set(whole) == {"version", "effective_at", "published_at", "items", "upcoming", "links"}
    assert all("services" not in i for i in whole["items"])
    for service, expect in ((A, ("a", "ab", "all", "ah")), (B, ("b", "ab", "all"))):
        body = ok(get(pub_server, PUBLIC, {"service": service}), "application/json").json()
        assert ids(body["items"]) == sp_ids(world, *expect), service
        assert body["version"] == 1
        assert body["service"]["id"] == service
        assert [s["id"] for s in body["services"]] == [A, B]
        assert body["services"][0]["name"] == {"de": "Managed IT", "en": "Managed IT (en)"}
        assert all("services" not in i for i in body["items"])
        assert body["links"] == {
            "csv": f"{PUBLIC}?format=csv&service={service}",
            "atom": f"{PUBLIC}/feed.atom?service={service}",
            "html": f"/subprocessors?service={service}",
            "versions": f"{PUBLIC}/versions?service={service}",
        }
    en = ok(get(pub_server, PUBLIC, {"service": B, "lang": "en"})).json()
    assert en["service"] == {"id": B, "name": "ERP-Betrieb (en)", "description": "Service ERP-Betrieb"}
    # an empty service (the page's "all services") is the whole list
    assert ok(get(pub_server, PUBLIC, {"service": ""})).content == ok(get(pub_server, PUBLIC)).content


def test_csv_and_atom_per_service(pub_server, world):
    for service in (A, B):
        body = ok(get(pub_server, PUBLIC, {"service": service})).json()
        text = ok(get(pub_server, PUBLIC, {"service": service, "format": "csv"}), "text/csv").text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert sorted(r["id"] for r in rows) == ids(body["items"])
        xlsx = ok(get(pub_server, PUBLIC, {"service": service, "format": "xlsx"}))
        assert service in xlsx.headers["Content-Disposition"]
        feed = ET.fromstring(ok(get(pub_server, PUBLIC + "/feed.atom", {"service": service}),
                                "application/atom+xml").content)
        assert feed.find(f"{ATOM}id").text == f"{pub_server.url}{PUBLIC}/feed.atom?service={service}"
        entry_ids = [e.find(f"{ATOM}id").text for e in feed.findall(f"{ATOM}entry")]
        assert entry_ids == [f"{pub_server.url}{PUBLIC}/versions/1?service={service}"]


def test_unknown_or_non_public_service_is_404(pub_server, world):
    for service in (H, "no-such-service", "a" * 65, "<x>"):
        for label, path, params in forms_of(service):
            resp = get(pub_server, path, params)
            assert_problem(resp, 404, "not-found")
            assert "service" in resp.json()["detail"], (label, describe(resp))
    # the other checks of the query still apply
    assert_problem(get(pub_server, PUBLIC, {"service": A, "lang": "fr"}), 400, "malformed-request")
    assert_problem(get(pub_server, PUBLIC + "/versions", {"service": A, "x": "1"}), 400,
                   "malformed-request")


def test_page_has_a_service_selector(pub_server, world):
    resp = ok(get(pub_server, "/subprocessors", {"service": A, "lang": "de"}), "text/html")
    csp = resp.headers["Content-Security-Policy"]
    assert "form-action 'self'" in csp and "default-src 'none'" in csp, csp
    html = resp.text
    assert '<form class="services" method="get" action="/subprocessors">' in html
    assert f'<option value="{A}" selected>Managed IT</option>' in html
    assert f'<option value="{B}">ERP-Betrieb</option>' in html
    assert "<h1>Unterauftrags<wbr>verarbeiter für Managed IT</h1>" in html
    assert world["sp"]["b"]["id"] not in html
    # the annex keeps form-action 'none'
    annex = ok(get(pub_server, "/subprocessors/annex", {"service": A}))
    assert "form-action 'none'" in annex.headers["Content-Security-Policy"]
    assert "Managed IT" in annex.text


# ---------------------------------------------------------------------------
# version 2 touches only A; version 3 only B and a non-public service


def test_a_change_of_one_service_leaves_the_other_as_it_was(pub_server, world):
    admin = world["admin"]
    before = {s: snapshot_of(pub_server, s) for s in (A, B, None)}
    for snap in before.values():
        assert all(v[0] == 200 for v in snap.values()), snap
    a = world["sp"]["a"]
    admin.patch_sp(a["id"], {"purpose": {"de": "Neu A", "en": "New A"}}, a["version"])
    assert publish(admin, "two") == 2
    wait_version(pub_server, 2)
    after = {s: snapshot_of(pub_server, s) for s in (A, B, None)}
    # B: every form byte for byte, with its ETag and Last-Modified
    for label in before[B]:
        assert after[B][label] == before[B][label], f"B's {label} changed"
    # 304 for B's old validators, each on its own
    for label, path, params in forms_of(B):
        _, etag, last_modified, _ = before[B][label]
        assert get(pub_server, path, params, {"If-None-Match": etag}).status_code == 304, label
        assert get(pub_server, path, params, {"If-Modified-Since": last_modified}).status_code == 304, label
    # A and the whole list moved on
    for service in (A, None):
        for label in ("json", "csv en", "atom", "versions", "page en"):
            assert after[service][label][1] != before[service][label][1], (service, label)
            _, path, params = next(f for f in forms_of(service) if f[0] == label)
            assert get(pub_server, path, params, {"If-None-Match": before[service][label][1]}).status_code == 200
    assert ok(get(pub_server, PUBLIC, {"service": A})).json()["version"] == 2
    assert ok(get(pub_server, PUBLIC, {"service": B})).json()["version"] == 1
    # version 2 as each service sees it
    v2a = ok(get(pub_server, PUBLIC + "/versions/2", {"service": A})).json()
    assert [c["id"] for c in v2a["changes"]["changed"]] == [a["id"]]
    v2b = ok(get(pub_server, PUBLIC + "/versions/2", {"service": B})).json()
    assert v2b["changes"] == {"added": [], "removed": [], "changed": []}
    assert ids(v2b["items"]) == sp_ids(world, "b", "ab", "all")
    # B's feed and versions list have no entry for version 2; A's do
    feed = ET.fromstring(ok(get(pub_server, PUBLIC + "/feed.atom", {"service": A})).content)
    assert [e.find(f"{ATOM}id").text.rsplit("/", 1)[1] for e in feed.findall(f"{ATOM}entry")] == [
        f"2?service={A}", f"1?service={A}"]
    assert [v["version"] for v in ok(get(pub_server, PUBLIC + "/versions", {"service": B})).json()["items"]] == [1]


def test_a_change_of_a_non_public_service_is_no_public_change(pub_server, world):
    admin = world["admin"]
    ah, b = world["sp"]["ah"], world["sp"]["b"]
    ah = admin.get_sp(ah["id"])
    admin.patch_sp(ah["id"], {"services": [A]}, ah["version"])  # leaves H
    b = admin.get_sp(b["id"])
    admin.patch_sp(b["id"], {"purpose": {"de": "Neu B", "en": "New B"}}, b["version"])
    n = publish(admin, "three")
    wait_version(pub_server, n)
    whole = ok(get(pub_server, f"{PUBLIC}/versions/{n}")).json()
    assert [c["id"] for c in whole["changes"]["changed"]] == [b["id"]]
    assert ok(get(pub_server, f"{PUBLIC}/versions/{n}", {"service": A})).json()["changes"] == {
        "added": [], "removed": [], "changed": []}
    vb = ok(get(pub_server, f"{PUBLIC}/versions/{n}", {"service": B})).json()
    assert [c["id"] for c in vb["changes"]["changed"]] == [b["id"]]
    assert ok(get(pub_server, PUBLIC, {"service": A})).json()["version"] == 2


def readable_text(resp):
    """The text of a form; a spreadsheet's is the XML inside its zip."""
    if resp.content[:2] != b"PK":
        return resp.text
    with zipfile.ZipFile(io.BytesIO(resp.content)) as z:
        return "".join(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml"))


def test_no_public_form_names_a_non_public_service(pub_server, world):
    checked = 0
    for service in (None, A, B):
        for label, path, params in forms_of(service):
            text = readable_text(ok(get(pub_server, path, params)))
            if service is None and label in ("json", "csv de", "xlsx"):  # the search can find what is there
                assert world["sp"]["h"]["legal_name"] in text, label
            assert H not in text and "Verborgen" not in text, (service, label)
            checked += 1
        versions = ok(get(pub_server, PUBLIC + "/versions", {"service": service} if service else {})).json()
        for v in versions["items"]:
            resp = ok(get(pub_server, f"{PUBLIC}/versions/{v['version']}",
                          {"service": service} if service else {}))
            assert H not in resp.text, (service, v["version"])
            checked += 1
    assert checked > 36


def test_a_new_service_dates_the_other_lists_pages_anew(pub_server, world):
    """B's page lists every public service in its selector: a new service C
    changes B's page though no version changes B's list — its ETag and its
    Last-Modified move, so If-Modified-Since with the old date gets the new page
    (not a 304 of the old one). Rename or hide a service: a publication of its own."""
    admin = world["admin"]
    before = get(pub_server, "/subprocessors", {"service": B, "lang": "en"})
    ok(before)
    time.sleep(1.1)  # Last-Modified has whole seconds
    c = f"svc-c-{TAG}"
    assert_status(admin.post("/v1/services", {"id": c, "name": {"de": "Neu", "en": "New"}}), 201)
    # a catalogue change alone is something to publish (it changes the pages)
    n = publish(admin, "catalogue")
    wait_version(pub_server, n)
    after = ok(get(pub_server, "/subprocessors", {"service": B, "lang": "en"}))
    assert f'value="{c}"' in after.text and f'value="{c}"' not in before.text
    assert after.headers["ETag"] != before.headers["ETag"]
    assert parsedate_to_datetime(after.headers["Last-Modified"]) > parsedate_to_datetime(before.headers["Last-Modified"])
    again = get(pub_server, "/subprocessors", {"service": B, "lang": "en"},
                {"If-Modified-Since": before.headers["Last-Modified"]})
    assert again.status_code == 200 and f'value="{c}"' in again.text
    # hiding it is published the same way: its list is gone from the public side
    svc = admin.get(f"/v1/services/{c}").json()
    assert_status(admin.patch(f"/v1/services/{c}", {"public": False}, if_match=svc["version"]), 200)
    n = publish(admin, "hide")
    wait_version(pub_server, n)
    assert get(pub_server, PUBLIC, {"service": c}).status_code == 404
    assert f'value="{c}"' not in ok(get(pub_server, "/subprocessors", {"service": B, "lang": "en"})).text
