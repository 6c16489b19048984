"""The README's promises, run as written: the demo registry `make run` loads
(scripts/demo-data) shows the compliance engine at work, and the legal team's
four first questions, pasted from the README, answer them."""
import json
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def readme_questions():
    text = (ROOT / "README.md").read_text()
    block = text.split("## The legal team's first four questions", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    cmds = [ln for ln in block.splitlines() if ln.startswith("curl ")]
    assert len(cmds) == 4, cmds
    return cmds


def test_demo_data_and_the_four_questions(make_server, tokens):
    srv = make_server()
    token = tokens(roles=["admin"], sub="readme", exp_delta=600)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "demo-data"), srv.url, token], check=True, timeout=120)

    # the demo shows the engine at work: findings of several rules
    api = srv.api(roles=["reader"])
    findings = api.get("/v1/compliance/findings").json()["items"]
    rules = {f["rule"] for f in findings}
    assert len(rules) >= 4 and "no_valid_basis" in rules, rules

    answers = []
    for cmd in readme_questions():
        cmd = cmd.replace("http://127.0.0.1:8080", srv.url)
        out = subprocess.run(["bash", "-c", cmd], env=dict(os.environ, TOKEN=token), capture_output=True,
                             text=True, timeout=60, check=True).stdout
        answers.append(json.loads(out))
    critical, expiring, changes = (a["items"] for a in answers[:3])
    # 1. transfers without a valid basis (critical findings only)
    assert critical and {f["severity"] for f in critical} == {"critical"}
    assert {"no_valid_basis", "repealed_scc"} <= {f["rule"] for f in critical}
    # 2. what is due within 90 days, sorted by date
    assert expiring and [e["date"] for e in expiring] == sorted(e["date"] for e in expiring)
    # 3. what changed last week: the demo's own changes, newest first
    assert changes and changes[0]["at"] >= changes[-1]["at"]
    # (the scheduler's "effective" record of the demo's version 1 may be newer than the demo's last change)
    own = [c for c in changes if c["actor"] == "readme"]
    assert own and re.match(r"^(create|update|delete)$", own[0]["action"])
    assert {c["actor"] for c in changes} <= {"readme", "subreg-scheduler", "subreg-migrate"}
    # 4. whom to tell about the pending change: only the hosting service's customers
    # (Kanzlei Weber, 45 days; Praxis Dr. Lang, 60 days), not Bäckerei Huber
    preview = answers[3]
    assert preview["dry_run"] is True and preview["services_affected"] == ["hosting"]
    customers = {c["name"]: c["id"] for c in api.list_all("/v1/customers")[0]}
    assert sorted(preview["customers_affected"]) == sorted(
        [customers["Kanzlei Weber & Partner"], customers["Praxis Dr. Lang"]])
    assert preview["notice_days_required"] == 60
    # a preview writes nothing: version 1 is still the only one
    assert [p["number"] for p in api.get("/v1/publications").json()["items"]] == [1]
