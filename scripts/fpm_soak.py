#!/usr/bin/env python3
"""Soak through nginx + php-fpm: many session cycles from concurrent keep-alive clients.

All client threads share one set of sessions (one cookie each, made before the run) and send
app.php?a=incr requests round robin over them, two clients at a time on each session, so that requests of one
session from several clients meet at its lock. At the end every session's stored counter must equal
the number of successful increments sent for it (no lost update), some requests must have overlapped
another of their session (else nothing was contended), no request may have failed, and no php-fpm
worker's resident memory may grow by more than --max-growth-kib between a warm-up and the end.

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


class Shared:
    """The sessions every client increments: cookie, increments acknowledged, request intervals."""

    def __init__(self, n):
        self.cookies = [None] * n
        self.sent_ok = [0] * n
        self.spans = [[] for _ in range(n)]
        self.lock = threading.Lock()

    def overlapped(self):
        """Requests that started before another request of the same session had ended."""
        count = 0
        for spans in self.spans:
            end = None
            for t0, t1 in sorted(spans):
                if end is not None and t0 < end:
                    count += 1
                end = t1 if end is None else max(end, t1)
        return count


class Client(threading.Thread):
    def __init__(self, host, port, base_query, shared, offset, n, stats):
        super().__init__(daemon=True)
        self.host, self.port, self.q = host, port, base_query
        self.shared, self.offset = shared, offset
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
        sh = self.shared
        for i in range(self.n):
            s = (i + self.offset) % len(sh.cookies)
            t0 = time.monotonic()
            try:
                resp, body = self.request(conn, path, sh.cookies[s])
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
            t1 = time.monotonic()
            if r["id"] != sh.cookies[s]:
                self.errors.append(f"session {sh.cookies[s][:6]}… answered as {r['id'][:6]}…")
                continue
            with sh.lock:
                sh.sent_ok[s] += 1
                sh.spans[s].append((t0, t1))
            with self.stats["lock"]:
                self.stats["done"] += 1
        conn.close()


def make_sessions(host, port, q, shared):
    """One incr per shared session, without a cookie: the session and its first increment."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    for s in range(len(shared.cookies)):
        conn.request("GET", "/app.php?" + q + "&a=incr")
        r = json.loads(conn.getresponse().read())
        if not r.get("ok") or r.get("errors"):
            raise RuntimeError(f"cannot make a session: {r}")
        shared.cookies[s] = r["id"]
        shared.sent_ok[s] = 1
    conn.close()


def verify(host, port, q, shared, errors):
    """Sessions whose stored counter is not the number of increments acknowledged for them."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    lost = 0
    for s, cookie in enumerate(shared.cookies):
        conn.request("GET", "/app.php?" + q + "&a=whoami", headers={"Cookie": f"PHPSESSID={cookie}"})
        n = json.loads(conn.getresponse().read()).get("data", {}).get("n")
        if n != shared.sent_ok[s]:
            lost += 1
            errors.append(f"session {cookie[:6]}…: stored n={n}, increments acknowledged={shared.sent_ok[s]}")
    conn.close()
    return lost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--handler", default="native", choices=["native", "class"])
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--sessions", type=int, default=64, help="sessions in all, shared by the clients")
    # Worker RSS growth from warm-up (5 % of the run) to the end. Measured with 100 000 requests
    # (~10 000 per worker): at most 96 KiB on any engine (README). 1 MiB is ~10x that (allocator and
    # SQLite page-cache noise) and still fails a leak of ~100 bytes per request.
    ap.add_argument("--max-growth-kib", type=int, default=1024)
    ap.add_argument("--fpm-config", required=True, help="php-fpm config path, to find its workers")
    a = ap.parse_args()

    u = urllib.parse.urlparse(a.url)
    q = urllib.parse.urlencode({"h": a.handler, "dsn": a.dsn})
    stats = {"lock": threading.Lock(), "done": 0}
    per_client = a.requests // a.clients
    shared = Shared(a.sessions)
    make_sessions(u.hostname, u.port, q, shared)
    # Clients two by two on the same session at the same time: each pair meets at every lock.
    clients = [Client(u.hostname, u.port, q, shared, k // 2, per_client, stats) for k in range(a.clients)]
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

    errors = [e for c in clients for e in c.errors]
    lost = verify(u.hostname, u.port, q, shared, errors)
    overlapped = shared.overlapped()
    growth = [end[p] - warm[p] for p in workers if end.get(p) is not None and warm.get(p) is not None]
    if not growth:
        errors.append("no php-fpm worker's RSS could be read")
    elif max(growth) > a.max_growth_kib:
        errors.append(f"a worker's RSS grew by {max(growth)} KiB (> {a.max_growth_kib} KiB)")
    if overlapped == 0:
        errors.append("no request overlapped another of its session: nothing was contended")
    print(f"soak {a.handler} {a.dsn.split(':')[0]}: {stats['done']} of {per_client * a.clients} requests ok "
          f"in {elapsed:.1f} s ({stats['done'] / elapsed:.0f}/s), {a.clients} clients, {a.sessions} sessions, "
          f"{len(errors)} errors, {lost} sessions with lost updates, "
          f"{overlapped} requests overlapped another of their session")
    print("  php-fpm worker RSS KiB after warm-up -> end: " +
          ", ".join(f"{warm.get(p)}->{end.get(p)}" for p in workers))
    print(f"  max growth per worker: {max(growth) if growth else 'n/a'} KiB")
    for e in errors[:10]:
        print("  error:", e)
    ok = not errors and lost == 0 and stats["done"] == per_client * a.clients
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
