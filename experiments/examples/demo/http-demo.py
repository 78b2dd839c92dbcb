#!/usr/bin/env python3
"""A front with a circuit breaker and its dependency, to run the http-fault demo against.

  http-demo.py --port 18098 --netns chaosd-httpdemo --link httpdemo0
      Creates two network namespaces joined by a veth pair: NETNS (the front's side, LINK at
      10.205.0.1) and NETNS-dep (the dependency's, 10.205.0.2), and runs the dependency there:
      HTTP/1.1 on 10.205.0.2:8080, GET /price answers "price 42".
      The front listens on 127.0.0.1:PORT in the namespace this script starts in (where
      chaosd's probe asks), then moves itself into NETNS (setns), so its calls to the
      dependency leave NETNS through LINK, where http.fault acts. GET /price calls the
      dependency with a 300 ms timeout behind a circuit breaker: 3 failures (an error status
      or the timeout) in the last 10 calls open it for 3 s, during which the front answers the
      fallback ("price 40 (cached)") at once; then one call tries the dependency again.
      GET /state tells the breaker's state and how often it opened.
      On SIGTERM it stops the dependency and removes both namespaces.

Needs root and iproute2 (the demo's own scaffolding; chaosd itself never runs `ip`).
Standard library only.
"""
import argparse
import collections
import ctypes
import http.client
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

FRONT_ADDR, DEP_ADDR, DEP_PORT = "10.205.0.1", "10.205.0.2", 8080
TIMEOUT, WINDOW, TRIP, OPEN_FOR = 0.3, 10, 3, 3.0


def run(*argv, check=True):
    return subprocess.run(argv, check=check, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL if not check else None)


class Dependency(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"price 42\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


class Breaker:
    def __init__(self):
        self.lock = threading.Lock()
        self.outcomes = collections.deque(maxlen=WINDOW)
        self.open_until = 0.0
        self.opened = 0
        self.calls = self.fallbacks = 0

    def call(self):
        with self.lock:
            if time.monotonic() < self.open_until:
                self.fallbacks += 1
                return None
            self.calls += 1
        ok, answer = False, None
        try:
            conn = http.client.HTTPConnection(DEP_ADDR, DEP_PORT, timeout=TIMEOUT)
            conn.request("GET", "/price")
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            ok, answer = resp.status == 200, data
        except (OSError, http.client.HTTPException):
            pass
        with self.lock:
            self.outcomes.append(ok)
            if not ok and list(self.outcomes).count(False) >= TRIP:
                self.open_until = time.monotonic() + OPEN_FOR
                self.opened += 1
                self.outcomes.clear()
            if not ok:
                self.fallbacks += 1
        return answer


breaker = Breaker()


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/state":
            with breaker.lock:
                state = "open" if time.monotonic() < breaker.open_until else "closed"
                body = ("%s opened=%d calls=%d fallbacks=%d\n"
                        % (state, breaker.opened, breaker.calls, breaker.fallbacks)).encode()
        else:
            body = breaker.call() or b"price 40 (cached)\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


def serve_dependency():
    server = http.server.ThreadingHTTPServer((DEP_ADDR, DEP_PORT), Dependency)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--netns")
    parser.add_argument("--link")
    parser.add_argument("--dependency", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dependency:
        serve_dependency()
        return 0
    ip = shutil.which("ip") or "/usr/sbin/ip"
    front, dep = args.netns, args.netns + "-dep"

    def remove():
        for ns in (front, dep):
            if os.path.exists("/run/netns/" + ns):
                run(ip, "netns", "del", ns, check=False)

    remove()
    run(ip, "netns", "add", front)
    run(ip, "netns", "add", dep)
    run(ip, "-n", front, "link", "add", args.link, "type", "veth", "peer", "name",
        args.link + "-dep", "netns", dep)
    for ns, dev, addr in ((front, args.link, FRONT_ADDR), (dep, args.link + "-dep", DEP_ADDR)):
        run(ip, "-n", ns, "addr", "add", addr + "/24", "dev", dev)
        run(ip, "-n", ns, "link", "set", dev, "up")
        run(ip, "-n", ns, "link", "set", "lo", "up")
    server = subprocess.Popen([ip, "netns", "exec", dep, sys.executable, os.path.abspath(__file__),
                               "--dependency"])
    # The front's listener here, then the front itself into NETNS: sockets keep the namespace
    # they were made in, so the probe still reaches it and its calls leave through LINK.
    front_server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Front)
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/run/netns/" + front) as f:
        if libc.setns(f.fileno(), 0x40000000) != 0:  # CLONE_NEWNET
            print("http-demo: setns failed", flush=True)
            server.kill()
            remove()
            return 1
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection((DEP_ADDR, DEP_PORT), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                print("http-demo: the dependency did not start", flush=True)
                server.kill()
                remove()
                return 1
            time.sleep(0.1)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    threading.Thread(target=front_server.serve_forever, daemon=True).start()
    print("http-demo: front on 127.0.0.1:%d (in %s), dependency %s:%d (in %s)"
          % (args.port, front, DEP_ADDR, DEP_PORT, dep), flush=True)
    stopping.wait()
    front_server.shutdown()
    server.terminate()
    try:
        server.wait(timeout=3)
    except subprocess.TimeoutExpired:
        server.kill()
    remove()
    print("http-demo: stopped (breaker opened %d times)" % breaker.opened, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
