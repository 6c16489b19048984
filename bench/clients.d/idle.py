#!/usr/bin/env python3
"""bench/clients.d/idle.py HOST PORT N SECONDS — holds N idle connections to the
server for SECONDS: half of them silent (connected, nothing sent: a slow or stuck
client), half idle keep-alive (one request answered, then nothing). Prints how
many were opened, how many the server closed before the end, and how many could
not be opened."""
import socket
import sys
import time

host, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks, refused, unanswered = [], 0, 0
for i in range(n):
    try:
        s = socket.create_connection((host, port), timeout=5)
    except OSError:
        refused += 1
        continue
    if i % 2:
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        try:
            s.recv(65536)  # the answer; the connection stays open (keep-alive)
        except OSError:
            unanswered += 1  # no worker free within 5 s
    s.setblocking(False)
    socks.append(s)
print(f"opened {len(socks)}", flush=True)
time.sleep(secs)
closed = 0
for s in socks:
    try:
        if s.recv(1) == b"":
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print(f"idle connections: {len(socks)} opened, {refused} not opened, {unanswered} keep-alive requests unanswered "
      f"within 5 s, {closed} closed by the server within {secs:.0f} s")
