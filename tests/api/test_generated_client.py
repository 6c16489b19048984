"""An API client generated from openapi/openapi.yaml by a mainstream generator
(issue 10 #2): openapi-python-client (pinned in tests/requirements.txt) runs in
the test, its output is imported, and the legal team's workflow goes through it
alone — typed models in, typed models out, no hand-written request.

Generation must give no warning: a warning there means an operation, a
response or a model was dropped. Four media types the generator does not know
are mapped with its own `content_type_overrides` (openapi-python-client.yaml):
PDF bodies and answers and the import's CSV body as bytes, the spec (YAML) and
the Atom feed as text.
"""

import datetime as dt
import importlib
import os
import pathlib
import subprocess
import sys
import time
import uuid

import pytest

from helpers import unique_name

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = pathlib.Path(__file__).with_name("openapi-python-client.yaml")


@pytest.fixture(scope="module")
def client_pkg(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    bindir = pathlib.Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        [str(bindir / "openapi-python-client"), "generate", "--path", str(ROOT / "openapi/openapi.yaml"),
         "--meta", "none", "--output-path", str(out / "subreg_client"), "--config", str(CONFIG)],
        capture_output=True, text=True, env=env, timeout=120)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    noise = [line for line in log.splitlines() if line.strip() and not line.startswith("Generating ")]
    assert not noise, "the generator warned (something was dropped):\n" + log
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("subreg_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == "subreg_client" or m.startswith("subreg_client.")]:
            del sys.modules[name]


def test_every_operation_is_generated(client_pkg):
    import yaml

    spec = yaml.safe_load((ROOT / "openapi/openapi.yaml").read_text())
    ids = {op["operationId"] for path in spec["paths"].values() for m, op in path.items()
           if m in ("get", "post", "put", "patch", "delete")}
    pkg = pathlib.Path(client_pkg.__file__).parent / "api"
    generated = {p.stem for p in pkg.rglob("*.py") if p.stem != "__init__"}
    snake = {"".join("_" + c.lower() if c.isupper() else c for c in i).lstrip("_") for i in ids}
    assert snake <= generated, f"operations without a function: {sorted(snake - generated)}"


def test_the_legal_teams_workflow_through_the_generated_client(client_pkg, make_server):
    from subreg_client import AuthenticatedClient, Client
    from subreg_client.api.agreements import create_agreement
    from subreg_client.api.compliance import list_compliance_findings
    from subreg_client.api.public import get_public_subprocessor_list
    from subreg_client.api.publications import create_publication
    from subreg_client.api.reports import get_expiring_report
    from subreg_client.api.subprocessors import get_subprocessor, list_subprocessors, update_subprocessor
    from subreg_client.api.subprocessors import create_subprocessor
    from subreg_client.api.transfers import create_transfer
    from subreg_client.models import (AgreementCreate, AgreementStatus, AgreementType, Authorisation, Category,
                                      Country, DataCategory, DataSubject, FindingRule, Localized, Location,
                                      LocationRole, Problem, PublicationCreate, SccOptions, SubprocessorCreate,
                                      SubprocessorPatch, SubprocessorStatus, Tia, TiaRisk, TransferBasis,
                                      TransferCreate)

    srv = make_server()
    token = srv.tokens(sub="legal", roles=["admin"])
    api = AuthenticatedClient(base_url=srv.url, token=token, raise_on_unexpected_status=True)
    today = dt.date.today()
    tag = uuid.uuid4().hex[:6]

    # 1. three subprocessors, one of them hosting in the US
    created = []
    for i in range(3):
        body = SubprocessorCreate(
            legal_name=unique_name(f"Generated {tag} {i}"), hq_country=Country.US if i == 0 else Country.DE,
            category=Category.RMM, purpose=Localized(de="Fernwartung", en="Remote monitoring"),
            data_categories=[DataCategory.MASTER_CONTACT], data_subjects=[DataSubject.CUSTOMERS],
            locations=[Location(country=Country.US if i == 0 else Country.DE, role=LocationRole.HOSTING)],
            status=SubprocessorStatus.ACTIVE)
        resp = create_subprocessor.sync_detailed(client=api, body=body)
        assert resp.status_code == 201, resp.content
        created.append(resp.parsed)
    sp = created[0]
    assert sp.id.startswith("sp_") and sp.version == 1

    # 2. its DPA and the transfer to the US under the 2021 SCC, module 3
    resp = create_agreement.sync_detailed(client=api, body=AgreementCreate(
        subprocessor_id=sp.id, type_=AgreementType.DPA, title=f"DPA {tag}", status=AgreementStatus.ACTIVE,
        signed_on=today - dt.timedelta(days=30), effective_on=today - dt.timedelta(days=30),
        expires_on=today + dt.timedelta(days=20), authorisation=Authorisation.GENERAL, notice_days=30))
    assert resp.status_code == 201, resp.content
    agreement = resp.parsed
    resp = create_transfer.sync_detailed(client=api, body=TransferCreate(
        subprocessor_id=sp.id, destination_country=Country.US, basis=TransferBasis.SCC_2021, scc_module=3,
        scc_options=SccOptions.from_dict({"docking_clause": True, "clause9_option": "general",
                                          "clause9_notice_days": 30, "governing_law": "IE", "forum": "IE"}),
        contract_signed_on=today - dt.timedelta(days=30), agreement_id=agreement.id,
        tia=Tia(performed_on=today - dt.timedelta(days=30), next_review_on=today + dt.timedelta(days=300),
                risk=TiaRisk.LOW)))
    assert resp.status_code == 201, resp.content
    assert resp.parsed.scc_module == 3

    # 3. PATCH with the ETag; a stale ETag is a 412 problem, as a typed Problem
    etag = get_subprocessor.sync_detailed(sp.id, client=api).headers["ETag"]
    resp = update_subprocessor.sync_detailed(sp.id, client=api, if_match=etag,
                                             body=SubprocessorPatch.from_dict({"trading_name": "Generated"}))
    assert resp.status_code == 200, resp.content
    assert resp.parsed.trading_name == "Generated" and resp.parsed.version == 2
    stale = update_subprocessor.sync_detailed(sp.id, client=api, if_match=etag,
                                              body=SubprocessorPatch.from_dict({"trading_name": "Again"}))
    assert stale.status_code == 412 and isinstance(stale.parsed, Problem), stale.content

    # 4. a filtered list, page by page with the cursor
    seen, cursor = [], None
    while True:
        kwargs = {"cursor": cursor} if cursor else {}
        page = list_subprocessors.sync(client=api, status=SubprocessorStatus.ACTIVE, limit=2, **kwargs)
        assert len(page.items) <= 2
        seen += [s.id for s in page.items]
        cursor = page.next_cursor if isinstance(page.next_cursor, str) else None
        if not cursor:
            break
    assert [s.id for s in created] == [i for i in seen if i in {s.id for s in created}]
    assert len(seen) == len(set(seen)), "a cursor repeated an item"

    # 5. the findings and the expiring report see the DPA that runs out in 20 days
    findings = list_compliance_findings.sync(client=api, subprocessor_id=sp.id, within_days=30)
    assert any(f.rule == FindingRule.EXPIRING for f in findings.items), [f.to_dict() for f in findings.items]
    report = get_expiring_report.sync(client=api, within_days=30)
    assert any(item.entity_id == agreement.id for item in report.items), report.to_dict()

    # 6. publish, then read the public list as the public does (no token)
    resp = create_publication.sync_detailed(client=api, body=PublicationCreate(
        summary=Localized(de=f"Neu: {tag}", en=f"New: {tag}"), override_notice=True,
        override_reason=Localized(de="Test", en="Test")))
    assert resp.status_code == 201, resp.content
    version = resp.parsed.version
    public = Client(base_url=srv.url)
    for _ in range(50):
        listed = get_public_subprocessor_list.sync(client=public)
        if listed is not None and getattr(listed, "version", None) == version:
            break
        time.sleep(0.1)
    assert listed.version == version, listed
    names = {item.legal_name for item in listed.items}
    assert {s.legal_name for s in created} <= names
