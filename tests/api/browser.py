"""Headless Chromium (the Debian package `chromium`, installed by
scripts/bootstrap) for the page tests: `run_chromium()` runs it once with a
command-line action (--dump-dom, --screenshot); `DevTools` drives it over the
DevTools protocol to run scripts in a page (axe-core), set the viewport, take
screenshots and print to PDF.

DevTools goes through a pipe, not a port (--remote-debugging-pipe: Chromium
reads commands from its fd 3 and writes answers to its fd 4, each a JSON text
ended by a NUL byte): no port to find or to race other test runs for, no
websocket client, and the browser cannot outlive the pipe's owner unnoticed.
Runtime.evaluate runs outside the page's Content-Security-Policy, so a
script-free page keeps its `default-src 'none'`.

A missing Chromium is a FAILURE, not a skip.
"""

import base64
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from stack import run_bounded

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--force-device-scale-factor=1",
]


def chromium_binary():
    for candidate in (os.environ.get("CHROMIUM_BIN"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("headless Chromium is required for the browser test but was not found: "
                "install the Debian package (apt-get install -y chromium; scripts/bootstrap does) "
                "or set CHROMIUM_BIN", pytrace=False)


def run_chromium(args, url, timeout=90):
    """Run Chromium once with a fresh profile; return its stdout. On a timeout
    the browser's own process group (started here) is killed by its id."""
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="subreg-chromium-") as profile:
        cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url]
        code, out, err = run_bounded(cmd, timeout)
        assert code == 0, f"chromium exited {code}: {' '.join(cmd)}\n" + err.decode("utf-8", "replace")[-3000:]
        return out.decode("utf-8")


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


class DevTools:
    """One headless Chromium with one page, driven over the DevTools pipe.
    Use as a context manager; every call is bounded by `timeout` seconds."""

    def __init__(self, timeout=60):
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="subreg-chromium-")
        commands_r, self.commands = os.pipe()
        self.answers, answers_w = os.pipe()
        # bash puts the two pipe ends on Chromium's fds 3 and 4
        cmd = ["bash", "-c", 'cmd=$1 ans=$2; shift 2; exec "$@" 3<&"$cmd" 4>&"$ans"', "devtools",
               str(commands_r), str(answers_w), chromium_binary(), *CHROMIUM_FLAGS,
               f"--user-data-dir={self.profile.name}", "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, pass_fds=(commands_r, answers_w),
                                     start_new_session=True)
        os.close(commands_r)
        os.close(answers_w)
        self.buffer, self.next_id, self.session = b"", 0, None
        try:
            target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stderr.close()
        os.close(self.commands)
        os.close(self.answers)
        self.profile.cleanup()

    def send(self, method, params=None):
        """One command (on the page once attached); its result, or a test failure."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session:
            message["sessionId"] = self.session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self.next_id:  # anything else is an event
                    assert "error" not in answer, f"{method}: {answer['error']}"
                    return answer["result"]
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.answers], [], [], left)[0]:
                pytest.fail(f"Chromium did not answer {method} within {self.timeout}s")
            chunk = os.read(self.answers, 1 << 20)
            if not chunk:
                pytest.fail(f"Chromium closed the DevTools pipe during {method} (exit "
                            f"{self.proc.wait(5)}): {self.proc.stderr.read().decode()[-2000:]}")
            self.buffer += chunk

    def evaluate(self, expression, await_promise=False):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise})
        assert "exceptionDetails" not in result, f"{expression[:80]}: {result['exceptionDetails']}"
        return result["result"].get("value")

    def open(self, url, width, height):
        """Load url in a viewport of width x height CSS pixels; wait for the load."""
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + self.timeout
        while self.evaluate("document.readyState + ' ' + location.href") != f"complete {url}":
            assert time.monotonic() < deadline, f"{url} did not load within {self.timeout}s"
            time.sleep(0.1)

    def screenshot(self, path):
        """The viewport as PNG at path."""
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def pdf(self, path):
        """The page printed (print media, A4) as PDF at path."""
        data = self.send("Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69})["data"]
        Path(path).write_bytes(base64.b64decode(data))
