"""schemathesis (tests/requirements.txt pins the version) against the live service,
from the contract openapi/openapi.yaml: every operation with an admin token, a
reader token and no token, every built-in check (response schema, status codes,
content types and headers conformance, negative data rejected, positive data
accepted, missing required headers, unsupported methods, ignored auth, ...) and,
as admin, the stateful phase that follows the spec's `links` (create -> get ->
patch -> delete with the `ETag` as If-Match).

The module runs `st run` (schemathesis's own runner: all its phases, failure
reports with a curl line each) against its own database + subreg pair with the
loopback webhook settings; tests/api/schemathesis.toml configures it and
st_hooks.py keeps webhook URLs on a loopback receiver. The run is bounded
(SUBREG_ST_MAX_EXAMPLES per operation and phase) and reproducible: fixed seed
(SUBREG_ST_SEED, default 16) and no example database. The JUnit report and the
full output of each run are in the run directory (schemathesis-<who>.xml/.log).
The stack is stopped afterwards with the usual checks (exit 0, no sanitizer
report), so whatever the fuzzing did to the ASan build is caught there too.
"""

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from helpers import WEBHOOK_ENV
from receivers import Receiver
from stack import RUN_DIR, own_stack

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent.parent / "openapi" / "openapi.yaml"
CONFIG = HERE / "schemathesis.toml"
ST = Path(sys.executable).parent / "st"
SEED = os.environ.get("SUBREG_ST_SEED", "16")
TIMEOUT_S = 900

# Who runs what. As admin every phase: the coverage phase (boundary and invalid values
# of every parameter and property, missing required headers, methods the spec does not
# list) and the stateful one (needs writes). A reader and no token answer 403 / 401
# before any of that matters, so they run the examples and a few generated requests per
# operation: every operation's 401/403 answer checked against the spec.
MAX_EXAMPLES = int(os.environ.get("SUBREG_ST_MAX_EXAMPLES", "10"))
RUNS = {
    "admin": ("admin", "examples,coverage,fuzzing,stateful", MAX_EXAMPLES),
    "reader": ("reader", "examples,fuzzing", max(1, MAX_EXAMPLES // 2)),
    "anonymous": (None, "examples,fuzzing", max(1, MAX_EXAMPLES // 2)),
}


@pytest.fixture(scope="module")
def st_stack(binaries, keys, tokens):
    receiver = Receiver((200,))
    try:
        with own_stack(binaries, keys, tokens, "schemathesis-module", WEBHOOK_ENV) as srv:
            yield srv, receiver
    finally:
        receiver.stop()


def _report(out):
    """The part of the runner's output worth reading in a failed test: the
    failures and errors (each with its curl line) and the summary."""
    start = min([i for i in (out.find("=== ERRORS ==="), out.find("=== FAILURES ===")) if i >= 0],
                default=-1)
    text = out[start:] if start >= 0 else out
    if len(text) > 20000:
        summary = text.rfind("=== SUMMARY ===")
        text = text[:14000] + "\n[... see the log ...]\n" + text[summary - 40:]
    return text


@pytest.mark.parametrize("who", list(RUNS))
def test_schemathesis(st_stack, tokens, who):
    srv, receiver = st_stack
    role, phases, examples = RUNS[who]
    cmd = [str(ST), "--config-file", str(CONFIG), "run", str(SPEC), "--url", srv.url,
           "--phases", phases, "--max-examples", str(examples), "--seed", SEED,
           "--workers", "1", "--no-color", "--output-truncate", "false",
           "--report", "junit", "--report-junit-path", str(RUN_DIR / f"schemathesis-{who}.xml")]
    if role:
        token = tokens(sub=f"st-{who}", roles=[role], exp_delta=3600)
        cmd += ["--header", f"Authorization: Bearer {token}"]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="st_hooks", SUBREG_ST_RECEIVER=receiver.url,
               PYTHONPATH=str(HERE), SCHEMATHESIS_TELEMETRY="false")
    log = RUN_DIR / f"schemathesis-{who}.log"
    filtered = RUN_DIR / f"schemathesis-{who}.filtered.jsonl"
    env["SUBREG_ST_FILTERED"] = str(filtered)
    res = subprocess.run(cmd, cwd=RUN_DIR, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=TIMEOUT_S)
    log.write_text(res.stdout)
    summary = re.findall(r"^=+ (.*) in [0-9.]+s =+$", res.stdout, re.M)
    reasons = Counter(json.loads(line)["reason"] for line in
                      (filtered.read_text().splitlines() if filtered.exists() else []))
    print(f"schemathesis as {who}: {summary[-1] if summary else '(no summary)'}; "
          f"dropped by st_hooks.filter_failure: {dict(reasons) or 'none'}")
    assert srv.proc.poll() is None, f"subreg exited during the run: {srv.stderr_path}"
    assert res.returncode == 0, (
        f"schemathesis as {who} (seed {SEED}, {examples} examples; log {log}):\n"
        + _report(res.stdout))
