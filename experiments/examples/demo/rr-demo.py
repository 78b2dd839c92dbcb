#!/usr/bin/env python3
"""A small service to run chaos experiments against, with no setup: a round-robin HTTP front
and its replicas, all on loopback.

  rr-demo.py front --port 18080 --replicas 3
      Starts the replicas (ports 18081..18083) as child processes, restarts one that dies
      (after --restart-delay seconds, like a supervisor), and serves GET / by forwarding to the
      replicas in turn. A replica that does not answer is skipped: the next one is tried, so a
      single dead replica costs latency, not errors. GET /health answers for the front itself.
  rr-demo.py front --port 18080 --replicas 3 --netns chaosd-demo --link demo0
      The same, with the replicas in a network namespace of their own (chaosd-demo, created
      with the front's own chaosd-demo-front and a veth pair, demo0 on the replicas' side,
      10.203.0.2, and demo0-front on the front's, 10.203.0.1). The front still serves on
      127.0.0.1 of the namespace it was started in and reaches the replicas over the veth, so
      a network fault on demo0 is a fault between the front and its replicas. Both namespaces
      are removed when the front stops (and, if a killed front left them, when it next starts).
      Needs root and iproute2 (the demo's own scaffolding; chaosd itself never runs `ip`).
  rr-demo.py replica --port 18081 --name r1 [--host 10.203.0.2]
      Answers GET / with "served by r1".

Both stop on SIGTERM (the front takes its replicas with it). Standard library only.
"""
import argparse
import ctypes
import http.client
import http.server
import itertools
import os
import shutil
import signal
import socket
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
    server = http.server.ThreadingHTTPServer((args.host, args.port), ReplicaHandler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


CLONE_NEWNET = 0x40000000
FRONT_ADDR, REPLICA_ADDR = "10.203.0.1", "10.203.0.2"


class Namespaces:
    """The replicas' namespace and the front's, joined by a veth pair."""

    def __init__(self, name, link):
        self.ip = shutil.which("ip") or "/usr/sbin/ip"
        self.app, self.front = name, name + "-front"
        self.link = link
        self.front_fd = None

    def run(self, *argv, check=True):
        return subprocess.run([self.ip, *argv], check=check, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL if not check else None)

    def create(self):
        self.remove()  # a front killed before it could clean up leaves them behind
        self.run("netns", "add", self.app)
        self.run("netns", "add", self.front)
        self.run("-n", self.app, "link", "add", self.link, "type", "veth",
                 "peer", "name", self.link + "-front", "netns", self.front)
        for ns, dev, addr in ((self.app, self.link, REPLICA_ADDR),
                              (self.front, self.link + "-front", FRONT_ADDR)):
            self.run("-n", ns, "addr", "add", addr + "/24", "dev", dev)
            self.run("-n", ns, "link", "set", dev, "up")
            self.run("-n", ns, "link", "set", "lo", "up")
        self.front_fd = os.open("/run/netns/" + self.front, os.O_RDONLY | os.O_CLOEXEC)
        print("front: namespaces %s (replicas, %s on %s) and %s (front, %s)"
              % (self.app, self.link, REPLICA_ADDR, self.front, FRONT_ADDR), flush=True)

    def enter_front(self):
        """Moves the calling thread (only it) into the front's namespace."""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(self.front_fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + self.front)

    def replica_argv(self, argv):
        return [self.ip, "netns", "exec", self.app] + argv + ["--host", REPLICA_ADDR]

    def remove(self):
        for ns in (self.front, self.app):
            if os.path.exists("/run/netns/" + ns):
                self.run("netns", "del", ns, check=False)


class Supervisor:
    def __init__(self, ports, restart_delay, namespaces=None):
        self.ports = ports
        self.restart_delay = restart_delay
        self.namespaces = namespaces
        self.children = {}
        self.stopping = False
        self.lock = threading.Lock()

    def start(self, index):
        port = self.ports[index]
        argv = [sys.executable, os.path.abspath(__file__), "replica",
                "--port", str(port), "--name", "r%d" % (index + 1)]
        if self.namespaces:
            argv = self.namespaces.replica_argv(argv)
        child = subprocess.Popen(argv)
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


def wait_for_replicas(namespaces, host, ports, within=15.0):
    if namespaces:
        namespaces.enter_front()
    deadline = time.monotonic() + within
    for port in ports:
        while True:
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    print("front: replica on port %d did not start" % port, flush=True)
                    return
                time.sleep(0.05)


def run_front(args):
    ports = [args.port + 1 + i for i in range(args.replicas)]
    namespaces = Namespaces(args.netns, args.link) if args.netns else None
    if namespaces:
        namespaces.create()
    replica_host = REPLICA_ADDR if namespaces else "127.0.0.1"
    supervisor = Supervisor(ports, args.restart_delay, namespaces)
    for i in range(args.replicas):
        supervisor.start(i)
    # Listen only once every replica does, so that "the front accepts connections" (what a
    # readiness check sees) means "the service answers".
    waiter = threading.Thread(target=wait_for_replicas, args=(namespaces, replica_host, ports))
    waiter.start()
    waiter.join()
    turn = itertools.count()

    class FrontHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/health":
                self.reply(200, b"ok\n")
                return
            if namespaces:
                namespaces.enter_front()  # each request has a thread of its own
            first = next(turn)
            for attempt in range(len(ports)):
                port = ports[(first + attempt) % len(ports)]
                try:
                    conn = http.client.HTTPConnection(replica_host, port, timeout=args.timeout)
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
    try:
        server.serve_forever()
    finally:
        supervisor.stop()
        if namespaces:
            namespaces.remove()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    front = sub.add_parser("front")
    front.add_argument("--port", type=int, default=18080)
    front.add_argument("--replicas", type=int, default=3)
    front.add_argument("--restart-delay", type=float, default=1.0)
    front.add_argument("--timeout", type=float, default=0.5)
    front.add_argument("--netns", help="run the replicas in this network namespace")
    front.add_argument("--link", default="demo0", help="the replicas' veth (with --netns)")
    replica = sub.add_parser("replica")
    replica.add_argument("--port", type=int, required=True)
    replica.add_argument("--name", required=True)
    replica.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    if args.role == "front":
        run_front(args)
    else:
        run_replica(args)


if __name__ == "__main__":
    main()
