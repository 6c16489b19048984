"""POST /v1/imports (service/api/imports.c): a spreadsheet's subprocessor list
into the registry — CSV as German Excel writes it (BOM, semicolons, German
headers, quoted line breaks, labels and country names instead of codes) or
JSON; all rows or none, a per-row and per-column report, a dry run, and the
same file twice changes nothing."""
import json

import pymongo
import pytest

from helpers import assert_problem, assert_status, describe, sp_body, unique_name

SP = "/v1/subprocessors"
HEADER = "Firma;Sitzland;Kategorie;Zweck;Datenkategorien;Betroffene;Orte der Verarbeitung;Zertifizierungen;" \
         "EU-US Data Privacy Framework;Website;Notizen"


def german_csv(rows):
    """A CSV as German Excel saves it ("CSV UTF-8"): BOM, semicolons, CRLF."""
    return ("\ufeff" + "\r\n".join([HEADER] + rows) + "\r\n").encode("utf-8")


def row(name, country="Deutschland", notes="", locations="DE (eu-central): Hosting"):
    return (f'"{name}";{country};Hosting;Server und Backups;Stamm- und Kontaktdaten, Vertrags- und '
            f'Leistungsdaten;Kunden;"{locations}";ISO/IEC 27001;nein;https://example.com;"{notes}"')


def post_csv(api, body, **params):
    return api.request("POST", "/v1/imports", data=body, content_type="text/csv; charset=utf-8",
                       params=params or None, timeout=60)


def by_name(api, name):
    items, _ = api.list_all(SP)
    return [s for s in items if s["legal_name"] == name]


def audit_count(server):
    return pymongo.MongoClient(server.db.uri)["subreg_test"].audit.count_documents({})


def test_german_csv_dry_run_then_import_then_again(server, admin):
    a, b = unique_name("Import Hetzner"), unique_name("Import Odoo")
    body = german_csv([row(a, notes="Zeile eins\nZeile zwei"),
                       row(b, country="Frankreich", locations="FR: Verarbeitung; DE (eu-central): Datensicherung"),
                       ";;;;;;;;;;", " ; ;"])  # trailing empty rows, as spreadsheets save them
    before = audit_count(server)
    dry = post_csv(admin, body, dry_run="true")
    assert_status(dry, 200)
    report = dry.json()
    assert report["dry_run"] is True and report["rows"] == 2 and report["created"] == 2, report
    assert [i["row"] for i in report["items"]] == [2, 3], report  # spreadsheet rows: a quoted line break is none
    assert not by_name(admin, a) and audit_count(server) == before, "a dry run writes nothing"

    done = post_csv(admin, body)
    assert_status(done, 200)
    assert done.json()["created"] == 2 and done.json()["dry_run"] is False
    [sa] = by_name(admin, a)
    [sb] = by_name(admin, b)
    assert sa["hq_country"] == "DE" and sb["hq_country"] == "FR"
    assert sa["category"] == "hosting" and sa["purpose"] == {"de": "Server und Backups", "en": "Server und Backups"}
    assert sa["data_categories"] == ["master_contact", "contract_service"]
    assert sa["data_subjects"] == ["customers"]
    assert sa["locations"] == [{"country": "DE", "region": "eu-central", "role": "hosting"}]
    assert sb["locations"] == [{"country": "FR", "role": "processing"},
                               {"country": "DE", "region": "eu-central", "role": "backup"}]
    assert sa["certifications"] == [{"name": "ISO/IEC 27001"}] and sa["dpf"] == {"participating": False}
    assert sa["notes"] == "Zeile eins\nZeile zwei"
    assert sa["status"] == "proposed" and sa["version"] == 1
    audit, _ = admin.list_all("/v1/audit", entity_id=sa["id"])
    assert [(x["action"], x["actor"]) for x in audit] == [("create", "alice")]

    written = audit_count(server)
    again = post_csv(admin, body)
    assert_status(again, 200)
    assert again.json()["unchanged"] == 2 and again.json()["created"] == 0, again.json()
    assert audit_count(server) == written, "the same file again changes nothing"
    assert len(by_name(admin, a)) == 1


def test_a_row_that_matches_by_legal_name_updates_only_what_it_gives(admin):
    sp = admin.create_sp(sp_body(legal_name=unique_name("Import update")))
    csv = f'legal_name,trading_name\n"  {sp["legal_name"].upper()} ",New Trading Name\n'.encode()
    resp = post_csv(admin, csv)
    assert_status(resp, 200)
    assert resp.json()["updated"] == 1 and resp.json()["items"][0]["id"] == sp["id"]
    got = admin.get_sp(sp["id"])
    assert got["version"] == 2 and got["trading_name"] == "New Trading Name"
    assert got["locations"] == sp["locations"] and got["purpose"] == sp["purpose"]
    by_id = f'id;Zweck (en)\n{sp["id"]};Only the English purpose\n'.encode()
    resp = post_csv(admin, by_id)
    assert_status(resp, 200)
    got = admin.get_sp(sp["id"])
    assert got["purpose"] == {"de": sp["purpose"]["de"], "en": "Only the English purpose"}


def test_bad_rows_are_reported_by_row_and_column_and_nothing_is_written(server, admin):
    names = [unique_name(f"Import bad {i}") for i in range(20)]
    rows = [row(n) for n in names]
    rows[15] = row(names[15], country="XX")            # row 17 of the sheet: a bad country
    rows[3] = row(names[3]).replace(";Kunden;", ";Aliens;")  # row 5: an unknown data subject
    before = audit_count(server)
    resp = post_csv(admin, german_csv(rows))
    body = assert_problem(resp, 422, "unprocessable-entity")
    errors = body["errors"]
    assert {(e["row"], e["column"], e["pointer"]) for e in errors} >= {
        (17, "Sitzland", "/hq_country"), (5, "Betroffene", "/data_subjects/0")}, errors
    assert all(e["type"] == "/problems/validation-error" and e["message"] for e in errors), errors
    assert "nothing was imported" in body["detail"]
    assert audit_count(server) == before and not by_name(admin, names[0])


def test_duplicate_rows_and_unknown_ids(admin):
    name = unique_name("Import twice")
    resp = post_csv(admin, german_csv([row(name), row(name.lower())]))
    errors = assert_problem(resp, 422, "unprocessable-entity")["errors"]
    assert errors == [{"row": 3, "column": "Firma", "pointer": "/legal_name", "type": "/problems/conflict",
                       "message": "the same subprocessor as row 2"}], errors
    resp = post_csv(admin, b"id,notes\nsp_doesnotexist,x\n")
    errors = assert_problem(resp, 422, "unprocessable-entity")["errors"]
    assert errors[0]["row"] == 2 and errors[0]["column"] == "id" and "no subprocessor" in errors[0]["message"]


@pytest.mark.parametrize("csv,column,hint", [
    (b"legal_name,hq_country,favourite_colour\nX,DE,blue\n", "favourite_colour", "docs/imports.md"),
    # separated by tabs: the header reads as one unknown column
    (b"legal_name\thq_country\nX\tDE\n", "legal_name\thq_country", "another character"),
    (b"Firma;Firma\nX;Y\n", "Firma", "second column"),
])
def test_unknown_and_repeated_columns(admin, csv, column, hint):
    errors = assert_problem(post_csv(admin, csv), 422, "unprocessable-entity")["errors"]
    assert any(e["row"] == 1 and e["column"] == column and hint in e["message"] for e in errors), errors


def test_malformed_files(admin):
    def problem(body, row, text):
        errors = assert_problem(post_csv(admin, body), 422, "unprocessable-entity")["errors"]
        assert [(e["row"], e["column"]) for e in errors] == [(row, None)] and text in errors[0]["message"], errors

    problem(b'legal_name\nX\n"never closed\n', 3, "never closed")
    problem(b"legal_name\n" + b",".join([b"x"] * 300) + b"\n", 2, "more than 256 cells")
    problem("Firma\nA\nM\xfcller\n".encode("latin-1"), 3, "CSV UTF-8")
    problem(b"", 1, "header row")
    assert_problem(post_csv(admin, b"legal_name\n"), 422, "unprocessable-entity")  # no rows
    assert_problem(post_csv(admin, b"legal_name\nX\n", dry_run="maybe"), 400, "malformed-request")
    resp = admin.request("POST", "/v1/imports", data=b"<xml/>", content_type="application/xml")
    assert resp.status_code == 415, describe(resp)


def test_limits(server, admin):
    before = audit_count(server)
    big = b"legal_name\n" + b"x" * (50 * 1024 * 1024)
    resp = post_csv(admin, big)
    assert_problem(resp, 413, "payload-too-large")
    many = "legal_name,hq_country\n" + "".join(f"Many {i},DE\n" for i in range(5001))
    assert_problem(post_csv(admin, many.encode()), 422, "unprocessable-entity")
    assert audit_count(server) == before


def test_json_import(admin):
    body = {"subprocessors": [sp_body(legal_name=unique_name("Import JSON"))]}
    resp = admin.post("/v1/imports", body)
    assert_status(resp, 200)
    assert resp.json()["created"] == 1
    sp = admin.get_sp(resp.json()["items"][0]["id"])
    assert sp["legal_name"] == body["subprocessors"][0]["legal_name"]
    again = admin.post("/v1/imports", body)
    assert again.json()["unchanged"] == 1
    bad = admin.post("/v1/imports", {"subprocessors": [dict(body["subprocessors"][0], hq_country="ZZ",
                                                             legal_name=unique_name("Import JSON bad"))]})
    errors = assert_problem(bad, 422, "unprocessable-entity")["errors"]
    assert errors[0]["row"] == 1 and errors[0]["pointer"] == "/hq_country" and errors[0]["column"] is None
    assert_problem(admin.post("/v1/imports", [1, 2]), 400, "malformed-request")


def test_imports_need_an_editor(reader):
    assert_problem(post_csv(reader, b"legal_name\nX\n"), 403, "forbidden")


def test_the_sample_file_in_docs_imports(make_server):
    """docs/import-sample.csv (German Excel: BOM, semicolons, German headers and
    labels, country names, a quoted line break) into an empty registry."""
    from pathlib import Path
    srv = make_server()
    api = srv.api(roles=["editor"], sub="eddie")
    sample = (Path(__file__).resolve().parents[2] / "docs" / "import-sample.csv").read_bytes()
    assert sample.startswith(b"\xef\xbb\xbf") and b";" in sample.splitlines()[0]
    dry = post_csv(api, sample, dry_run="true")
    assert_status(dry, 200)
    assert dry.json()["created"] == 3 and [i["row"] for i in dry.json()["items"]] == [2, 3, 4]
    assert_status(post_csv(api, sample), 200)
    items, _ = api.list_all(SP)
    got = {s["trading_name"]: s for s in items}
    assert set(got) == {"Hetzner", "NinjaOne", "Odoo"}
    assert got["NinjaOne"]["hq_country"] == "US" and got["NinjaOne"]["category"] == "rmm"
    assert got["NinjaOne"]["dpf"] == {"participating": True}
    assert got["NinjaOne"]["certifications"] == [{"name": "ISO/IEC 27001"}, {"name": "SOC 2 Type II"}]
    assert got["Hetzner"]["locations"] == [{"country": "DE", "region": "eu-central", "role": "hosting"},
                                          {"country": "FI", "role": "backup"}]
    assert got["Hetzner"]["notes"] == "Rechenzentren Falkenstein und Nürnberg;\nBackups in Helsinki"
    assert got["Odoo"]["data_subjects"] == ["customers", "prospects"]
    assert got["Odoo"]["purpose"] == {"de": "ERP-System: Angebote, Aufträge, Rechnungen",
                                      "en": "ERP system: offers, orders, invoices"}


def test_a_thousand_rows_take_longer_than_one_request_deadline(make_server):
    """A large import is many writes: its deadline grows with its rows (100 ms
    each), so 1,000 rows go in even with a 1 s request deadline."""
    srv = make_server(extra_env={"SUBREG_REQUEST_DEADLINE_MS": "1000"})
    api = srv.api(roles=["editor"], sub="eddie")
    lines = ["legal_name;hq_country;category;purpose;data_categories;data_subjects;locations"]
    lines += [f"Bulk {i:04d} GmbH;DE;hosting;Betrieb;master_contact;customers;DE: hosting" for i in range(1000)]
    resp = post_csv(api, ("\r\n".join(lines) + "\r\n").encode())
    assert_status(resp, 200)
    assert resp.json()["created"] == 1000
    items, _ = api.list_all(SP)
    assert len(items) == 1000
