#!/usr/bin/env python3
"""Lock hand-over through nginx + php-fpm (bench/fpm.sh): N concurrent requests on one session cookie,
each holding the session for WORK ms. Prints the wall time in ms from the first request sent to the last
answer; the ideal with a perfect hand-over is N x WORK. Exits non-zero if any request failed or if the
final count is not N (a lost update).
    python3 bench/handover.py URL N WORK_MS
"""
import http.client
import sys
import threading
import time
import urllib.parse
import uuid

url, n, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
u = urllib.parse.urlsplit(url)
sid = "h" + uuid.uuid4().hex
results = []
lock = threading.Lock()
start = threading.Barrier(n + 1)


def one():
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.connect()
    start.wait()
    c.request("GET", f"{u.path}?work={work}", headers={"Cookie": f"PHPSESSID={sid}"})
    r = c.getresponse()
    body = r.read().decode()
    with lock:
        results.append((r.status, body.strip()))


threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads:
    t.start()
start.wait()
t0 = time.perf_counter()
for t in threads:
    t.join()
wall = (time.perf_counter() - t0) * 1000
bad = [r for r in results if r[0] != 200]
counts = sorted(int(b) for s, b in results if s == 200 and b.isdigit())
if bad or counts != list(range(1, n + 1)):
    print(f"handover: failed: statuses {[r[0] for r in bad]}, counts {counts}", file=sys.stderr)
    sys.exit(1)
print(f"{wall:.0f}")
