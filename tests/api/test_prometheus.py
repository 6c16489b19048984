"""/metrics and the example alerting rules against Prometheus' own tool
(issue 10 #3): promtool (the Debian package `prometheus`, installed by
scripts/bootstrap) checks a live scrape taken after traffic (`check metrics`:
the text format and its lint, i.e. the naming conventions), the rules in
deploy/prometheus/alerts.yml (`check rules`) and their tests
(`test rules deploy/prometheus/alerts.test.yml`). What promtool does not
check is checked here: every histogram's buckets, every metric documented,
the rules quoted in docs/operations.md as they are in the file.

A missing promtool is a FAILURE, not a skip.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from helpers import assert_status

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
SP = "/v1/subprocessors"


def promtool(*args, stdin=None):
    binary = shutil.which("promtool")
    if not binary:
        pytest.fail("promtool is required: install the Debian package prometheus "
                    "(scripts/bootstrap does)", pytrace=False)
    return subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, timeout=60)


def scrape_after_traffic(server, admin):
    """/metrics after 2xx, 4xx and public requests, so that every status class
    and histogram bucket has been written to at least once."""
    assert_status(admin.get(SP), 200)
    assert admin.get(SP + "/no-such-id").status_code == 404
    assert requests.get(server.url + "/public/v1/subprocessors", timeout=10).status_code in (200, 404)
    resp = requests.get(server.url + "/metrics", timeout=10)
    assert_status(resp, 200)
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return resp.text


def families(text):
    """{name: (type, [(sample name, labels dict, value)])} from the text format."""
    out, current = {}, None
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)$", line)
        if m:
            current = m.group(1)
            out[current] = (m.group(2), [])
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        assert current and name.startswith(current), f"{name} outside its family ({current})"
        out[current][1].append((name, dict(re.findall(r'(\w+)="([^"]*)"', labels or "")), float(value)))
    return out


def test_live_scrape_passes_promtool(server, admin):
    text = scrape_after_traffic(server, admin)
    result = promtool("check", "metrics", stdin=text)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        f"promtool check metrics (exit {result.returncode}):\n{result.stdout}{result.stderr}")


def test_promtool_finds_what_breaks_the_conventions():
    """The check above can fail: promtool lints a counter without _total and a
    unit that is not a base unit."""
    bad = ("# HELP subreg_requests Requests.\n# TYPE subreg_requests counter\nsubreg_requests 1\n"
           "# HELP subreg_wait_milliseconds Wait.\n# TYPE subreg_wait_milliseconds gauge\n"
           "subreg_wait_milliseconds 5\n")
    result = promtool("check", "metrics", stdin=bad)
    report = result.stdout + result.stderr
    assert result.returncode != 0, report
    assert "subreg_requests" in report and "_total" in report, report
    assert "subreg_wait_milliseconds" in report, report


def test_metric_names_and_histograms_follow_the_conventions(server, admin):
    fams = families(scrape_after_traffic(server, admin))
    assert {"subreg_http_requests_total", "subreg_http_request_duration_seconds", "subreg_ready",
            "subreg_webhook_latency_seconds", "subreg_webhook_deferred_total",
            "subreg_webhook_attempts_in_flight"} <= set(fams)
    for name, (kind, samples) in fams.items():
        assert re.fullmatch(r"subreg_[a-z][a-z0-9_]*", name), name
        assert (kind == "counter") == name.endswith("_total"), f"{name} is a {kind}"
        assert samples, f"{name} has no sample"
        if kind != "histogram":
            continue
        assert name.endswith("_seconds"), f"histogram {name}: base unit seconds"
        buckets = [(s[1]["le"], s[2]) for s in samples if s[0] == name + "_bucket"]
        bounds = [float(le) for le, _ in buckets]
        assert buckets[-1][0] == "+Inf" and bounds == sorted(set(bounds)), f"{name}: le {bounds}"
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), f"{name}: buckets not cumulative {counts}"
        (count,) = [s[2] for s in samples if s[0] == name + "_count"]
        (total,) = [s[2] for s in samples if s[0] == name + "_sum"]
        assert count == counts[-1] and total >= 0, (name, count, counts[-1])
    http = fams["subreg_http_request_duration_seconds"][1]
    assert [s[1]["le"] for s in http if s[0].endswith("_bucket")] == [
        "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
    codes = {s[1]["code"]: s[2] for s in fams["subreg_http_requests_total"][1]}
    assert set(codes) == {"1xx", "2xx", "3xx", "4xx", "5xx"} and codes["2xx"] > 0 and codes["4xx"] > 0
    assert fams["subreg_ready"][1] == [("subreg_ready", {}, 1.0)]


def test_every_metric_is_documented(server, admin):
    doc = OPERATIONS.read_text()
    for name in families(scrape_after_traffic(server, admin)):
        assert f"`{name}`" in doc, f"{name} is not documented in docs/operations.md"


def test_alert_rules_pass_promtool():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout, result.stdout
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr


def test_alert_rule_tests_pass():
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
    tested = {t["alertname"] for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for t in case["alert_rule_test"]}
    assert tested == {"SubregHighErrorRate", "SubregRecoverySweepStalled"}


def test_alert_rules_name_only_exported_metrics(server, admin):
    exported = set(families(scrape_after_traffic(server, admin))) | {"up"}
    for rule in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]:
        names = set(re.findall(r"\b(subreg_[a-z0-9_]+|up)\b", rule["expr"]))
        assert names and names <= exported, (rule["alert"], names - exported)


def test_operations_doc_quotes_the_rules():
    """docs/operations.md quotes alerts.yml (comments left out): the same rules."""
    doc = OPERATIONS.read_text()
    blocks = re.findall(r"```yaml\n(groups:\n.*?)```", doc, flags=re.S)
    assert len(blocks) == 1, "one ```yaml block with the alerting rules in docs/operations.md"
    assert yaml.safe_load(blocks[0]) == yaml.safe_load(RULES.read_text())
