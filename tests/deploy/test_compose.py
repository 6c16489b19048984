"""docker/compose.yaml: valid against the Compose Specification schema (dclint,
pinned in scripts/lib.sh and installed by scripts/bootstrap) and production-shaped:
MongoDB 8 as a replica set, migrate before serve, health checks, restart
policies, the secret from an env file, a volume for the data."""

import json
import os
import re
import subprocess

import yaml

from deployhelpers import CACHE, ROOT

COMPOSE = ROOT / "docker" / "compose.yaml"
CONFIG = ROOT / "docker" / "dclint.json"
DCLINT = os.environ.get("DCLINT_BIN") or str(
    next((CACHE / "npm").glob("dclint-*/node_modules/.bin/dclint"), CACHE / "npm" / "dclint-missing"))


def dclint(path):
    """dclint's findings for one file (JSON formatter): [(rule, type, message)]."""
    proc = subprocess.run([DCLINT, "-c", str(CONFIG), "-f", "json", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip().startswith("["), f"dclint did not run ({DCLINT}): {proc.stderr}"
    report = json.loads(proc.stdout)
    return proc.returncode, [(m["rule"], m["type"], m["message"]) for f in report for m in f["messages"]]


def compose():
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_is_valid_and_lint_clean():
    rc, findings = dclint(COMPOSE)
    assert findings == [] and rc == 0, findings


def test_the_validator_refuses_what_the_compose_specification_does_not_allow(tmp_path):
    doc = compose()
    doc["services"]["subreg"]["restart_policy"] = "always"  # not a Compose key
    doc["services"]["mongo"]["healthcheck"]["retries"] = "many"  # must be a number
    bad = tmp_path / "compose.yaml"
    bad.write_text(yaml.safe_dump(doc))
    rc, findings = dclint(bad)
    assert rc != 0
    assert any(rule == "invalid-schema" and kind == "error" for rule, kind, _ in findings), findings


def test_mongodb_8_single_node_replica_set_initiated_by_its_health_check():
    mongo = compose()["services"]["mongo"]
    assert mongo["image"] == "mongo:8"
    assert mongo["command"][:2] == ["--replSet", "rs0"]
    probe = " ".join(mongo["healthcheck"]["test"])
    assert "rs.initiate" in probe and "isWritablePrimary" in probe
    assert any(v.endswith(":/data/db") for v in mongo["volumes"])
    assert "mongo-data" in compose()["volumes"]


def test_migrate_runs_before_serve_from_the_same_image_of_the_sources_version():
    services = compose()["services"]
    version = re.search(r"project\(subreg VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text()).group(1)
    assert services["migrate"]["command"] == ["migrate"]
    assert services["subreg"]["command"] == ["serve"]
    assert services["migrate"]["image"] == services["subreg"]["image"] == f"subreg:{version}"
    assert services["migrate"]["build"]["dockerfile"] == "docker/Dockerfile"
    assert services["migrate"]["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert services["subreg"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("migrate", "subreg"):
        assert "replicaSet=rs0" in services[name]["environment"]["SUBREG_MONGODB_URI"]


def test_restart_policies_and_health_checks():
    services = compose()["services"]
    assert services["mongo"]["restart"] == services["subreg"]["restart"] == "unless-stopped"
    assert services["migrate"]["restart"].startswith("on-failure")  # a one-shot job
    assert services["subreg"]["healthcheck"]["test"][:3] == ["CMD", "/usr/local/bin/subreg", "healthcheck"]
    # the service drains for up to 25 s on SIGTERM
    assert services["subreg"]["stop_grace_period"] == "30s"


def test_the_secret_comes_from_an_env_file_that_is_never_committed():
    services = compose()["services"]
    text = COMPOSE.read_text()
    assert "SUBREG_JWT_HS256_SECRET" not in text.split("services:", 1)[1]
    for name in ("migrate", "subreg"):
        assert services[name]["env_file"] == [{"path": "subreg.env", "required": True}]
    ignored = subprocess.run(["git", "check-ignore", "-q", "docker/subreg.env"], cwd=ROOT)
    assert ignored.returncode == 0, "docker/subreg.env must be git-ignored"
    example = (ROOT / "docker" / "subreg.env.example").read_text()
    assert re.search(r"^SUBREG_JWT_HS256_SECRET=", example, re.M)


def test_every_setting_named_is_a_documented_configuration_variable():
    documented = set(re.findall(r"`(SUBREG_[A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text()))
    named = set(re.findall(r"\bSUBREG_[A-Z0-9_]+", COMPOSE.read_text()))
    named |= set(re.findall(r"^(SUBREG_[A-Z0-9_]+)=", (ROOT / "docker" / "subreg.env.example").read_text(), re.M))
    assert named and named <= documented, named - documented


def test_the_service_runs_hardened():
    subreg = compose()["services"]["subreg"]
    assert subreg["read_only"] is True
    assert [t.split(":")[0] for t in subreg["tmpfs"]] == ["/tmp"]  # the XLSX writer's scratch files
    assert subreg["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in subreg["security_opt"]
    assert subreg["ports"] == ["127.0.0.1:8080:8080"]  # TLS belongs in front
