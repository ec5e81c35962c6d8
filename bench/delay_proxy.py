#!/usr/bin/env python3
"""A TCP relay that delays every chunk in each direction: a database "on another host" for
bench/sql.sh (LINK_US), on a machine whose kernel has no netem.

    python3 bench/delay_proxy.py LISTEN_PORT TARGET_PORT ONE_WAY_US
    python3 bench/delay_proxy.py --rtt ONE_WAY_US     (median round trip, direct and through it)

Listens on 127.0.0.1:LISTEN_PORT, connects each client to 127.0.0.1:TARGET_PORT, and hands every
chunk on ONE_WAY_US microseconds after it was read. One thread per direction: read, sleep
(clock_nanosleep with a timer slack of 1 ns; asyncio's timers round to whole milliseconds through epoll_wait), send. Made for
request/response protocols (a SQL client waits for each answer): whatever has arrived behind a chunk
by the time it leaves (the rest of one answer) leaves with it. The relay's own cost (two thread wake-ups per round trip)
comes on top of the delay; `--rtt` measures the whole. Prints "ready" once it listens; runs until
killed.
"""
import ctypes
import socket
import sys
import threading
import time

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_TIMERSLACK = 29


def exact_sleeps() -> None:
    """Timer slack 1 ns for this thread: Linux's default 50 µs would stretch every delay."""
    _libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


def pump(src: socket.socket, dst: socket.socket, delay: float) -> None:
    exact_sleeps()
    while True:
        try:
            chunk = src.recv(1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            break
        if delay > 0:
            time.sleep(delay)
            # What came right behind it (the rest of one answer: a result set, then its OK packet)
            # was in flight alongside it, so it leaves now too, not one delay later.
            chunk += drain(src)
        try:
            dst.sendall(chunk)
        except OSError:
            break
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def drain(src: socket.socket) -> bytes:
    """Whatever `src` has ready now, without waiting."""
    more = b""
    try:
        # MSG_DONTWAIT, not setblocking(False): the other direction's thread sends on this socket.
        while b := src.recv(1 << 16, socket.MSG_DONTWAIT):
            more += b
    except OSError:
        pass
    return more


def serve(client: socket.socket, target: int, delay: float) -> None:
    try:
        server = socket.create_connection(("127.0.0.1", target))
    except OSError:
        client.close()
        return
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    up = threading.Thread(target=pump, args=(client, server, delay), daemon=True)
    up.start()
    pump(server, client, delay)
    up.join()
    client.close()
    server.close()


def listener(port: int) -> socket.socket:
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    return ls


def relay(ls: socket.socket, target: int, delay: float) -> None:
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, target, delay), daemon=True).start()


def rtt(one_way_us: float) -> None:
    """Median round trip of a 1-byte ping-pong, direct and through a relay of this delay."""
    echo = listener(0)

    def answer() -> None:
        while True:
            c, _ = echo.accept()
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=lambda c=c: [c.sendall(d) for d in iter(lambda: c.recv(64), b"")], daemon=True).start()

    threading.Thread(target=answer, daemon=True).start()
    ls = listener(0)
    threading.Thread(target=relay, args=(ls, echo.getsockname()[1], one_way_us / 1e6), daemon=True).start()

    def median(port: int) -> float:
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ts = []
        for _ in range(2000):
            t = time.perf_counter()
            s.sendall(b"x")
            s.recv(8)
            ts.append(time.perf_counter() - t)
        s.close()
        return sorted(ts)[len(ts) // 2] * 1e6

    print(f"round trip (median of 2000): direct {median(echo.getsockname()[1]):.0f} µs, "
          f"through the relay ({one_way_us:g} µs each way) {median(ls.getsockname()[1]):.0f} µs")


def main() -> None:
    if sys.argv[1] == "--rtt":
        rtt(float(sys.argv[2]))
        return
    listen, target, one_way_us = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    ls = listener(listen)
    print("ready", flush=True)
    relay(ls, target, one_way_us / 1e6)


if __name__ == "__main__":
    main()
