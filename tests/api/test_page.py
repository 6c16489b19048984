"""The page /subprocessors as people use it (issue 10 #4), with a long list
(200 subprocessors) and an announced change, in both languages, in headless
Chromium driven over the DevTools protocol (browser.py):

- axe-core (npm, the version pinned in scripts/lib.sh, installed by
  scripts/bootstrap) injected into the page: no violation of WCAG 2.0/2.1 A
  and AA, on a wide screen and at 320 px;
- at 320 px wide the body does not scroll sideways, every cell keeps its
  column's name (the rows stack), and a screenshot is saved under tests/out/;
- printed (the print stylesheet): the PDF (pdftotext, Debian's poppler-utils)
  has the list, the version in effect and its date, the announced version and
  its date, and none of the screen's navigation (the PDF is kept in tests/out/).

Publications are global to a database: the module runs on its own stack.
"""

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from browser import DevTools, png_size
from helpers import PUBLIC, assert_status, minimal_body, wait_until

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "tests" / "out"
CACHE = Path(os.environ.get("SUBREG_CACHE", Path.home() / ".cache" / "subreg"))
AXE_VERSION = re.search(r"^AXE_VERSION=(\S+)$", (ROOT / "scripts" / "lib.sh").read_text(), re.M).group(1)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
LANGS = ["de", "en"]
COUNT = 200
# What the test fills the list with: long words, umlauts, several locations.
CATEGORIES = ["hosting", "monitoring", "email", "newsletter", "payment"]
SERVICES = [("managed-it", "Betreute Arbeitsplätze und Server", "Managed workplaces and servers"),
            ("erp", "ERP-Betrieb", "ERP operations")]


def axe_source():
    path = CACHE / "npm" / f"axe-core-{AXE_VERSION}" / "node_modules" / "axe-core" / "axe.min.js"
    if not path.exists():
        pytest.fail(f"axe-core {AXE_VERSION} is required: scripts/bootstrap installs it ({path})",
                    pytrace=False)
    return path.read_text()


def human_date(iso, lang):
    when = dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
    if lang == "de":
        return when.strftime("%d.%m.%Y, %H:%M UTC")
    return f"{when.day} {when.strftime('%b %Y, %H:%M')} UTC"


@pytest.fixture(scope="module")
def long_site(pub_server):
    """200 subprocessors published as version 1 (in effect); one more and a
    changed purpose announced as version 2, effective in 14 days."""
    admin = pub_server.api(roles=["admin"], sub="page-publisher")
    # the page's service selector: two services, every other subprocessor serving only the first
    for sid, de, en in SERVICES:
        assert_status(admin.post("/v1/services", {"id": sid, "name": {"de": de, "en": en}}), 201)
    made = []
    for i in range(COUNT):
        made.append(admin.create_sp(minimal_body(
            **({"services": [SERVICES[0][0]]} if i % 2 else {}),
            legal_name=f"Datenverarbeitungsdienstleistungsgesellschaft Nr. {i:03d} GmbH" if i % 10 == 0
            else f"Übersee-Rechenzentrum {i:03d} AG",
            status="active", category=CATEGORIES[i % len(CATEGORIES)],
            purpose={"de": f"Betrieb und Überwachung der Systeme (Vorgang {i}), tägliche Sicherung",
                     "en": f"Running and monitoring the systems (task {i}), daily backups"},
            locations=[{"country": "DE", "region": "Nürnberg", "role": "hosting"},
                       {"country": "AT", "region": "Wien", "role": "backup"}])))
    assert_status(admin.post("/v1/publications", {"summary": {
        "de": "Vollständige Liste", "en": "Complete list"}}), 201)
    admin.create_sp(minimal_body(legal_name="Größenwahn Cloud GmbH", status="active",
                                 purpose={"de": "Speicherung von Dateien", "en": "File storage"}))
    admin.patch_sp(made[1]["id"], {"purpose": {"de": "Hosting (Falkenstein)", "en": "Hosting (Falkenstein)"}},
                   made[1]["version"])
    when = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_status(admin.post("/v1/publications", {"effective_at": when, "summary": {
        "de": "Neuer Speicherdienst", "en": "New storage service"}}), 201)

    def ready():
        body = requests.get(pub_server.url + PUBLIC, timeout=10).json()
        return body if body["version"] == 1 and body["upcoming"] else None

    body = wait_until(ready, 10, interval=0.2, message="version 1 in effect, version 2 announced")
    assert len(body["items"]) == COUNT
    return pub_server, body


@pytest.fixture(scope="module")
def browser():
    with DevTools() as devtools:
        yield devtools


def run_axe(browser):
    """axe's violations (rule, impact, help, the first nodes) and the number of
    rules that passed."""
    if browser.evaluate("typeof axe") == "undefined":
        browser.evaluate(axe_source())
    assert browser.evaluate("axe.version") == AXE_VERSION
    found = browser.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: %s}}).then(r => JSON.stringify({"
        "passes: r.passes.length, violations: r.violations.map(v => ({id: v.id, impact: v.impact, "
        "help: v.help, nodes: v.nodes.length, first: v.nodes.slice(0, 3).map(n => "
        "({target: n.target.join(' '), summary: n.failureSummary}))}))}))" % json.dumps(AXE_TAGS),
        await_promise=True)
    return json.loads(found)


@pytest.mark.parametrize("service", ["", "erp"])
@pytest.mark.parametrize("width", [1280, 320])
@pytest.mark.parametrize("lang", LANGS)
def test_axe_finds_no_wcag_violations(long_site, browser, lang, width, service):
    """The whole list and one service's (the selector on both)."""
    srv, _ = long_site
    browser.open(f"{srv.url}/subprocessors?lang={lang}&service={service}", width, 900)
    assert browser.evaluate("document.querySelectorAll('select[name=service] option').length") == 3
    result = run_axe(browser)
    assert result["passes"] >= 15, f"axe ran only {result['passes']} rules"
    assert not result["violations"], "axe-core %s, WCAG 2.1 AA, %s at %d px:\n%s" % (
        AXE_VERSION, lang, width, json.dumps(result["violations"], indent=1, ensure_ascii=False))


def test_axe_reports_what_breaks_the_rules(long_site, browser):
    """The check above can fail: in the same page, text that is too faint and an
    image without a text alternative are reported."""
    srv, _ = long_site
    browser.open(f"{srv.url}/subprocessors?lang=en", 1280, 900)
    browser.evaluate("document.querySelector('main').insertAdjacentHTML('afterbegin', "
                     "'<p style=\"color:#bbb\">faint</p><img src=\"data:image/gif;base64,"
                     "R0lGODlhAQABAAAAACw=\">')")
    ids = {v["id"] for v in run_axe(browser)["violations"]}
    assert {"color-contrast", "image-alt"} <= ids, ids


@pytest.mark.parametrize("lang", LANGS)
def test_page_fits_320_px(long_site, browser, lang):
    srv, body = long_site
    browser.open(f"{srv.url}/subprocessors?lang={lang}", 320, 800)
    widths = browser.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, "
                              "document.documentElement.clientWidth]")
    assert max(widths[:2]) <= 320 and widths[2] == 320, f"the body scrolls sideways: {widths}"
    # every row of the list is on the screen, none cut at the right edge, and each
    # cell shows its column's name before its text (the header row is hidden)
    rows = browser.evaluate(
        "Array.from(document.querySelectorAll('tbody tr')).map(tr => {const r = tr.getBoundingClientRect();"
        " return r.width > 0 && r.left >= 0 && r.right <= 320})")
    assert len(rows) == COUNT and all(rows), "rows wider than the screen"
    columns = browser.evaluate("Array.from(document.querySelectorAll('thead th')).map(th => th.textContent)")
    cells = browser.evaluate(
        "Array.from(document.querySelector('tbody tr').querySelectorAll('td')).map(td => "
        "[td.dataset.label, getComputedStyle(td, '::before').content])")
    assert [label for label, _ in cells] == columns[1:], (cells, columns)
    assert all(content == f'"{label}: "' for label, content in cells), cells
    assert browser.evaluate("getComputedStyle(document.querySelector('thead')).height") == "1px"
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"subprocessors-320-{lang}.png"
    browser.screenshot(path)
    assert png_size(path) == (320, 800) and path.stat().st_size > 5000


@pytest.mark.parametrize("lang", LANGS)
def test_page_prints_the_list_with_its_version_and_dates(long_site, browser, lang):
    srv, body = long_site
    browser.open(f"{srv.url}/subprocessors?lang={lang}", 1280, 900)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    pdf = OUT_DIR / f"subprocessors-print-{lang}.pdf"
    browser.pdf(pdf)
    binary = shutil.which("pdftotext")
    assert binary, "pdftotext is required: install poppler-utils (scripts/bootstrap does)"
    text = " ".join(subprocess.run([binary, "-raw", str(pdf), "-"], capture_output=True, text=True,
                                   timeout=60, check=True).stdout.split())
    version = {"de": "Version 1, gültig seit", "en": "Version 1, in effect since"}[lang]
    assert f"{version} {human_date(body['effective_at'], lang)}" in text, text[:600]
    (upcoming,) = body["upcoming"]
    assert f"Version 2: {'wirksam ab' if lang == 'de' else 'effective'} " \
           f"{human_date(upcoming['effective_at'], lang)}" in text
    missing = [i["legal_name"] for i in body["items"] if i["legal_name"] not in text]
    assert not missing, f"{len(missing)} subprocessors not on paper, e.g. {missing[:3]}"
    # the screen's navigation is not printed; where a link leads is
    for screen_only in ({"de": "English", "en": "Deutsch"}[lang], "Also as", "Auch als", "Alle Dienste",
                        "All services"):
        assert screen_only not in text, f"{screen_only!r} printed"


@pytest.mark.parametrize("lang", LANGS)
def test_the_dpa_annex_prints_with_its_version_on_every_page(long_site, browser, lang):
    """/subprocessors/annex (issue 13): the list in effect as a DPA annex. Printed
    (A4), every page is headed with the version and its effective date and counts
    the pages; every subprocessor is on paper; the announced version is not (an
    annex is what is agreed now); no WCAG violation on screen."""
    srv, body = long_site
    browser.open(f"{srv.url}/subprocessors/annex?lang={lang}", 1280, 900)
    result = run_axe(browser)
    assert not result["violations"], json.dumps(result["violations"], indent=1, ensure_ascii=False)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    pdf = OUT_DIR / f"subprocessors-annex-{lang}.pdf"
    browser.pdf(pdf)
    raw = subprocess.run([shutil.which("pdftotext"), "-raw", str(pdf), "-"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    pages = [" ".join(p.split()) for p in raw.split("\f") if p.strip()]
    assert len(pages) >= 3, f"200 subprocessors on {len(pages)} page(s)"
    when = human_date(body["effective_at"], lang)
    head = {"de": f"Unterauftragsverarbeiter, Version 1, gültig seit {when}",
            "en": f"Subprocessors, version 1, in effect since {when}"}[lang]
    for n, page in enumerate(pages, 1):
        assert head in page, f"page {n} has no running head: {page[:300]}"
        assert f"{'Seite' if lang == 'de' else 'Page'} {n} {'von' if lang == 'de' else 'of'} {len(pages)}" in page, \
            f"page {n}: {page[-200:]}"
    text = " ".join(pages)
    title = {"de": "Anlage zum Auftragsverarbeitungsvertrag", "en": "Annex to the data processing agreement"}[lang]
    assert title in pages[0]
    missing = [i["legal_name"] for i in body["items"] if i["legal_name"] not in text]
    assert not missing, f"{len(missing)} subprocessors not on paper, e.g. {missing[:3]}"
    assert "Größenwahn Cloud GmbH" not in text, "the announced version is not part of the annex"
    assert f"{srv.url}/subprocessors" in text  # where the current list is


def test_a_services_annex_names_the_service_on_every_page(long_site, browser):
    """The annex of one service's list (?service=): its title and the running head
    of every printed page name the service; only that service's subprocessors."""
    srv, body = long_site
    service = requests.get(srv.url + PUBLIC, params={"service": "erp", "lang": "de"}, timeout=10).json()
    browser.open(f"{srv.url}/subprocessors/annex?lang=de&service=erp", 1280, 900)
    assert not run_axe(browser)["violations"]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    pdf = OUT_DIR / "subprocessors-annex-erp-de.pdf"
    browser.pdf(pdf)
    raw = subprocess.run([shutil.which("pdftotext"), "-raw", str(pdf), "-"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    pages = [" ".join(p.split()) for p in raw.split("\f") if p.strip()]
    assert len(pages) >= 2
    for n, page in enumerate(pages, 1):
        assert "Dienst: ERP-Betrieb" in page, f"page {n} does not name the service: {page[:300]}"
    text = " ".join(pages)
    assert "für ERP-Betrieb" in pages[0]
    assert 0 < len(service["items"]) < len(body["items"])
    missing = [i["legal_name"] for i in service["items"] if i["legal_name"] not in text]
    assert not missing, missing[:3]
    assert text.count("Übersee-Rechenzentrum") == sum(1 for i in service["items"]
                                                      if i["legal_name"].startswith("Übersee-Rechenzentrum"))


@pytest.mark.parametrize("lang", LANGS)
def test_replaced_announcement_and_shortened_notice_pass_axe(make_server, browser, lang):
    """The notes a replacing version and a shortened notice add to the page (issue
    11): shown in the browser as the visible text, and no WCAG violation."""
    srv = make_server()
    admin = srv.api(roles=["admin"], sub="page-publisher")
    admin.create_sp(minimal_body(legal_name="Alpha Hosting GmbH", status="active"))
    assert_status(admin.post("/v1/publications", {"summary": {"de": "Erste", "en": "First"}}), 201)
    assert_status(admin.post("/v1/customers", {"name": "Kunde AG", "notice_days": 30, "objection_days": 14}), 201)
    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")
    admin.create_sp(minimal_body(legal_name="Beta Backup AG", status="active"))
    assert_status(admin.post("/v1/publications", {"effective_at": soon, "summary": {
        "de": "Neue Sicherung", "en": "New backup"}}), 201)
    admin.create_sp(minimal_body(legal_name="Gamma Mail GmbH", status="active"))
    reason = {"de": "Der bisherige Dienst endet vorzeitig", "en": "The old service ends early"}
    assert_status(admin.post("/v1/publications", {
        "effective_at": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "summary": {"de": "Neuer Mailversand", "en": "New mail delivery"},
        "override_notice": True, "override_reason": reason}), 201)
    wait_until(lambda: [u["version"] for u in requests.get(srv.url + PUBLIC, timeout=10).json()["upcoming"]]
               == [3], 10, interval=0.2, message="version 3 announced, replacing version 2")
    browser.open(f"{srv.url}/subprocessors?lang={lang}", 1280, 900)
    text = browser.evaluate("document.body.innerText")
    assert reason[lang] in text and {"de": "Ersetzt die Ankündigung von Version 2",
                                     "en": "Replaces the announcement of version 2"}[lang] in text, text
    result = run_axe(browser)
    assert not result["violations"], json.dumps(result["violations"], indent=1, ensure_ascii=False)
