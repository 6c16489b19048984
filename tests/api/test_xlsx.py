"""The public list as a spreadsheet (GET /public/v1/subprocessors?format=xlsx,
written with libxlsxwriter): opened by independent readers (openpyxl, and
LibreOffice converting it back to CSV), the same rows as the CSV, text only
(no formula), one set of bytes per list (the same ETag on every instance)."""
import csv
import io
import subprocess
import tempfile
from pathlib import Path

import openpyxl
import pytest
import requests

from helpers import assert_status, describe, sp_body, unique_name, wait_until
from readers import soffice_binary
from stack import run_bounded

PUBLIC = "/public/v1/subprocessors"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def get(srv, params=None, headers=None):
    return requests.get(srv.url + PUBLIC, params=params, headers=headers or {}, timeout=15)


@pytest.fixture(scope="module")
def listed(pub_server):
    api = pub_server.api(roles=["admin"])
    names = [unique_name("Sheet GmbH"), "=HYPERLINK(\"http://evil.example\")", unique_name("Line break")]
    for name in names:
        purpose = {"de": "Zeile eins\nZeile zwei", "en": "Line one\nLine two"}
        sp = api.create_sp(sp_body(legal_name=name, status="active", purpose=purpose,
                                   locations=[{"country": "DE", "region": "eu-central", "role": "hosting"},
                                              {"country": "US", "role": "support"}]))
        assert sp["status"] == "active"
    resp = api.post("/v1/publications", {"summary": {"de": "Tabelle", "en": "Sheet"}})
    assert_status(resp, 201)
    number = resp.json()["number"]
    wait_until(lambda: get(pub_server).json().get("version") == number, 10, message="the publication in effect")
    return names


def rows_of(content):
    book = openpyxl.load_workbook(io.BytesIO(content))
    sheet = book.active
    return sheet, [[c.value for c in row] for row in sheet.iter_rows()]


@pytest.mark.parametrize("lang,title", [("en", "Subprocessors"), ("de", "Unterauftragsverarbeiter")])
def test_xlsx_has_the_csv_rows(pub_server, listed, lang, title):
    resp = get(pub_server, {"format": "xlsx", "lang": lang})
    assert resp.status_code == 200, describe(resp)
    assert resp.headers["Content-Type"] == XLSX
    assert f"-{lang}.xlsx" in resp.headers["Content-Disposition"]
    sheet, rows = rows_of(resp.content)
    assert sheet.title == title
    assert sheet.freeze_panes == "A2" and sheet["A1"].font.b
    text = get(pub_server, {"format": "csv", "lang": lang}).content.decode("utf-8")
    csv_rows = list(csv.reader(io.StringIO(text)))
    # the CSV neutralises formulas with a leading apostrophe; the XLSX stores text
    csv_rows = [[c[1:] if c.startswith("'=") else c for c in r] for r in csv_rows]
    assert [[v if v is not None else "" for v in r] for r in rows] == csv_rows
    assert any(listed[0] == r[1] for r in rows)


def test_xlsx_cells_are_text_never_formulas(pub_server, listed):
    sheet, rows = rows_of(get(pub_server, {"format": "xlsx"}).content)
    cells = [c for row in sheet.iter_rows() for c in row if c.value is not None]
    assert cells and all(c.data_type == "s" for c in cells), {c.data_type for c in cells}
    assert any(r[1] == listed[1] for r in rows), "the formula-like name is kept as text"
    assert any(r[1] == listed[2] and r[5] == "Line one\nLine two" for r in rows), "a line break in a cell is kept"


def test_libreoffice_reads_it(pub_server, listed):
    """An independent reader: LibreOffice converts the workbook back to CSV."""
    content = get(pub_server, {"format": "xlsx"}).content
    with tempfile.TemporaryDirectory(prefix="subreg-xlsx-") as tmp:
        tmp = Path(tmp)
        (tmp / "list.xlsx").write_bytes(content)
        cmd = [soffice_binary(), f"-env:UserInstallation=file://{tmp}/profile", "--headless", "--norestore",
               "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir", str(tmp / "out"),
               str(tmp / "list.xlsx")]
        code, out, err = run_bounded(cmd, 120)
        converted = tmp / "out" / "list.csv"
        assert converted.exists(), (code, out, err)
        rows = list(csv.reader(io.StringIO(converted.read_text("utf-8"))))
    assert rows[0][:3] == ["id", "legal_name", "trading_name"]
    assert {listed[0], listed[1], listed[2]} <= {r[1] for r in rows[1:]}


def test_xlsx_etag_is_the_same_on_every_instance(pub_server, listed, make_server):
    first = get(pub_server, {"format": "xlsx"})
    again = get(pub_server, {"format": "xlsx"}, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304, describe(again)
    other = make_server(share_db_with=pub_server)
    wait_until(lambda: get(other).status_code == 200, 10, message="the second instance's list")
    second = get(other, {"format": "xlsx"})
    assert second.status_code == 200 and second.headers["ETag"] == first.headers["ETag"]
    assert second.content == first.content


def test_xlsx_by_accept_and_bad_format(pub_server, listed):
    resp = get(pub_server, headers={"Accept": XLSX})
    assert resp.status_code == 200 and resp.headers["Content-Type"] == XLSX
    bad = get(pub_server, {"format": "xls"})
    assert bad.status_code == 400 and "xlsx" in bad.json()["detail"]


def test_the_registry_list_as_a_spreadsheet(pub_server, listed):
    """GET /v1/{resource}?format=xlsx: every match of the filters in one sheet,
    a column per member, German or English texts (issue 13)."""
    reader = pub_server.api(roles=["reader"], sub="rita")
    resp = reader.get("/v1/subprocessors", params={"format": "xlsx", "status": "active", "lang": "de"})
    assert resp.status_code == 200, describe(resp)
    assert resp.headers["Content-Type"] == XLSX and ".xlsx" in resp.headers["Content-Disposition"]
    sheet, rows = rows_of(resp.content)
    header, body = rows[0], rows[1:]
    assert header[:4] == ["id", "version", "created_at", "updated_at"] and "legal_name" in header
    items, _ = reader.list_all("/v1/subprocessors", status="active")
    assert [r[0] for r in body] == [i["id"] for i in items]
    col = {name: k for k, name in enumerate(header)}
    by_id = {i["id"]: i for i in items}
    for r in body:
        item = by_id[r[0]]
        assert r[col["legal_name"]] == item["legal_name"]
        assert r[col["purpose"]] == item["purpose"]["de"]
        assert r[col["status"]] == "active" and r[col["version"]] == str(item["version"])
        assert r[col["locations"]] == "; ".join(", ".join(f"{k}: {v}" for k, v in loc.items())
                                                for loc in item["locations"])
    assert all(c.data_type == "s" for row in sheet.iter_rows() for c in row if c.value is not None)
    # every resource's list has it
    other = reader.get("/v1/reference/countries", params={"format": "xlsx"})
    assert other.status_code == 200 and len(rows_of(other.content)[1]) > 200


def test_registry_spreadsheet_bad_requests(pub_server, listed):
    reader = pub_server.api(roles=["reader"], sub="rita")
    everything = reader.get("/v1/subprocessors", params={"format": "xlsx", "limit": "1"})
    assert len(rows_of(everything.content)[1]) == 1 + len(listed), "limit does not apply to the spreadsheet"
    for params, text in [({"format": "pdf"}, "json or xlsx"),
                         ({"format": "xlsx", "lang": "fr"}, "de or en")]:
        resp = reader.get("/v1/subprocessors", params=params)
        assert resp.status_code == 400 and text in resp.json()["detail"], (params, resp.text)
    assert reader.get("/v1/audit", params={"format": "xlsx"}).status_code == 400
    assert pub_server.anon().get("/v1/subprocessors", params={"format": "xlsx"}).status_code == 401
