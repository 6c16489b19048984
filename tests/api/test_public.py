"""The public forms of the subprocessor list (issue 4): JSON, CSV, Atom, HTML,
the versions; what they must never show, caching (ETag, Last-Modified, 304),
CSV = JSON, the CSV as LibreOffice reads it, the Atom feed against a real
parser (feedparser) and the RFC 4287 schema (RelaxNG),
query validation, the rate limit, and the state before any publication.

Publications are global to a database: this module publishes on its own stack
(`pub_server`, module-scoped), never on the shared session server.
"""

import csv
import datetime as dt
import io
import secrets
import string
import time
import uuid
from pathlib import Path

import feedparser
import pytest
import requests
from lxml import etree

from readers import as_text, spreadsheet_cells
from helpers import (
    ok,
    PUBLIC,
    PUBLIC_KEYS,
    assert_problem,
    assert_status,
    describe,
    minimal_body,
    sp_body,
    unique_name,
    wait_public_ready,
    wait_until,
)

HERE = Path(__file__).resolve().parent
PUBS = "/v1/publications"
ATOM_NS = "http://www.w3.org/2005/Atom"
CSV_COLUMNS = ["id", "legal_name", "trading_name", "category", "hq_country", "purpose",
               "data_categories", "data_subjects", "locations", "certifications",
               "dpf_participating", "website"]


# ---------------------------------------------------------------------------
# helpers (local to this module)


def iso_in(days=0, seconds=0):
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days, seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def get(srv, path, headers=None, params=None):
    return requests.get(srv.url + path, headers=headers or {}, params=params, timeout=15,
                        allow_redirects=False)


def publish(api, **body):
    body.setdefault("summary", {"de": "Änderung", "en": "Change"})
    resp = api.post(PUBS, body)
    assert_status(resp, 201)
    return resp.json()


def wait_public_version(srv, check, message, timeout=5):
    return wait_until(lambda: (lambda b: b if check(b) else None)(
        ok(get(srv, PUBLIC)).json()), timeout, interval=0.1, message=message)


def lei_with_check_digits(base18):
    """A syntactically valid LEI (ISO 17442: ISO 7064 MOD 97-10 check digits)."""
    digits = "".join(str(int(c, 36)) for c in base18 + "00")
    return base18 + f"{98 - int(digits) % 97:02d}"


def token(n=10):
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(n))


def parse_csv(text):
    return list(csv.reader(io.StringIO(text, newline="")))


def atom_schema():
    return etree.RelaxNG(etree.parse(str(HERE / "atom.rng")))


# ---------------------------------------------------------------------------
# the module's data (on its own stack, `pub_server` in conftest.py)


@pytest.fixture(scope="module")
def world(pub_server):
    """A registry with a secret planted in every internal field, published as
    version 1 (in effect) and version 2 (announced, with an objection)."""
    marks = {}

    def mark(name, value, needle=None):
        marks[name] = needle or value
        return value

    hexes = {k: uuid.uuid4().hex[:12] for k in ("a", "b", "c")}
    admin_sub = mark("publishing admin (token sub)", f"SECRET-admin-{uuid.uuid4().hex[:10]}")
    admin = pub_server.api(roles=["admin"], sub=admin_sub)
    phone_a, phone_b = secrets.randbelow(900000) + 100000, secrets.randbelow(900000) + 100000
    email_local = f"secret-{hexes['a']}"

    body = sp_body(
        legal_name="Sekura Datendienste GmbH",
        status="active",
        notes=mark("subprocessor notes", f"SECRET-notes-{uuid.uuid4().hex}"),
        identifiers={
            "vat_id": mark("identifiers.vat_id", "DE" + "SV" + token(11)),
            "lei": mark("identifiers.lei", lei_with_check_digits("SECRET" + token(12))),
            "register_number": mark("identifiers.register_number", f"SECRET-reg-{uuid.uuid4().hex}"),
        },
        privacy_contact={
            "name": mark("privacy_contact.name", f"SECRET-contact-{uuid.uuid4().hex}"),
            "email": mark("privacy_contact.email", f"{email_local}@example.org", email_local),
            "phone": mark("privacy_contact.phone", f"+49 30 {phone_a}-{phone_b}",
                          f"{phone_a}-{phone_b}"),
        },
        dpf={"participating": True, "verified_on": mark("dpf.verified_on", "2038-05-29")},
        last_review_on=mark("last_review_on", "2039-03-17"),
        next_review_on=mark("next_review_on", "2041-09-23"),
    )
    secret_sp = admin.create_sp(body)
    # sanity: the secrets are stored (the internal API shows them)
    assert secret_sp["notes"] == marks["subprocessor notes"]
    assert secret_sp["identifiers"]["lei"] == marks["identifiers.lei"]

    hidden_name = mark("unlisted subprocessor name", f"SECRET-hidden-{uuid.uuid4().hex[:10]} GmbH")
    admin.create_sp(minimal_body(
        legal_name=hidden_name, status="active",
        public={"listed": False, "description": {
            "de": mark("unlisted description", f"SECRET-hdesc-{uuid.uuid4().hex[:10]}"),
            "en": "hidden"}}))
    retired = admin.create_sp(minimal_body(
        legal_name=mark("retired subprocessor name", f"SECRET-retired-{uuid.uuid4().hex[:10]} Ltd")))
    admin.patch_sp(retired["id"], {"status": "retired"}, retired["version"])

    # Public entries with characters that CSV, HTML and XML must escape.
    tricky = admin.create_sp(minimal_body(
        legal_name='Müller, "Daten" & Söhne <GmbH>', status="active", trading_name="M&S",
        purpose={"de": 'Datensicherung, "Backup" & Wiederherstellung – täglich',
                 "en": 'Backup, "restore" & recovery – daily'},
        data_categories=["master_contact", "it_documentation"],
        data_subjects=["customers", "partners"],
        locations=[{"country": "AT", "region": "Wien", "role": "backup"}]))
    plain = admin.create_sp(minimal_body(legal_name="Ärztekammer-IT Öffentliche Dienste AöR",
                                         status="active", hq_country="AT"))

    agreement = admin.post("/v1/agreements", {
        "subprocessor_id": secret_sp["id"], "type": "dpa",
        "title": mark("agreement.title", f"SECRET-agtitle-{uuid.uuid4().hex[:10]}"),
        "authorisation": "general", "notice_days": 30, "objection_days": 14,
        "reference": mark("agreement.reference", f"SECRET-agref-{uuid.uuid4().hex[:10]}"),
        "notes": mark("agreement.notes", f"SECRET-agnotes-{uuid.uuid4().hex}"),
    })
    assert_status(agreement, 201)
    transfer = admin.post("/v1/transfers", {
        "subprocessor_id": secret_sp["id"], "destination_country": "US", "basis": "scc_2021",
        "scc_module": 3,
        "scc_options": {"supervisory_authority": mark(
            "transfer.scc_options.supervisory_authority", f"SECRET-sa-{uuid.uuid4().hex[:10]}")},
        "tia": {"performed_on": "2026-01-10", "risk": "medium", "supplementary_measures": [
            mark("transfer.tia.supplementary_measures", f"SECRET-measure-{uuid.uuid4().hex[:10]}")]},
        "notes": mark("transfer.notes", f"SECRET-trnotes-{uuid.uuid4().hex}"),
    })
    assert_status(transfer, 201)
    tom = admin.post("/v1/tom-documents", {
        "owner": "subprocessor", "subprocessor_id": secret_sp["id"],
        "title": mark("tom.title", f"SECRET-tomtitle-{uuid.uuid4().hex[:10]}"),
        "version_label": mark("tom.version_label", f"SECRET-tv-{uuid.uuid4().hex[:8]}"),
        "effective_on": "2026-01-01",
        "measures": {"pseudonymisation_encryption": [
            mark("tom.measures", f"SECRET-tommeasure-{uuid.uuid4().hex[:10]}")]},
        "notes": mark("tom.notes", f"SECRET-tomnotes-{uuid.uuid4().hex}"),
    })
    assert_status(tom, 201)
    customer = admin.post("/v1/customers", {
        "name": mark("customer.name", f"SECRET-customer-{uuid.uuid4().hex[:10]}"),
        "customer_number": mark("customer.customer_number", f"SECRET-cn-{uuid.uuid4().hex[:10]}"),
        "notice_days": 0, "objection_days": 14,
        "contacts": [{"name": mark("customer.contacts.name", f"SECRET-cc-{uuid.uuid4().hex[:10]}"),
                      "email": mark("customer.contacts.email", f"cc-{hexes['b']}@example.org",
                                    f"cc-{hexes['b']}"),
                      "role": "privacy"}],
        "dpa_agreement_reference": mark("customer.dpa_agreement_reference",
                                        f"SECRET-dpa-{uuid.uuid4().hex[:10]}"),
        "notes": mark("customer.notes", f"SECRET-cunotes-{uuid.uuid4().hex}"),
    })
    assert_status(customer, 201)
    customer = customer.json()

    rid = mark("publish request id (X-Request-Id)", f"SECRET-rid-{uuid.uuid4().hex[:12]}")
    resp = admin.post(PUBS, {"summary": {"de": "Erste Fassung", "en": "First version"}},
                      headers={"X-Request-Id": rid})
    assert_status(resp, 201)
    v1 = resp.json()
    assert v1["published_by"] == admin_sub  # internal: the admin API shows it

    # Version 2, announced: a public change together with new internal secrets.
    admin.patch_sp(secret_sp["id"], {
        "purpose": {"de": "Datenhaltung und Auswertung", "en": "Data storage and analytics"},
        "notes": mark("subprocessor notes (changed)", f"SECRET-notes2-{uuid.uuid4().hex}"),
        "privacy_contact": {"name": mark("privacy_contact.name (changed)",
                                         f"SECRET-contact2-{uuid.uuid4().hex}")},
    }, secret_sp["version"])
    v2 = publish(admin, summary={"de": "Zweck geändert", "en": "Purpose changed"},
                 effective_at=iso_in(days=10))
    objection = admin.post(f"{PUBS}/{v2['number']}/objections", {
        "customer_id": customer["id"],
        "reason": mark("objection.reason", f"SECRET-objreason-{uuid.uuid4().hex[:10]}"),
        "resolution": mark("objection.resolution", f"SECRET-objres-{uuid.uuid4().hex[:10]}"),
    })
    assert_status(objection, 201)
    wait_public_version(pub_server, lambda b: b["version"] == 1 and b["upcoming"],
                        "version 1 in effect and version 2 announced")
    return {"admin": admin, "marks": marks, "secret_sp": secret_sp, "tricky": tricky,
            "plain": plain, "v1": v1, "v2": v2}


def public_forms(srv):
    """Every public form, as (label, response)."""
    forms = [
        ("json", get(srv, PUBLIC)),
        ("json de", get(srv, PUBLIC, params={"lang": "de"})),
        ("json en", get(srv, PUBLIC, params={"lang": "en"})),
        ("json format=json", get(srv, PUBLIC, params={"format": "json"})),
        ("csv de", get(srv, PUBLIC, params={"format": "csv", "lang": "de"})),
        ("csv en", get(srv, PUBLIC, params={"format": "csv", "lang": "en"})),
        ("csv via Accept", get(srv, PUBLIC, headers={"Accept": "text/csv"})),
        ("atom", get(srv, PUBLIC + "/feed.atom")),
        ("html de", get(srv, "/subprocessors", params={"lang": "de"})),
        ("html en", get(srv, "/subprocessors", params={"lang": "en"})),
        ("html Accept-Language de", get(srv, "/subprocessors", headers={"Accept-Language": "de"})),
        ("versions", get(srv, PUBLIC + "/versions")),
    ]
    versions = ok(forms[-1][1]).json()["items"]
    for v in versions:
        forms.append((f"version {v['version']}", get(srv, f"{PUBLIC}/versions/{v['version']}")))
    return forms


# ---------------------------------------------------------------------------
# only public fields


def test_no_internal_field_in_any_public_form(pub_server, world):
    marks = world["marks"]
    assert len(marks) >= 25, sorted(marks)
    forms = public_forms(pub_server)
    assert len(forms) >= 14
    leaks = []
    for label, resp in forms:
        ok(resp)
        text = resp.content.decode("utf-8")
        headers = "\n".join(f"{k}: {v}" for k, v in resp.headers.items())
        for field, needle in marks.items():
            if needle in text or needle in headers:
                leaks.append(f"{field} ({needle!r}) in the {label} form")
        # not vacuous: the public entry itself is there in every form
        assert "Sekura Datendienste GmbH" in text, f"{label}: the listed subprocessor is missing"
    assert not leaks, "internal values in public forms:\n" + "\n".join(leaks)


def test_public_json_entries_have_only_public_keys(pub_server, world):
    body = ok(get(pub_server, PUBLIC), "application/json").json()
    assert set(body) == {"version", "effective_at", "published_at", "items", "upcoming", "links"}
    for item in body["items"]:
        assert set(item) <= PUBLIC_KEYS, set(item) - PUBLIC_KEYS
    for up in body["upcoming"]:
        required = {"version", "effective_at", "published_at", "objection_deadline", "summary", "changes"}
        optional = {"changes_against", "replaces", "override_notice", "override_reason"}
        assert required <= set(up) <= required | optional, up
        for entry in up["changes"]["added"] + up["changes"]["removed"]:
            assert set(entry) <= PUBLIC_KEYS
        for change in up["changes"]["changed"]:
            assert {f["field"] for f in change["fields"]} <= PUBLIC_KEYS
    names = [i["legal_name"] for i in body["items"]]
    assert "Sekura Datendienste GmbH" in names
    assert not any(n.startswith("SECRET-") for n in names)


def test_public_json_content(pub_server, world):
    v1, v2 = world["v1"], world["v2"]
    both = ok(get(pub_server, PUBLIC)).json()
    assert both["version"] == 1
    assert both["effective_at"] == v1["effective_at"]
    assert both["published_at"] == v1["published_at"]
    assert [i["id"] for i in both["items"]] == [i["id"] for i in v1["items"]]
    assert both["items"] == v1["items"], "without ?lang the {de,en} objects stay"
    (up,) = both["upcoming"]
    assert up["version"] == 2 and up["effective_at"] == v2["effective_at"]
    assert up["objection_deadline"] == v2["objection_deadline"]
    assert up["summary"] == {"de": "Zweck geändert", "en": "Purpose changed"}
    (change,) = up["changes"]["changed"]
    assert change["id"] == world["secret_sp"]["id"]
    assert [f["field"] for f in change["fields"]] == ["purpose"]
    for lang in ("de", "en"):
        loc = ok(get(pub_server, PUBLIC, params={"lang": lang})).json()
        assert [i["id"] for i in loc["items"]] == [i["id"] for i in v1["items"]]
        for item, src in zip(loc["items"], v1["items"]):
            assert item["purpose"] == src["purpose"][lang]
            if "description" in src:
                assert item["description"] == src["description"][lang]
        assert loc["upcoming"][0]["summary"] == v2["summary"][lang]
        field = loc["upcoming"][0]["changes"]["changed"][0]["fields"][0]
        assert field["after"] == {"de": "Datenhaltung und Auswertung",
                                  "en": "Data storage and analytics"}[lang]
    links = both["links"]
    for key in ("csv", "atom", "html", "versions"):
        assert_status(get(pub_server, links[key]), 200)


def test_versions_list_and_detail(pub_server, world):
    body = ok(get(pub_server, PUBLIC + "/versions"), "application/json").json()
    numbers = [v["version"] for v in body["items"]]
    assert numbers == sorted(numbers, reverse=True) and numbers[-1] == 1
    status = {v["version"]: v["status"] for v in body["items"]}
    assert status[1] == "in_effect" and status[2] == "upcoming"
    one = ok(get(pub_server, PUBLIC + "/versions/1")).json()
    assert one["version"] == 1 and one["status"] == "in_effect"
    assert one["items"] == world["v1"]["items"]
    assert one["changes"] == world["v1"]["diff"]
    two = ok(get(pub_server, PUBLIC + "/versions/2")).json()
    assert two["changes"] == world["v2"]["diff"] and two["status"] == "upcoming"
    for bad in ("0", "999", "abc", "1x"):
        assert_problem(get(pub_server, f"{PUBLIC}/versions/{bad}"), 404, "not-found")


# ---------------------------------------------------------------------------
# caching


CACHED_FORMS = [
    ("json", PUBLIC, None),
    ("json de", PUBLIC, {"lang": "de"}),
    ("csv", PUBLIC, {"format": "csv"}),
    ("atom", PUBLIC + "/feed.atom", None),
    ("html", "/subprocessors", {"lang": "de"}),
    ("versions", PUBLIC + "/versions", None),
    ("version 1", PUBLIC + "/versions/1", None),
]


@pytest.mark.parametrize("label, path, params", CACHED_FORMS, ids=[c[0] for c in CACHED_FORMS])
def test_conditional_get(pub_server, world, label, path, params):
    first = ok(get(pub_server, path, params=params))
    etag, last_modified = first.headers.get("ETag"), first.headers.get("Last-Modified")
    assert etag and etag.startswith('"') and etag.endswith('"'), describe(first)
    assert last_modified and last_modified.endswith(" GMT"), describe(first)
    cache_control = first.headers.get("Cache-Control", "")
    assert "public" in cache_control and "max-age=" in cache_control, cache_control

    not_modified = get(pub_server, path, params=params, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304, describe(not_modified)
    assert not_modified.content == b""
    assert not_modified.headers.get("ETag") == etag

    weak_list = get(pub_server, path, params=params, headers={"If-None-Match": f'"nope", {etag}'})
    assert weak_list.status_code == 304, describe(weak_list)

    since = get(pub_server, path, params=params, headers={"If-Modified-Since": last_modified})
    assert since.status_code == 304, describe(since)
    assert since.content == b""

    other = get(pub_server, path, params=params, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == first.content, describe(other)
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    both = get(pub_server, path, params=params,
               headers={"If-None-Match": '"something-else"', "If-Modified-Since": last_modified})
    assert both.status_code == 200, describe(both)
    old = get(pub_server, path, params=params,
              headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert old.status_code == 200, describe(old)


def test_representations_have_distinct_etags(pub_server, world):
    tags = {}
    for label, path, params in CACHED_FORMS:
        tags[label] = ok(get(pub_server, path, params=params)).headers["ETag"]
    assert len(set(tags.values())) == len(tags), tags
    # the CSV's ETag is not accepted for the JSON
    resp = get(pub_server, PUBLIC, headers={"If-None-Match": tags["csv"]})
    assert resp.status_code == 200, describe(resp)


# ---------------------------------------------------------------------------
# CSV


@pytest.mark.parametrize("lang", ["de", "en"])
def test_csv_equals_json(pub_server, world, lang):
    items = ok(get(pub_server, PUBLIC, params={"lang": lang})).json()["items"]
    resp = ok(get(pub_server, PUBLIC, params={"format": "csv", "lang": lang}), "text/csv")
    assert "charset=utf-8" in resp.headers["Content-Type"].lower()
    text = resp.content.decode("utf-8")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), "RFC 4180: CRLF lines"
    rows = parse_csv(text)
    assert rows[0] == CSV_COLUMNS
    records = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert all(len(r) == len(CSV_COLUMNS) for r in rows)
    assert [r["id"] for r in records] == [i["id"] for i in items]
    for rec, item in zip(records, items):
        assert rec["legal_name"] == item["legal_name"]
        assert rec["trading_name"] == item.get("trading_name", "")
        assert rec["category"] == item["category"]
        assert rec["hq_country"] == item["hq_country"]
        assert rec["purpose"] == item["purpose"]
        assert rec["data_categories"].split(";") == item["data_categories"]
        assert rec["data_subjects"].split(";") == item["data_subjects"]
        assert rec["website"] == item.get("website", "")
        assert rec["certifications"] == "; ".join(c["name"] for c in item.get("certifications", []))
        dpf = item.get("dpf_participating")
        assert rec["dpf_participating"] == ("" if dpf is None else str(dpf).lower())
        for loc in item["locations"]:
            assert loc["country"] in rec["locations"]
    assert any('"Daten"' in r["legal_name"] for r in records), "the tricky name round-trips"


def test_csv_read_by_a_spreadsheet(pub_server, world):
    """LibreOffice (readers.py) reads the same rows as Python's csv module, the
    umlauts, quotes and commas intact, and no cell is a formula."""
    served = {lang: ok(get(pub_server, PUBLIC, params={"format": "csv", "lang": lang}), "text/csv")
              for lang in ("de", "en")}
    sheets = spreadsheet_cells({lang: resp.content for lang, resp in served.items()})
    for lang, resp in served.items():
        rows = parse_csv(resp.content.decode("utf-8"))
        cells = sheets[lang]
        assert not [v for row in cells for v, t in row if t == "f"], f"{lang}: a formula"
        assert as_text(cells) == rows
        assert len(rows) > 3 and any("Müller" in r[1] and '"Daten"' in r[1] for r in rows)


def test_csv_negotiation(pub_server, world):
    de = ok(get(pub_server, PUBLIC, headers={"Accept": "text/csv", "Accept-Language": "de-DE,de;q=0.9"}),
            "text/csv")
    assert "Datensicherung" in de.text
    en = ok(get(pub_server, PUBLIC, headers={"Accept": "text/csv"}), "text/csv")
    assert "Backup, " in en.text
    assert "Accept" in en.headers.get("Vary", "")
    as_json = ok(get(pub_server, PUBLIC, headers={"Accept": "application/json"}), "application/json")
    as_json.json()
    forced = ok(get(pub_server, PUBLIC, params={"format": "json"}, headers={"Accept": "text/csv"}),
                "application/json")
    forced.json()


# ---------------------------------------------------------------------------
# Atom


def check_atom(srv, text, expected_numbers):
    feed = feedparser.parse(text)
    assert feed.bozo == 0, f"feedparser: {feed.get('bozo_exception')!r}"
    assert feed.version == "atom10", feed.version
    assert feed.feed.get("title") and feed.feed.get("id") and feed.feed.get("updated")
    entries = feed.entries
    assert len(entries) == len(expected_numbers), [e.id for e in entries]
    ids = [e.id for e in entries]
    assert len(set(ids)) == len(ids), f"entry ids are not unique: {ids}"

    doc = etree.fromstring(text.encode("utf-8"))
    schema = atom_schema()
    assert schema.validate(doc), f"RelaxNG (RFC 4287): {schema.error_log}"
    # RFC 4287 4.1.1: an author for the feed, or for every entry.
    has_feed_author = doc.find(f"{{{ATOM_NS}}}author") is not None
    for entry in doc.findall(f"{{{ATOM_NS}}}entry"):
        assert has_feed_author or entry.find(f"{{{ATOM_NS}}}author") is not None
    return feed


def test_atom_feed(pub_server, world):
    resp = ok(get(pub_server, PUBLIC + "/feed.atom"), "application/atom+xml")
    admin = world["admin"]
    numbers = sorted((p["number"] for p in admin.get(PUBS).json()["items"]), reverse=True)
    feed = check_atom(pub_server, resp.text, numbers)
    # One entry per publication, newest first, each pointing at its version.
    for entry, number in zip(feed.entries, numbers):
        assert entry.id.endswith(f"/public/v1/subprocessors/versions/{number}"), (
            f"entry for publication {number} has id {entry.id} (title {entry.title!r})")
        assert f"Version {number}," in entry.title, entry.title
        href = next(link.href for link in entry.links if link.rel == "alternate")
        target = ok(get(pub_server, href.replace(pub_server.url, "")))
        assert target.json()["version"] == number
        pub = admin.get(f"{PUBS}/{number}").json()
        assert pub["summary"]["en"] in entry.summary, (number, entry.summary)
        assert pub["effective_at"] in entry.title, (number, entry.title)


def test_atom_rng_rejects_an_invalid_feed():
    """The schema is not a rubber stamp."""
    schema = atom_schema()
    good = (f'<feed xmlns="{ATOM_NS}"><title>t</title><id>urn:x</id>'
            '<updated>2026-01-01T00:00:00Z</updated><author><name>a</name></author>'
            '<entry><title>e</title><id>urn:y</id><updated>2026-01-01T00:00:00Z</updated>'
            '</entry></feed>')
    assert schema.validate(etree.fromstring(good)), schema.error_log
    for broken in (good.replace("<title>e</title>", ""),
                   good.replace("2026-01-01T00:00:00Z</updated></entry>", "today</updated></entry>"),
                   good.replace("<id>urn:x</id>", "")):
        assert not schema.validate(etree.fromstring(broken))


# ---------------------------------------------------------------------------
# HTML language negotiation


@pytest.mark.parametrize("params, headers, lang", [
    ({"lang": "de"}, {}, "de"),
    ({"lang": "en"}, {}, "en"),
    ({}, {"Accept-Language": "de-DE,de;q=0.9,en;q=0.8"}, "de"),
    ({}, {"Accept-Language": "fr-FR, en;q=0.5"}, "en"),
    ({}, {}, "en"),
    ({"lang": "de"}, {"Accept-Language": "en"}, "de"),
])
def test_html_language(pub_server, world, params, headers, lang):
    resp = ok(get(pub_server, "/subprocessors", params=params, headers=headers), "text/html")
    assert f'<html lang="{lang}">' in resp.text
    assert resp.headers.get("Content-Language") == lang
    assert "Accept-Language" in resp.headers.get("Vary", "")
    other = "en" if lang == "de" else "de"
    assert f'href="?lang={other}"' in resp.text, "a link to the other language"
    lowered = resp.text.lower()
    assert "<script" not in lowered, "readable without JavaScript"
    for external in (" src=", 'rel="stylesheet"', "@import", "url("):
        assert external not in lowered, f"no external assets: {external}"


# ---------------------------------------------------------------------------
# query validation


@pytest.mark.parametrize("path, params", [
    (PUBLIC, {"lang": "fr"}),
    (PUBLIC, {"lang": ""}),
    ("/subprocessors", {"lang": "fr"}),
    (PUBLIC, {"format": "xml"}),
    (PUBLIC, {"page": "2"}),
    (PUBLIC + "/versions", {"lang": "de"}),
    (PUBLIC + "/versions", {"foo": "1"}),
    (PUBLIC + "/versions/1", {"foo": "1"}),
    (PUBLIC + "/feed.atom", {"foo": "1"}),
    ("/subprocessors", {"format": "csv"}),
])
def test_bad_query_is_400(pub_server, world, path, params):
    assert_problem(get(pub_server, path, params=params), 400, "malformed-request")


def test_public_paths_need_no_token(pub_server, world):
    for path in (PUBLIC, PUBLIC + "/versions", PUBLIC + "/versions/1", PUBLIC + "/feed.atom",
                 "/subprocessors"):
        assert_status(get(pub_server, path), 200)


# ---------------------------------------------------------------------------
# before any publication; the rate limit (own servers)


def test_no_publication_yet(make_server):
    srv = make_server()
    wait_public_ready(srv)
    body = ok(get(srv, PUBLIC), "application/json").json()
    assert body["version"] is None and body["effective_at"] is None
    assert body["items"] == [] and body["upcoming"] == []
    for lang in ("de", "en"):
        loc = ok(get(srv, PUBLIC, params={"lang": lang})).json()
        assert loc["version"] is None and loc["items"] == []
    rows = parse_csv(ok(get(srv, PUBLIC, params={"format": "csv"}), "text/csv").text)
    assert rows == [CSV_COLUMNS]
    assert ok(get(srv, PUBLIC + "/versions")).json()["items"] == []
    assert_problem(get(srv, PUBLIC + "/versions/1"), 404, "not-found")
    check_atom(srv, ok(get(srv, PUBLIC + "/feed.atom"), "application/atom+xml").text, [])
    html = ok(get(srv, "/subprocessors", params={"lang": "de"}), "text/html").text
    assert '<html lang="de">' in html and "<h1>" in html
    assert "data-id=" not in html
    # a subprocessor alone does not make a public list
    srv.api().create_sp(minimal_body(status="active"))
    time.sleep(0.5)
    assert ok(get(srv, PUBLIC)).json()["items"] == []


def test_rate_limit_429(make_server):
    srv = make_server(extra_env={"SUBREG_RATE_LIMIT_EXEMPT": "", "SUBREG_PUBLIC_RATE_PER_MIN": "60"})
    wait_public_ready(srv, interval=0.4)  # a few requests of the burst allowance
    session = requests.Session()
    statuses, limited = [], None
    for i in range(40):
        path = PUBLIC if i % 2 == 0 else "/subprocessors"
        resp = session.get(srv.url + path, timeout=10)
        statuses.append(resp.status_code)
        if resp.status_code == 429 and limited is None:
            limited = resp
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[0] == 200, statuses
    assert limited is not None, f"no 429 after a burst of 40: {statuses}"
    assert statuses.count(200) <= 15, f"burst allowance too large for 60/min: {statuses}"
    assert_problem(limited, 429, "rate-limited")
    retry_after = limited.headers.get("Retry-After")
    assert retry_after and retry_after.isdigit() and 1 <= int(retry_after) <= 60, describe(limited)
    # other paths are not limited
    assert_status(session.get(srv.url + "/healthz", timeout=10), 200)
    assert_status(srv.api(roles=["reader"]).get(PUBS), 200)
    # after Retry-After, the client is served again
    time.sleep(int(retry_after) + 0.3)
    assert_status(session.get(srv.url + PUBLIC, timeout=10), 200)


# ---------------------------------------------------------------------------
# last: publishes once more on the module's stack


def test_etag_changes_after_a_new_publication(pub_server, world):
    admin = world["admin"]
    before = {label: ok(get(pub_server, path, params=params)).headers["ETag"]
              for label, path, params in CACHED_FORMS if label != "version 1"}
    admin.create_sp(minimal_body(legal_name=unique_name("Etag"), status="active"))
    pub = publish(admin, summary={"de": "Noch eine", "en": "One more"})
    wait_public_version(pub_server, lambda b: b["version"] == pub["number"],
                        f"version {pub['number']} in effect")
    for label, path, params in CACHED_FORMS:
        if label == "version 1":
            continue
        resp = get(pub_server, path, params=params, headers={"If-None-Match": before[label]})
        assert resp.status_code == 200, f"{label}: old ETag still matches: {describe(resp)}"
        assert resp.headers["ETag"] != before[label], label


def test_atom_entries_stay_unique_as_versions_take_effect(pub_server, world):
    """Every publication keeps its own entry id, however many have taken effect."""
    admin = world["admin"]
    for _ in range(2):
        admin.create_sp(minimal_body(legal_name=unique_name("Atom"), status="active"))
        pub = publish(admin, summary={"de": "Atom-Test", "en": "Atom test"})
        wait_public_version(pub_server, lambda b: b["version"] == pub["number"],
                            f"version {pub['number']} in effect")
    numbers = sorted((p["number"] for p in admin.get(PUBS).json()["items"]), reverse=True)
    assert len(numbers) >= 4
    feed = check_atom(pub_server, ok(get(pub_server, PUBLIC + "/feed.atom")).text, numbers)
    expected = [f"{pub_server.url}/public/v1/subprocessors/versions/{n}" for n in numbers]
    assert [e.id for e in feed.entries] == expected


def test_if_modified_since_a_later_date_is_304(pub_server, world):
    """RFC 9110 13.1.3: not modified since a date at or after Last-Modified."""
    first = ok(get(pub_server, PUBLIC))
    last_modified = first.headers["Last-Modified"]
    later = (dt.datetime.strptime(last_modified, "%a, %d %b %Y %H:%M:%S GMT")
             + dt.timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    resp = get(pub_server, PUBLIC, headers={"If-Modified-Since": later})
    assert resp.status_code == 304, (
        f"If-Modified-Since {later} (Last-Modified {last_modified}): {describe(resp)}")


def test_last_modified_moves_when_a_version_takes_effect(pub_server, world):
    """The list in effect changes when a scheduled version takes effect, without a
    new publication: a client revalidating with If-Modified-Since alone must get
    the new list, not 304."""
    admin = world["admin"]
    admin.create_sp(minimal_body(legal_name=unique_name("Scheduled"), status="active"))
    pub = publish(admin, summary={"de": "Gleich", "en": "Soon"}, effective_at=iso_in(seconds=3))
    before = wait_public_version(pub_server, lambda b: any(u["version"] == pub["number"]
                                                       for u in b["upcoming"]),
                                 f"version {pub['number']} announced")
    resp = ok(get(pub_server, PUBLIC))
    last_modified = resp.headers["Last-Modified"]
    assert resp.json()["version"] == before["version"] != pub["number"]
    wait_public_version(pub_server, lambda b: b["version"] == pub["number"],
                        f"version {pub['number']} in effect", timeout=8)
    resp = get(pub_server, PUBLIC, headers={"If-Modified-Since": last_modified})
    assert resp.status_code == 200, (
        f"version {pub['number']} took effect, but If-Modified-Since {last_modified} "
        f"still gives {describe(resp)}")
    assert resp.json()["version"] == pub["number"]
    assert resp.headers["Last-Modified"] != last_modified


# ---------------------------------------------------------------------------
# a replaced announcement and a shortened notice, in every public form (issue 11)


def test_a_replaced_announcement_in_every_public_form(make_server):
    """Version 2 is announced, version 3 is published before 2 takes effect: 3
    replaces 2 (JSON, versions, Atom, HTML all say so), 2 is no longer upcoming
    and never takes effect; version 3 on shortened notice carries its reason."""
    srv = make_server()
    wait_public_ready(srv)
    admin = srv.api(roles=["admin"])
    first = admin.create_sp(minimal_body(legal_name=unique_name("Erste"), status="active"))
    v1 = publish(admin, summary={"de": "Erste Fassung", "en": "First version"})
    second = admin.create_sp(minimal_body(legal_name=unique_name("Zweite"), status="active"))
    v2 = publish(admin, summary={"de": "Zweite", "en": "Second"}, effective_at=iso_in(seconds=3))
    third = admin.create_sp(minimal_body(legal_name=unique_name("Dritte"), status="active"))
    customer = admin.post("/v1/customers", {"name": unique_name("Kunde"), "notice_days": 30,
                                            "objection_days": 14})
    assert_status(customer, 201)
    reason = {"de": "Anbieterwechsel wegen Insolvenz", "en": "Provider change after an insolvency"}
    v3 = publish(admin, summary={"de": "Dritte", "en": "Third"}, effective_at=iso_in(days=5),
                 override_notice=True, override_reason=reason)
    assert (v1["number"], v2["number"], v3["number"]) == (1, 2, 3)
    assert v3["replaces"] == 2 and v3["diff_against"] == 1
    assert sorted(a["id"] for a in v3["diff"]["added"]) == sorted([second["id"], third["id"]])
    time.sleep(3.5)  # past version 2's effective_at: it must not take effect

    body = wait_public_version(srv, lambda b: [u["version"] for u in b["upcoming"]] == [3],
                               "only version 3 announced")
    assert body["version"] == 1 and [i["id"] for i in body["items"]] == [first["id"]]
    (up,) = body["upcoming"]
    assert up["replaces"] == 2 and up["changes_against"] == 1
    assert up["override_notice"] is True and up["override_reason"] == reason
    en = ok(get(srv, PUBLIC, params={"lang": "en"})).json()
    assert en["upcoming"][0]["override_reason"] == reason["en"]

    versions = {v["version"]: v for v in ok(get(srv, PUBLIC + "/versions")).json()["items"]}
    assert versions[2]["status"] == "replaced" and versions[2]["replaced_by"] == 3
    assert versions[3]["status"] == "upcoming" and versions[3]["replaces"] == 2
    assert versions[1]["status"] == "in_effect"
    detail = ok(get(srv, PUBLIC + "/versions/2")).json()
    assert detail["status"] == "replaced" and detail["replaced_by"] == 3

    feed = check_atom(srv, ok(get(srv, PUBLIC + "/feed.atom"), "application/atom+xml").text, [3, 2, 1])
    e3, e2, _ = feed.entries
    assert e2.title == "Version 2, replaced by version 3 before it took effect", e2.title
    assert "effective" not in e2.title and e2.updated == v3["published_at"]
    assert "Replaced by version 3" in e2.summary
    assert "Replaces the announcement of version 2" in e3.summary
    assert f"Reason: {reason['en']}" in e3.summary
    related = [link.href for link in e3.links if link.rel == "related"]
    assert related == [f"{srv.url}/public/v1/subprocessors/versions/2"]

    for lang, replaces, replaced, shortened in (
            ("en", "Replaces the announcement of version 2",
             "replaced by version 3, did not take effect", "The notice period was shortened. Reason: "),
            ("de", "Ersetzt die Ankündigung von Version 2",
             "ersetzt durch Version 3, nicht wirksam geworden", "Die Ankündigungsfrist wurde verkürzt. Grund: ")):
        html = ok(get(srv, "/subprocessors", params={"lang": lang}), "text/html").text
        upcoming = html[html.index('id="upcoming"'):html.index('id="history"')]
        history = html[html.index('id="history"'):]
        assert upcoming.count("<article>") == 1 and "<h3>Version 3" in upcoming, upcoming
        assert replaces in upcoming and shortened + reason[lang] in upcoming
        assert replaced in history
    # version 2 never took effect: no record, and the list in effect is still version 1
    assert "effective_recorded_at" not in admin.get(f"{PUBS}/2").json()
    assert ok(get(srv, PUBLIC)).json()["version"] == 1


def test_a_version_in_effect_on_shortened_notice_says_so(make_server):
    srv = make_server()
    wait_public_ready(srv)
    admin = srv.api(roles=["admin"])
    admin.create_sp(minimal_body(legal_name=unique_name("Alt"), status="active"))
    publish(admin, summary={"de": "Erste", "en": "First"})
    assert_status(admin.post("/v1/customers", {"name": unique_name("Kunde"), "notice_days": 30,
                                               "objection_days": 14}), 201)
    admin.create_sp(minimal_body(legal_name=unique_name("Neu"), status="active"))
    reason = {"de": "Ausfall des bisherigen Rechenzentrums", "en": "Outage of the old data centre"}
    v2 = publish(admin, summary={"de": "Sofort", "en": "At once"}, override_notice=True, override_reason=reason)
    body = wait_public_version(srv, lambda b: b["version"] == v2["number"], "version 2 in effect")
    assert body["override_notice"] is True and body["override_reason"] == reason
    de = ok(get(srv, PUBLIC, params={"lang": "de"})).json()
    assert de["override_reason"] == reason["de"]
    html = ok(get(srv, "/subprocessors", params={"lang": "en"})).text
    current = html[:html.index('id="upcoming"')]
    assert f'<p class="override">The notice period was shortened. Reason: {reason["en"]}</p>' in current
    # a regular version after it (a removal: no notice needed): no note any more
    old = body["items"][0]
    assert old["legal_name"].startswith("Alt")
    sp = admin.get_sp(old["id"])
    admin.patch_sp(sp["id"], {"status": "retired"}, sp["version"])
    v3 = publish(admin, summary={"de": "Regulär", "en": "Regular"})
    assert v3["override_notice"] is False
    body = wait_public_version(srv, lambda b: b["version"] == v3["number"], "version 3 in effect")
    assert "override_notice" not in body and "override_reason" not in body
    assert 'class="override"' not in ok(get(srv, "/subprocessors", params={"lang": "en"})).text.split('id="history"')[0]
