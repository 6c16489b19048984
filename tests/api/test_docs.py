"""The documentation stays true to the binary: every setting `subreg --help`
lists is documented in docs/configuration.md with the same default, and every
path the OpenAPI document describes is routed by the service (not 404)."""
import pathlib
import re
import subprocess

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]


def help_settings(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    settings = {}
    lines = out.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s+(SUBREG_[A-Z0-9_]+)\s", line)
        if m:
            d = re.search(r"default: (.*)$", lines[i + 1])
            settings[m.group(1)] = d.group(1).strip() if d else None
    return settings


def test_every_setting_is_documented_with_its_default(binaries):
    doc = (ROOT / "docs" / "configuration.md").read_text()
    settings = help_settings(binaries[0])
    assert len(settings) >= 20
    for name, default in settings.items():
        row = next((l for l in doc.splitlines() if l.startswith(f"| `{name}` |")), None)
        assert row, f"{name} is not documented in docs/configuration.md"
        documented = row.split("|")[2].strip()
        if default not in (None, "(empty)") and name != "SUBREG_PUBLIC_BASE_URL":
            assert documented == f"`{default}`", f"{name}: docs say {documented}, the binary {default}"


def test_every_openapi_path_is_routed(server, admin):
    spec = requests.get(server.url + "/openapi.yaml", timeout=10).text
    paths = re.findall(r"^  (/[^:]*):\s*$", spec, flags=re.M)
    assert len(paths) > 30
    for p in paths:
        concrete = re.sub(r"\{[^}]+\}", "x", p)
        resp = admin.get(concrete) if not p.endswith(("rotate-secret", "ping", "redeliver")) else \
            admin.post(concrete, {})
        assert not (resp.status_code == 404 and resp.json().get("detail") == "no such path"), \
            f"{p} is in openapi.yaml but not routed"


def test_unique_country_pool_is_not_used_literally():
    """helpers.unique_country() isolates list queries only if no test names one
    of its codes itself (a test order dependence otherwise)."""
    import helpers
    pool = set(helpers._COUNTRY_POOL)
    here = pathlib.Path(__file__).resolve().parent
    for path in sorted(here.glob("*.py")):
        if path.name == "helpers.py":
            continue
        clash = pool & set(re.findall(r"[\"']([A-Z]{2})[\"']", path.read_text()))
        assert not clash, f"{path.name} names {sorted(clash)} from the unique_country() pool"


def test_every_routed_method_is_documented(server):
    """The other direction: for every path of the OpenAPI document, the methods
    the service answers (its Allow header) are the ones documented there."""
    spec = requests.get(server.url + "/openapi.yaml", timeout=10).text
    documented = {}
    current = None
    for line in spec.splitlines():
        m = re.match(r"^  (/[^:]*):\s*$", line)
        if m:
            current = m.group(1)
            documented[current] = set()
            continue
        if line and not line.startswith(" "):
            current = None
        m = re.match(r"^    (get|post|patch|put|delete):\s*$", line)
        if current and m:
            documented[current].add(m.group(1).upper())
    assert len(documented) > 30
    for path, methods in documented.items():
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        resp = requests.options(server.url + concrete, timeout=10)
        assert resp.status_code == 204, (path, resp.status_code)
        allowed = {m.strip() for m in resp.headers["Allow"].split(",")} - {"HEAD"}
        assert allowed == methods, f"{path}: routed {sorted(allowed)}, documented {sorted(methods)}"
