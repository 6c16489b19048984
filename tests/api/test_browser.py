"""The human page /subprocessors in a real browser (issue 4): headless
Chromium (the Debian package `chromium`, installed by scripts/bootstrap) loads
the page from the running service; the rendered table must match the public
JSON, the page must carry its accessibility basics, and a screenshot of each
language is saved under tests/out/.

A missing Chromium is a FAILURE, not a skip: the browser test is part of the
suite. Publications are global to a database, so this module runs on its own
stack (module-scoped).
"""

import datetime as dt
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import lxml.html
import pytest
import requests

from browser import chromium_binary, png_size, run_chromium
from helpers import (
    PUBLIC,
    assert_status,
    media_type,
    minimal_body,
    sp_body,
    wait_until,
)

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE.parent / "out"
LANGS = ["de", "en"]
SERVICES = [("erp", "ERP-Betrieb", "ERP operations"), ("newsletter", "Rundschreiben", "Newsletters")]


def text_of(el):
    return " ".join(el.text_content().split())


# ---------------------------------------------------------------------------
# the module's own stack with a published list


@pytest.fixture(scope="module")
def site(pub_server):
    """The module's own stack (`pub_server`) with version 1 of the list in
    effect and version 2 announced."""
    admin = pub_server.api(roles=["admin"], sub="web-publisher")
    for sid, de, en in SERVICES:
        assert_status(admin.post("/v1/services", {"id": sid, "name": {"de": de, "en": en}}), 201)
    entries = [
        sp_body(legal_name="Odoo S.A.", status="active"),
        minimal_body(legal_name="Müller Rechenzentrum GmbH", status="active",
                     purpose={"de": "Betrieb der Server in Nürnberg, tägliche Sicherung",
                              "en": "Running the servers in Nuremberg, daily backups"},
                     locations=[{"country": "DE", "region": "Nürnberg", "role": "hosting"},
                                {"country": "DE", "region": "Fürth", "role": "backup"}]),
        minimal_body(legal_name="Ökodruck Versand AG", status="active", hq_country="AT",
                     category="newsletter",
                     purpose={"de": "Versand von Rundschreiben an Kundinnen und Kunden",
                              "en": "Sending newsletters to customers"},
                     data_categories=["master_contact", "support_communication"],
                     locations=[{"country": "AT", "role": "processing"}]),
        minimal_body(legal_name="Zürcher Überwachungsdienste AG", status="active",
                     hq_country="CH", category="monitoring",
                     purpose={"de": "Überwachung der Verfügbarkeit", "en": "Availability monitoring"},
                     locations=[{"country": "CH", "region": "Zürich", "role": "processing"}]),
        minimal_body(legal_name="Hetzner Online GmbH", status="active"),
    ]
    # Odoo only for the ERP service, Ökodruck only for the newsletter; the rest for every service
    entries[0]["services"] = ["erp"]
    entries[2]["services"] = ["newsletter"]
    created = [admin.create_sp(b) for b in entries]
    resp = admin.post("/v1/publications", {"summary": {
        "de": "Erste Veröffentlichung der Liste", "en": "First publication of the list"}})
    assert_status(resp, 201)
    # An announced change, so that the page has upcoming changes and history.
    admin.create_sp(minimal_body(legal_name="Größenwahn Cloud GmbH", status="active",
                                 purpose={"de": "Speicherung von Dateien", "en": "File storage"}))
    hetzner = created[-1]
    admin.patch_sp(hetzner["id"], {"purpose": {"de": "Hosting der Server (Falkenstein)",
                                               "en": "Server hosting (Falkenstein)"}},
                   hetzner["version"])
    when = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    resp = admin.post("/v1/publications", {"effective_at": when, "summary": {
        "de": "Neuer Speicherdienst; Hetzner-Rechenzentrum präzisiert",
        "en": "New storage service; Hetzner data centre specified"}})
    assert_status(resp, 201)

    def ready():
        body = requests.get(pub_server.url + PUBLIC, timeout=10).json()
        return body if body["version"] == 1 and body["upcoming"] else None

    wait_until(ready, 5, interval=0.1, message="version 1 in effect, version 2 announced")
    return pub_server


@pytest.fixture(scope="module")
def rendered(site):
    """lang -> (page URL, rendered DOM as Chromium dumps it)."""
    out = {}
    for lang in LANGS:
        url = f"{site.url}/subprocessors?lang={lang}"
        out[lang] = (url, run_chromium(["--dump-dom"], url))
    return out


def public_json(site, lang):
    resp = requests.get(site.url + PUBLIC, params={"lang": lang}, timeout=10)
    assert resp.status_code == 200
    return resp.json()


# ---------------------------------------------------------------------------
# tests


def test_chromium_is_installed():
    chromium_binary()


@pytest.mark.parametrize("lang", LANGS)
def test_rendered_table_matches_json(site, rendered, lang):
    url, dom = rendered[lang]
    doc = lxml.html.fromstring(dom)
    body = public_json(site, lang)
    assert body["items"], "nothing published"

    assert doc.get("lang") == lang, f"<html lang={doc.get('lang')!r}>"
    tables = doc.xpath("//section[@aria-labelledby='current']//table")
    assert len(tables) == 1, "one table of the subprocessors in effect"
    current = tables[0]
    rows = current.xpath(".//tbody/tr[@data-id]")
    assert [r.get("data-id") for r in rows] == [i["id"] for i in body["items"]]
    for row, item in zip(rows, body["items"]):
        (header,) = row.xpath("./th")
        assert header.get("scope") == "row"
        assert item["legal_name"] in text_of(header), (text_of(header), item["legal_name"])
        cells = [text_of(td) for td in row.xpath("./td")]
        assert item["purpose"] in cells, (cells, item["purpose"])


@pytest.mark.parametrize("lang", LANGS)
def test_page_structure_and_links(site, rendered, lang):
    url, dom = rendered[lang]
    doc = lxml.html.fromstring(dom)
    h1 = doc.xpath("//h1")
    assert len(h1) == 1 and text_of(h1[0]), "exactly one non-empty h1"
    expected_h1 = {"de": "Unterauftragsverarbeiter", "en": "Subprocessors"}[lang]
    assert text_of(h1[0]) == expected_h1
    assert doc.xpath("//title") and text_of(doc.xpath("//title")[0])
    captions = doc.xpath("//section[@aria-labelledby='current']//table/caption")
    assert len(captions) == 1 and text_of(captions[0])
    ths = doc.xpath("//th")
    assert ths and all(th.get("scope") in ("col", "row") for th in ths), \
        [lxml.html.tostring(th)[:80] for th in ths if th.get("scope") not in ("col", "row")]
    assert len(doc.xpath("//section[@aria-labelledby='current']//thead//th[@scope='col']")) >= 3
    for section in ("current", "upcoming", "history"):
        assert doc.xpath(f"//h2[@id='{section}']"), f"a heading for {section}"
    assert not doc.xpath("//script"), "readable without JavaScript"

    # links to the JSON, CSV and Atom forms, and they work
    hrefs = [urljoin(url, a.get("href")) for a in doc.xpath("//a[@href]")]
    forms = {}
    for href in hrefs:
        parts = urlsplit(href)
        query = parse_qs(parts.query)
        if parts.path == PUBLIC and query.get("format") == ["csv"]:
            forms.setdefault("csv", href)
        elif parts.path == PUBLIC and "format" not in query:
            forms.setdefault("json", href)
        elif parts.path == PUBLIC + "/feed.atom":
            forms.setdefault("atom", href)
    assert set(forms) == {"json", "csv", "atom"}, hrefs
    expect = {"json": "application/json", "csv": "text/csv", "atom": "application/atom+xml"}
    for kind, href in forms.items():
        resp = requests.get(href, timeout=10)
        assert resp.status_code == 200 and media_type(resp) == expect[kind], (kind, href)
    assert parse_qs(urlsplit(forms["csv"]).query).get("lang") == [lang]
    # the other language is one link away
    other = "en" if lang == "de" else "de"
    switch = [a for a in doc.xpath("//a[@href]")
              if parse_qs(urlsplit(urljoin(url, a.get("href"))).query).get("lang") == [other]
              and urlsplit(urljoin(url, a.get("href"))).path == "/subprocessors"]
    assert switch and switch[0].get("lang") == other


def test_german_text_is_rendered_correctly(rendered):
    url, dom = rendered["de"]
    doc = lxml.html.fromstring(dom)
    text = text_of(doc)
    for phrase in ("Unterauftragsverarbeiter", "Angekündigte Änderungen", "Müller Rechenzentrum GmbH",
                   "Ökodruck Versand AG", "Zürcher Überwachungsdienste AG", "tägliche Sicherung",
                   "Größenwahn Cloud GmbH"):
        assert phrase in text, f"{phrase!r} not in the rendered German page"
    assert "Ã" not in text, "mojibake: UTF-8 read as Latin-1"


def test_page_names_the_versions(site, rendered):
    """The version in effect, the announced one and the history carry the
    publication numbers of the public JSON."""
    body = public_json(site, "en")
    url, dom = rendered["en"]
    doc = lxml.html.fromstring(dom)
    intro = [p for p in doc.xpath("//header//p") if p.xpath("./strong")]
    assert intro, "the page names the version in effect"
    assert text_of(intro[0].xpath("./strong")[0]) == str(body["version"]), (
        f"page says version {text_of(intro[0].xpath('./strong')[0])}, "
        f"the JSON says {body['version']}")
    headings = doc.xpath("//section[@aria-labelledby='upcoming']//h3")
    assert len(headings) == len(body["upcoming"])
    for h, up in zip(headings, body["upcoming"]):
        heading = text_of(h)
        assert f"Version {up['version']}:" in heading, (heading, up["version"])
        # people read the date, machines the <time datetime> attribute
        assert h.xpath(".//time/@datetime") == [up["effective_at"]]
        when = dt.datetime.strptime(up["effective_at"], "%Y-%m-%dT%H:%M:%SZ")
        assert f"{when.day} {when.strftime('%b')} {when.year}, {when.strftime('%H:%M')} UTC" in heading, heading
    history = [a.get("href") for a in doc.xpath("//section[@aria-labelledby='history']//a[@href]")]
    assert history == [f"{PUBLIC}/versions/{body['version']}"], history


@pytest.mark.parametrize("lang", LANGS)
def test_screenshot(site, lang):
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"subprocessors-{lang}.png"
    if path.exists():
        path.unlink()
    url = f"{site.url}/subprocessors?lang={lang}"
    run_chromium([f"--screenshot={path}", "--window-size=1280,1600"], url)
    assert path.exists(), f"no screenshot at {path}"
    size = path.stat().st_size
    assert size > 10 * 1024, f"screenshot {path} is only {size} bytes"
    assert png_size(path) == (1280, 1600)


@pytest.mark.parametrize("lang", LANGS)
def test_service_selector_shows_one_service(site, rendered, lang):
    """The page's selector is a GET form: the URL it produces for a service
    gives that service's page, whose table is the service's JSON, and the
    heading names the service."""
    url, dom = rendered[lang]
    doc = lxml.html.fromstring(dom)
    (form,) = doc.xpath("//form[.//select[@name='service']]")
    assert form.get("method") == "get"
    (select,) = form.xpath(".//select[@name='service']")
    label = doc.xpath(f"//label[@for='{select.get('id')}']")
    assert label and text_of(label[0]), "the selector has a label"
    options = {o.get("value"): text_of(o) for o in select.xpath("./option")}
    names = {sid: (de if lang == "de" else en) for sid, de, en in SERVICES}
    assert options == {"": {"de": "Alle Dienste", "en": "All services"}[lang], **names}
    assert form.xpath(".//button[@type='submit']")
    # what submitting the form with "erp" chosen requests
    fields = [(i.get("name"), i.get("value")) for i in form.xpath(".//input[@name]")]
    query = urlencode([("service", "erp"), *fields])
    chosen = urljoin(url, form.get("action")) + "?" + query
    assert parse_qs(urlsplit(chosen).query) == {"service": ["erp"], "lang": [lang]}
    page = lxml.html.fromstring(run_chromium(["--dump-dom"], chosen))
    body = requests.get(site.url + PUBLIC, params={"service": "erp", "lang": lang}, timeout=10).json()
    rows = page.xpath("//section[@aria-labelledby='current']//tbody/tr[@data-id]")
    assert [r.get("data-id") for r in rows] == [i["id"] for i in body["items"]]
    assert "Odoo S.A." in [i["legal_name"] for i in body["items"]]
    assert "Ökodruck Versand AG" not in [i["legal_name"] for i in body["items"]]
    assert names["erp"] in text_of(page.xpath("//h1")[0])
    (selected,) = page.xpath("//select[@name='service']/option[@selected]")
    assert selected.get("value") == "erp"
