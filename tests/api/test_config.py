"""Configuration is validated at start: a bad value stops `subreg serve` with exit
code 2 and a message naming the variable, before anything listens; the command
line refuses what it does not know."""
import os
import subprocess

import pytest

from ports import free_port

SECRET = "s" * 40


def run(binary, args, env_extra, timeout=20):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBREG_")}
    env.update({"SUBREG_JWT_HS256_SECRET": SECRET, "SUBREG_LISTEN": f"127.0.0.1:{free_port()}",
                # nothing listens here: a start that got past validation would stall, not pass
                "SUBREG_MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=500"})
    env.update(env_extra)
    return subprocess.run([binary, *args], env={k: v for k, v in env.items() if v is not None},
                          capture_output=True, text=True, timeout=timeout)


BAD = [
    ("SUBREG_THREADS", "abc"), ("SUBREG_THREADS", "0"), ("SUBREG_THREADS", "100000"),
    ("SUBREG_REQUEST_DEADLINE_MS", "50"), ("SUBREG_REQUEST_DEADLINE_MS", "3s"),
    ("SUBREG_LISTEN", "nonsense"), ("SUBREG_LISTEN", "127.0.0.1:99999"), ("SUBREG_LISTEN", ":8080"),
    ("SUBREG_MAX_BODY_BYTES", "-1"), ("SUBREG_LOG_LEVEL", "loud"),
    ("SUBREG_MONGODB_URI", "localhost:27017"),
    ("SUBREG_JWT_ALGORITHMS", "HS256,none"), ("SUBREG_JWT_ALGORITHMS", "HS512"),
    ("SUBREG_JWT_HS256_SECRET", "too-short"), ("SUBREG_JWT_PUBLIC_KEYS", "/nonexistent/key.pem"),
    ("SUBREG_JWT_ROLE_MAP", "admin"), ("SUBREG_JWT_LEEWAY_SECONDS", "-5"),
    ("SUBREG_RATE_LIMIT_EXEMPT", "10.0.0.0/x"), ("SUBREG_WEBHOOK_ALLOW_NETS", "10.0.0.0/33"),
    ("SUBREG_WEBHOOK_ALLOW_HTTP", "yes"), ("SUBREG_WEBHOOK_RETRY_SCHEDULE", "soon"),
    ("SUBREG_PUBLIC_BASE_URL", "ftp://example.com"), ("SUBREG_CORS_ORIGIN", "https://a.example/path"),
    ("SUBREG_CORS_ORIGIN", "https://a.example\r\nX-Injected: 1"), ("SUBREG_CORS_ORIGIN", "https://u@a.example"), ("SUBREG_TEST_FAULT", "bogus"),
    ("SUBREG_TIMEZONE", "Mars/Olympus_Mons"), ("SUBREG_TIMEZONE", "../../etc/passwd"), ("SUBREG_TIMEZONE", ""),
    ("SUBREG_TIMEZONE", "Europe"),
]


@pytest.mark.parametrize("name,value", BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_bad_setting_stops_the_start_naming_it(binaries, name, value):
    res = run(binaries[0], ["serve"], {name: value})
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert f"configuration error: {name}" in res.stderr, res.stderr
    assert res.stdout == ""


def test_rs256_without_keys_is_refused(binaries):
    res = run(binaries[0], ["serve"], {"SUBREG_JWT_ALGORITHMS": "RS256"})
    assert res.returncode == 2
    assert "SUBREG_JWT_PUBLIC_KEYS or SUBREG_JWT_JWKS" in res.stderr


def test_command_line(binaries):
    b = binaries[0]
    version = run(b, ["--version"], {})
    assert version.returncode == 0 and version.stdout.startswith("subreg ")
    assert run(b, ["serve", "--port", "1"], {}).returncode == 2
    assert run(b, ["frobnicate"], {}).returncode == 2
    # a token only with an HS256 secret, and only with --sub and --roles
    assert run(b, ["token", "--sub", "a", "--roles", "admin"], {"SUBREG_JWT_HS256_SECRET": None}).returncode == 2
    assert run(b, ["token", "--roles", "admin"], {}).returncode == 2
    tok = run(b, ["token", "--sub", "a", "--roles", "admin"], {})
    assert tok.returncode == 0 and tok.stdout.count(".") == 2


def test_healthcheck_command(binaries, server):
    """`subreg healthcheck` (the container image's HEALTHCHECK; the image has no
    shell and no curl): exit 0 when the service at SUBREG_LISTEN answers 200, 1 when
    nothing answers, 2 on a bad argument. 0.0.0.0 is probed on loopback."""
    b = binaries[0]
    port = server.url.rsplit(":", 1)[1]
    assert run(b, ["healthcheck"], {"SUBREG_LISTEN": f"0.0.0.0:{port}"}).returncode == 0
    assert run(b, ["healthcheck", "--ready"], {"SUBREG_LISTEN": f"127.0.0.1:{port}"}).returncode == 0
    down = run(b, ["healthcheck"], {"SUBREG_LISTEN": f"127.0.0.1:{free_port()}"})
    assert down.returncode == 1 and "subreg healthcheck: http://127.0.0.1:" in down.stderr
    assert run(b, ["healthcheck", "--verbose"], {"SUBREG_LISTEN": f"127.0.0.1:{port}"}).returncode == 2
