"""Fixtures for the subreg black-box API tests (the harness itself is stack.py,
the request helpers helpers.py, the webhook receivers receivers.py).

Environment:
  SUBREG_BIN     path to the subreg binary (e.g. build-asan/subreg)
  SUBREG_EMBEDDED_DB  mongo-java-server (default) or ferretdb
  MJS_JAR        the mongo-java-server launcher (scripts/mongo-java-server-build)
  FERRETDB_BIN   path to the FerretDB wrapper binary (with SUBREG_EMBEDDED_DB=ferretdb)
  HYDRA_BIN      Ory Hydra (test_hydra.py; scripts/bootstrap builds it)

A session-scoped stack (the embedded database on a free loopback port with a fresh data dir,
`subreg migrate`, then `subreg serve`) is shared by most tests; tests that stop
or restart processes take their own stack from the `make_server` factory; the
publication modules take one each from `pub_server`, the webhook modules from
`hook_server`.

Process output goes to tests/api/.out/run-<timestamp>-<pid>/ (git-ignored).
Every service process is stopped with SIGTERM by PID and must exit 0 with no
AddressSanitizer / LeakSanitizer / UBSan report on its stderr.

No test module imports this file: what a module needs besides fixtures comes
from stack.py or helpers.py.
"""

import pytest

from helpers import HOOK_ADMIN, WEBHOOK_ENV, create_hook, retire_hook, wait_public_ready
from receivers import Receiver
from stack import (
    RUN_DIR,
    Keys,
    Stack,
    Tokens,
    own_stack,
    prune_old_runs,
    require_binaries,
    tail,
)


def pytest_report_header(config):
    return f"subreg test output: {RUN_DIR}"


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def binaries():
    return require_binaries()


@pytest.fixture(scope="session")
def keys():
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    return Keys(RUN_DIR / "keys")


@pytest.fixture(scope="session")
def tokens(keys):
    return Tokens(keys)


@pytest.fixture(scope="session")
def server(binaries, keys, tokens):
    """The shared session stack. At the end the service must stop cleanly
    (exit 0, no sanitizer report)."""
    prune_old_runs()
    stack = Stack(binaries[0], binaries[1], keys, tokens, "session")
    srv = stack.up()
    yield srv
    stack.down()


@pytest.fixture(autouse=True)
def _session_server_alive(request):
    """Fail fast, with the reason, when the shared service is gone (crashed, or
    killed by something outside the suite) instead of a cascade of connection errors."""
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        rc = srv.proc.poll()
        if rc is not None:
            pytest.fail(f"the session subreg process (pid {srv.proc.pid}) exited earlier with "
                        f"{rc}; stderr: {srv.stderr_path}\n{tail(srv.stderr_path, 15)}",
                        pytrace=False)
    yield


@pytest.fixture
def make_server(binaries, keys, tokens, request):
    """Factory for an isolated stack (own database, own data dir, own port):
    make_server(extra_env=None, share_db_with=None) -> Server. With
    share_db_with=<Server> the new service uses that server's database (a second
    instance of the service). Torn down (and checked) after the test: services
    first, then the databases."""
    stacks = []

    def factory(extra_env=None, share_db_with=None):
        name = f"{request.node.name}-{len(stacks) + 1}".replace("/", "_").replace("[", "_").replace("]", "")
        stack = Stack(binaries[0], binaries[1], keys, tokens, name[:80], extra_env=extra_env,
                      shared_db=share_db_with.db if share_db_with is not None else None)
        stacks.append(stack)
        return stack.up()

    yield factory
    errors = []
    for stack in reversed(stacks):
        try:
            stack.server.stop(expected_rc=0)
        except AssertionError as exc:
            errors.append(str(exc))
    for stack in stacks:
        if stack.owns_db:
            stack.db.stop()
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def admin(server):
    return server.api(roles=["admin"], sub="alice")


@pytest.fixture
def editor(server):
    return server.api(roles=["editor"], sub="eddie")


@pytest.fixture
def reader(server):
    return server.api(roles=["reader"], sub="rita")


# ---------------------------------------------------------------------------
# a module's own stack


def _module_stack_name(request):
    """The name of a module's own stack (its folder under RUN_DIR):
    test_delivery.py -> "delivery-module"."""
    return request.module.__name__.rpartition(".")[2].removeprefix("test_") + "-module"


@pytest.fixture(scope="module")
def pub_server(binaries, keys, tokens, request):
    """The module's own database + subreg pair (publications are global to a
    database: never on the shared session server), returned once its public
    list is served. Each module that uses it gets its own."""
    with own_stack(binaries, keys, tokens, _module_stack_name(request)) as srv:
        wait_public_ready(srv)
        yield srv


# ---------------------------------------------------------------------------
# webhooks (test_webhooks.py, test_delivery.py)


@pytest.fixture
def receivers():
    """Factory for loopback webhook receivers (receivers.Receiver), all closed
    after the test: receivers(script=(200,)) -> Receiver."""
    made = []

    def make(script=(200,)):
        rcv = Receiver(script)
        made.append(rcv)
        return rcv

    yield make
    for rcv in made:
        rcv.stop()


@pytest.fixture(scope="module")
def hook_server(binaries, keys, tokens, request):
    """The module's own database + subreg pair with the loopback-friendly
    webhook settings (helpers.WEBHOOK_ENV). Each module that uses it gets its
    own, so that deliveries of one module never reach another's receivers."""
    with own_stack(binaries, keys, tokens, _module_stack_name(request), WEBHOOK_ENV) as srv:
        yield srv


@pytest.fixture
def hook_admin(hook_server):
    return hook_server.api(roles=["admin"], sub=HOOK_ADMIN)


@pytest.fixture
def subscribe(hook_admin):
    """subscribe(receiver_or_url, event_types=None, api=None, **body) -> the 201
    body (with the secret); event_types None leaves the service's default.
    Every subscription still there after the test is deleted (or, if the
    service refuses, disabled), so later tests see no stray deliveries."""
    made = []

    def make(target, event_types=None, api=None, **body):
        api = api or hook_admin
        hook = create_hook(api, target, event_types, **body)
        made.append((api, hook["id"]))
        return hook

    yield make
    for api, hid in made:
        retire_hook(api, hid)
