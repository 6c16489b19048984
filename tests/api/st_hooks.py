"""schemathesis hooks for test_schemathesis.py: the `st run` it starts loads this
module through SCHEMATHESIS_HOOKS (not a test module; pytest never imports it).

- Webhook URLs stay on this machine. The service resolves the host of every URL
  it accepts for a subscription (and later connects to it), so a generated URL
  would send DNS queries or deliveries anywhere. Every `url` in a body sent to
  /v1/webhooks or /v1/webhooks/{id} (any method) with an http(s) scheme and a
  host (`would_resolve`: everything the service's syntax check could let through
  to resolution, and more) has its scheme and host:port replaced by the loopback
  receiver the test runs (SUBREG_ST_RECEIVER); other values are refused by the
  service's syntax check (400) before any resolution. schemathesis re-validates a case after
  this hook, so a rewritten URL counts as valid or invalid by what is sent.
- A generated `cursor` is dropped from otherwise valid requests: a cursor is
  opaque and only the ones the service issued are valid (400 otherwise), which
  no schema can describe.
- PDF uploads: a generated string body is sent as a PDF (`%PDF-` and the string);
  anything else as its JSON text (not a PDF: 415).
- `filter_failure` drops exactly the valid-per-schema bodies refused only by the
  service's cross-field rules (tests/api/README.md lists them); nothing else.
"""

import json
import os
import re

import schemathesis

RECEIVER = os.environ.get("SUBREG_ST_RECEIVER", "http://127.0.0.1:9")

# Paths whose body carries a subscription URL (POST, PATCH, and the methods the
# coverage phase sends to see them refused: rewritten all the same).
_URL_BODIES = {"/v1/webhooks", "/v1/webhooks/{id}"}

_SCHEME_AUTHORITY = re.compile(r"(?i)^https?://([^/?#]*)")


def would_resolve(url):
    """True when the service would look the URL's host up: it starts with
    http:// or https:// (any case) and has a host (the service's is_http_url
    refuses the rest before resolving). Erring towards True only rewrites more."""
    m = _SCHEME_AUTHORITY.match(url)
    return bool(m and m.group(1))


def loopback(url):
    """The URL with scheme and authority replaced by the receiver's, as long as
    the original at least (so a too-long URL stays too long)."""
    m = _SCHEME_AUTHORITY.match(url)
    rest = url[m.end():]
    rest = rest[1:] if rest.startswith("/") else rest
    pad = max(0, len(url) - len(RECEIVER) - 1 - len(rest))
    return RECEIVER + "/" + "x" * pad + rest


@schemathesis.serializer("application/pdf")
def pdf_body(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return b"%PDF-1.7\n" + value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.path in _URL_BODIES and isinstance(case.body, dict):
        url = case.body.get("url")
        if isinstance(url, str) and would_resolve(url):
            case.body["url"] = loopback(url)
    meta = case.meta
    if isinstance(case.query, dict) and "cursor" in case.query and meta is not None \
            and meta.generation.mode.is_positive:
        del case.query["cursor"]


# The service's cross-field and check-digit rules (service/domain/*.c): they answer
# 400 validation-error for bodies that each member's schema admits. JSON Schema
# cannot state them (date order, rules on the merged result of a PATCH, check
# digits), so a valid-per-schema body that breaks only these is not a failure.
_RULES = re.compile(
    r"must not be before |an EU member state is in the EEA|only for EU territory of another"
    r"|a partial adequacy decision names the condition|^required when |^required for "
    r"|^only when the owner|^only for the 2021 SCCs|an agreement cannot supersede itself"
    r"|^cannot be changed|with valid check digits|^the 2021 SCCs apply from"
    r"|^the UK (Addendum|IDTA) is in force from"
    r"|^only for a participant \(participating true\)|^the UK Extension requires the EU-US DPF")


def _is_rule(case, error):
    if not isinstance(error, dict):
        return False
    message, pointer = str(error.get("message", "")), str(error.get("pointer", ""))
    if _RULES.search(message):
        return True
    # A PATCH that creates a nested object (e.g. `tia`) merges into a result whose
    # nested required members are missing; only the merged result can say so.
    return case.method.upper() == "PATCH" and message == "required field is missing" \
        and pointer.count("/") >= 2


def _only_cross_field_rules(failure, case, response):
    if failure.code != "ST202" or response.status_code != 400:
        return False
    try:
        problem = response.json()
    except Exception:
        return False
    errors = problem.get("errors") if isinstance(problem, dict) else None
    return problem.get("type") == "/problems/validation-error" and bool(errors) and all(
        _is_rule(case, e) for e in errors)


def _log_filtered(reason, failure, case, response):
    """One line per dropped failure in SUBREG_ST_FILTERED (the test counts them)."""
    path = os.environ.get("SUBREG_ST_FILTERED")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"reason": reason, "code": failure.code,
                                 "operation": f"{case.method.upper()} {case.path}",
                                 "status": response.status_code,
                                 "title": failure.title}) + "\n")


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if _only_cross_field_rules(failure, case, response):
        reason = "cross-field rule"
    else:
        return True
    _log_filtered(reason, failure, case, response)
    return False
