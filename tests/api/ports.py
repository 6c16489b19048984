"""Free loopback ports for servers the tests, scripts and benchmarks start
(stdlib only: scripts/lib.sh runs this file to print one).

Ports come from below the kernel's ephemeral range: a port picked by bind(0)
is an ephemeral port, and between closing the probe and the server's own bind
an outgoing client connection may get the same number (CI saw exactly that:
"Address already in use" at start-up). Within one process no port is handed
out twice."""

import random
import socket
import threading

_given = set()
_lock = threading.Lock()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    top = min(_ephemeral_low(), 65536) - 1
    bottom = max(1024, top - 12000)
    with _lock:
        for _ in range(500):
            port = random.randint(bottom, top)
            if port in _given:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _given.add(port)
            return port
    raise RuntimeError(f"no free loopback port in {bottom}..{top}")


if __name__ == "__main__":
    print(free_port())
