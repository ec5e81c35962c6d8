#!/usr/bin/env python3
"""Soak through nginx + php-fpm: many session cycles from concurrent keep-alive clients.

Each client thread owns a set of sessions (one cookie each) and sends app.php?a=incr requests round
robin. At the end every session's stored counter must equal the number of successful increments sent
for it (no lost update), no request may have failed, and each php-fpm worker's resident memory is
reported after a warm-up and at the end (a leak shows as steady growth).

  python3 scripts/fpm_soak.py --url http://127.0.0.1:18480 --dsn sqlite:///tmp/x/s.sqlite \
      --requests 100000 --clients 8 --sessions 64 --fpm-config /path/php-fpm.conf
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def fpm_workers(config):
    """pids of php-fpm workers whose master was started with `config`."""
    masters, workers = set(), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "php-fpm" in cmd and config in cmd:
            masters.add(pid)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if ppid in masters:
            workers.append(int(pid))
    return sorted(workers)


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class Client(threading.Thread):
    def __init__(self, host, port, base_query, sessions, n, stats):
        super().__init__(daemon=True)
        self.host, self.port, self.q = host, port, base_query
        self.cookies = [None] * sessions
        self.sent_ok = [0] * sessions
        self.n, self.stats = n, stats
        self.errors = []

    def request(self, conn, path, cookie):
        headers = {"Cookie": f"PHPSESSID={cookie}"} if cookie else {}
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        return resp, body

    def run(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        path = "/app.php?" + self.q + "&a=incr"
        for i in range(self.n):
            s = i % len(self.cookies)
            try:
                resp, body = self.request(conn, path, self.cookies[s])
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(f"request failed: {e!r}")
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                continue
            try:
                r = json.loads(body)
            except ValueError:
                r = {"ok": False, "error": body[:200].decode(errors="replace")}
            if resp.status != 200 or not r.get("ok") or r.get("errors"):
                self.errors.append(f"HTTP {resp.status}: {r.get('error') or r.get('errors')}")
                continue
            self.cookies[s] = r["id"]
            self.sent_ok[s] += 1
            with self.stats["lock"]:
                self.stats["done"] += 1
        conn.close()

    def verify(self, conn):
        lost = 0
        for s, cookie in enumerate(self.cookies):
            if cookie is None:
                continue
            _, body = self.request(conn, "/app.php?" + self.q + "&a=whoami", cookie)
            n = json.loads(body).get("data", {}).get("n")
            if n != self.sent_ok[s]:
                lost += 1
                self.errors.append(f"session {cookie[:6]}…: stored n={n}, increments sent={self.sent_ok[s]}")
        return lost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--handler", default="native", choices=["native", "class"])
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--sessions", type=int, default=64, help="sessions in all (split over the clients)")
    ap.add_argument("--fpm-config", required=True, help="php-fpm config path, to find its workers")
    a = ap.parse_args()

    u = urllib.parse.urlparse(a.url)
    q = urllib.parse.urlencode({"h": a.handler, "dsn": a.dsn})
    stats = {"lock": threading.Lock(), "done": 0}
    per_client = a.requests // a.clients
    clients = [Client(u.hostname, u.port, q, max(1, a.sessions // a.clients), per_client, stats)
               for _ in range(a.clients)]
    workers = fpm_workers(a.fpm_config)
    if not workers:
        print("soak: no php-fpm workers found for", a.fpm_config)
        return 1

    t0 = time.monotonic()
    for c in clients:
        c.start()
    # RSS after warm-up: once 5% of the requests are done (connections, pools, caches in place).
    warm = None
    while any(c.is_alive() for c in clients):
        time.sleep(0.2)
        if warm is None and stats["done"] >= a.requests // 20:
            warm = {p: rss_kib(p) for p in workers}
    for c in clients:
        c.join()
    elapsed = time.monotonic() - t0
    end = {p: rss_kib(p) for p in workers}
    warm = warm or end

    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    lost = sum(c.verify(conn) for c in clients)
    errors = [e for c in clients for e in c.errors]
    growth = [end[p] - warm[p] for p in workers if end.get(p) is not None and warm.get(p) is not None]
    print(f"soak {a.handler} {a.dsn.split(':')[0]}: {stats['done']} of {per_client * a.clients} requests ok "
          f"in {elapsed:.1f} s ({stats['done'] / elapsed:.0f}/s), {a.clients} clients, {a.sessions} sessions, "
          f"{len(errors)} errors, {lost} sessions with lost updates")
    print("  php-fpm worker RSS KiB after warm-up -> end: " +
          ", ".join(f"{warm.get(p)}->{end.get(p)}" for p in workers))
    print(f"  max growth per worker: {max(growth) if growth else 'n/a'} KiB")
    for e in errors[:10]:
        print("  error:", e)
    ok = not errors and lost == 0 and stats["done"] == per_client * a.clients
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
