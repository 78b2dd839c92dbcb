#!/usr/bin/env python3
"""A small service to run chaos experiments against, with no setup: a round-robin HTTP front
and its replicas, all on loopback.

  rr-demo.py front --port 18080 --replicas 3
      Starts the replicas (ports 18081..18083) as child processes, restarts one that dies
      (after --restart-delay seconds, like a supervisor), and serves GET / by forwarding to the
      replicas in turn. A replica that does not answer is skipped: the next one is tried, so a
      single dead replica costs latency, not errors. GET /health answers for the front itself.
  rr-demo.py replica --port 18081 --name r1
      Answers GET / with "served by r1".

Both stop on SIGTERM (the front takes its replicas with it). Standard library only.
"""
import argparse
import http.client
import http.server
import itertools
import os
import signal
import subprocess
import sys
import threading
import time


class ReplicaHandler(http.server.BaseHTTPRequestHandler):
    name = "replica"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = ("served by %s\n" % self.name).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def run_replica(args):
    ReplicaHandler.name = args.name
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), ReplicaHandler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


class Supervisor:
    def __init__(self, ports, restart_delay):
        self.ports = ports
        self.restart_delay = restart_delay
        self.children = {}
        self.stopping = False
        self.lock = threading.Lock()

    def start(self, index):
        port = self.ports[index]
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "replica",
                                  "--port", str(port), "--name", "r%d" % (index + 1)])
        self.children[index] = child
        print("front: replica r%d started, pid %d, port %d" % (index + 1, child.pid, port),
              flush=True)

    def watch(self):
        while not self.stopping:
            for index, child in list(self.children.items()):
                if child.poll() is not None and not self.stopping:
                    print("front: replica r%d (pid %d) exited with %s; restarting in %.1fs"
                          % (index + 1, child.pid, child.returncode, self.restart_delay),
                          flush=True)
                    time.sleep(self.restart_delay)
                    with self.lock:
                        if not self.stopping:
                            self.start(index)
            time.sleep(0.05)

    def stop(self):
        with self.lock:
            self.stopping = True
            for child in self.children.values():
                if child.poll() is None:
                    child.terminate()
            for child in self.children.values():
                try:
                    child.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    child.kill()


def run_front(args):
    ports = [args.port + 1 + i for i in range(args.replicas)]
    supervisor = Supervisor(ports, args.restart_delay)
    for i in range(args.replicas):
        supervisor.start(i)
    turn = itertools.count()

    class FrontHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/health":
                self.reply(200, b"ok\n")
                return
            first = next(turn)
            for attempt in range(len(ports)):
                port = ports[(first + attempt) % len(ports)]
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=args.timeout)
                    conn.request("GET", "/")
                    answer = conn.getresponse()
                    body = answer.read()
                    conn.close()
                    if answer.status == 200:
                        self.reply(200, body)
                        return
                except OSError:
                    continue  # a dead or stuck replica: try the next one
            self.reply(502, b"no replica answered\n")

        def reply(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), FrontHandler)

    def on_term(*_):
        supervisor.stop()
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, on_term)
    threading.Thread(target=supervisor.watch, daemon=True).start()
    print("front: serving on 127.0.0.1:%d over %d replicas" % (args.port, args.replicas),
          flush=True)
    server.serve_forever()
    supervisor.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    front = sub.add_parser("front")
    front.add_argument("--port", type=int, default=18080)
    front.add_argument("--replicas", type=int, default=3)
    front.add_argument("--restart-delay", type=float, default=1.0)
    front.add_argument("--timeout", type=float, default=0.5)
    replica = sub.add_parser("replica")
    replica.add_argument("--port", type=int, required=True)
    replica.add_argument("--name", required=True)
    args = parser.parse_args()
    if args.role == "front":
        run_front(args)
    else:
        run_replica(args)


if __name__ == "__main__":
    main()
