#!/usr/bin/env python3
"""A small model-serving service for the AI drills (python stdlib only, no real model).

  model-demo.py front --port P --dir D [--replicas 3] [--token-delay 0.02] [--restart-delay 0.5]
      Writes a model file per replica (D/rN/weights.bin), starts the replicas on ports P+1..P+N
      and restarts one that dies. Serves on 127.0.0.1:P:
        /v1/completions?n=N   streamed (text/event-stream) from the next replica in turn; a
                              replica that refuses the connection is skipped (the next one is
                              tried before any byte is sent)
        /health               200 "ok" while any replica answers
        /replicas/rN/health   the replica's own /health (JSON)
  model-demo.py replica --port P --name rN --weights FILE [--token-delay 0.02]
      Loads FILE (its checksum verified; a bad file at start is fatal), streams N tokens with
      the delay between them, reloads FILE on SIGHUP and keeps serving the last good model when
      the reload fails. /health: {"status", "model", "reloads", "reloadFailures", "lastError"}.
  model-demo.py make-weights FILE [--version v1] [--size 65536]
  model-demo.py trainer --dir D [--every 0.2] [--size 262144] [--keep 3] [--ready-port P]
      Writes ckpt-0.bin at once when the directory holds none (then listens on P, if given,
      without accepting: a ready check), then a checkpoint every `every` seconds: ckpt-STEP.bin.tmp, fsync, rename to
      ckpt-STEP.bin, fsync the directory; a failed write (ENOSPC) removes the temporary file
      and is retried at the next step. Keeps the newest `keep` complete checkpoints.
  model-demo.py verify-latest D
      Exit 0 and print its name when the newest ckpt-*.bin loads (checksum verified); exit 1
      when it does not, 2 when there is none.

A model file: one JSON line {"format", "version", "size", "sha256"} and `size` bytes whose
SHA-256 is `sha256`.
"""
import argparse
import hashlib
import http.client
import http.server
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse

FORMAT = "chaosd-demo-model/1"


def log(*parts):
    sys.stderr.write(" ".join(str(p) for p in parts) + "\n")
    sys.stderr.flush()


def model_bytes(version, size):
    seed = hashlib.sha256(version.encode()).digest()
    out = bytearray()
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    payload = bytes(out[:size])
    header = {"format": FORMAT, "version": version, "size": size,
              "sha256": hashlib.sha256(payload).hexdigest()}
    return (json.dumps(header) + "\n").encode() + payload


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def load_model(path):
    """The model in `path`, or ValueError saying why it is not one."""
    with open(path, "rb") as f:
        data = f.read()
    line, sep, payload = data.partition(b"\n")
    if not sep:
        raise ValueError("no header line")
    try:
        header = json.loads(line)
    except ValueError:
        raise ValueError("the header is not JSON")
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError("not a %s file" % FORMAT)
    if len(payload) != header.get("size"):
        raise ValueError("%d bytes, the header says %s" % (len(payload), header.get("size")))
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise ValueError("checksum mismatch")
    return {"version": header.get("version"), "payload": payload}


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def query(self):
        q = urllib.parse.urlparse(self.path).query
        return {k: v[0] for k, v in urllib.parse.parse_qs(q).items()}

    def route(self):
        return urllib.parse.urlparse(self.path).path

    def drain_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)


# ---- replica ---------------------------------------------------------------------------

class Replica:
    def __init__(self, weights, token_delay):
        self.weights = weights
        self.token_delay = token_delay
        self.lock = threading.Lock()
        self.model = load_model(weights)  # fatal at start: a replica needs a model
        self.reloads = 0
        self.failures = 0
        self.last_error = ""

    def reload(self):
        try:
            model = load_model(self.weights)
        except (OSError, ValueError) as e:
            with self.lock:
                self.failures += 1
                self.last_error = str(e)
            log("reload failed, still serving", self.model["version"] + ":", e)
            return
        with self.lock:
            self.model = model
            self.reloads += 1
            self.last_error = ""
        log("reloaded", model["version"])


def replica_main(args):
    replica = Replica(args.weights, args.token_delay)
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=replica.reload).start())

    class ReplicaHandler(Handler):
        def do_GET(self):
            if self.route() == "/health":
                with replica.lock:
                    body = {"status": "ok", "name": args.name, "model": replica.model["version"],
                            "reloads": replica.reloads, "reloadFailures": replica.failures,
                            "lastError": replica.last_error}
                self.reply(200, json.dumps(body), "application/json")
            elif self.route() == "/v1/completions":
                self.drain_body()
                n = max(1, min(256, int(self.query().get("n", "8"))))
                with replica.lock:
                    payload = replica.model["payload"]
                    version = replica.model["version"]
                self.start_stream()
                for i in range(n):
                    time.sleep(replica.token_delay)
                    token = payload[(i * 4) % len(payload):][:4].hex()
                    event = {"token": token, "index": i, "model": version, "replica": args.name}
                    self.chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
                self.chunk(b"data: [DONE]\n\n")
                self.chunk(b"")
            else:
                self.reply(404, "not found")

        do_POST = do_GET

    server = Server(("127.0.0.1", args.port), ReplicaHandler)
    log("replica", args.name, "serving", replica.model["version"], "on", args.port)
    server.serve_forever()


# ---- front -----------------------------------------------------------------------------

def front_main(args):
    names = ["r%d" % (i + 1) for i in range(args.replicas)]
    ports = {name: args.port + 1 + i for i, name in enumerate(names)}
    for name in names:
        os.makedirs(os.path.join(args.dir, name), exist_ok=True)
        weights = os.path.join(args.dir, name, "weights.bin")
        if not os.path.exists(weights):
            write_atomic(weights, model_bytes("v1", 65536))
    procs = {}
    lock = threading.Lock()

    def start(name):
        cmd = [sys.executable, os.path.abspath(__file__), "replica", "--port", str(ports[name]),
               "--name", name, "--weights", os.path.join(args.dir, name, "weights.bin"),
               "--token-delay", str(args.token_delay)]
        procs[name] = subprocess.Popen(cmd)

    def keeper():
        while True:
            time.sleep(0.05)
            for name in names:
                if procs[name].poll() is None:
                    continue
                log("replica", name, "exited with", procs[name].returncode, "restarting")
                time.sleep(args.restart_delay)  # not under the lock: requests go on meanwhile
                start(name)

    for name in names:
        start(name)
    # The replicas listen before the front does: the run's ready check means "serving".
    for name in names:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", ports[name], timeout=1).connect()
                break
            except OSError:
                time.sleep(0.02)
    threading.Thread(target=keeper, daemon=True).start()
    turn = [0]

    class FrontHandler(Handler):
        def proxy_stream(self):
            self.drain_body()
            with lock:
                first = turn[0]
                turn[0] += 1
            for k in range(len(names)):
                name = names[(first + k) % len(names)]
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", ports[name], timeout=10)
                    conn.request("GET", self.path)
                    upstream = conn.getresponse()
                except OSError:
                    continue  # refused or reset before anything was sent: the next one
                self.start_stream()
                while True:
                    data = upstream.read1(65536)
                    if not data:
                        break
                    self.chunk(data)
                self.chunk(b"")
                conn.close()
                return
            self.reply(503, "no replica answered")

        def do_GET(self):
            path = self.route()
            if path == "/v1/completions":
                self.proxy_stream()
            elif path == "/health":
                self.reply(200, "ok")
            elif path.startswith("/replicas/") and path.endswith("/health"):
                name = path.split("/")[2]
                if name not in ports:
                    self.reply(404, "no replica " + name)
                    return
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", ports[name], timeout=2)
                    conn.request("GET", "/health")
                    answer = conn.getresponse()
                    self.reply(answer.status, answer.read(), "application/json")
                except OSError as e:
                    self.reply(502, "replica %s: %s" % (name, e))
            else:
                self.reply(404, "not found")

        do_POST = do_GET

    def stop(*_):
        for p in procs.values():
            p.kill()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    server = Server(("127.0.0.1", args.port), FrontHandler)
    log("front on", args.port, "replicas", ports)
    server.serve_forever()


# ---- checkpoints -----------------------------------------------------------------------

def checkpoints(directory):
    out = []
    for name in os.listdir(directory):
        if name.startswith("ckpt-") and name.endswith(".bin"):
            try:
                out.append((int(name[5:-4]), name))
            except ValueError:
                pass
    return [name for _, name in sorted(out)]


def write_checkpoint(directory, step, size):
    path = os.path.join(directory, "ckpt-%d.bin" % step)
    write_atomic(path, model_bytes("step-%d" % step, size))
    dirfd = os.open(directory, os.O_DIRECTORY)
    os.fsync(dirfd)
    os.close(dirfd)


def trainer_main(args):
    os.makedirs(args.dir, exist_ok=True)
    step = 0
    done = checkpoints(args.dir)
    if done:
        step = int(done[-1][5:-4])
    else:
        write_checkpoint(args.dir, 0, args.size)  # training starts from a checkpoint
    if args.ready_port:
        # Listening (never accepting) says "a checkpoint exists": a run's ready check waits for it.
        ready = socket.socket()
        ready.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ready.bind(("127.0.0.1", args.ready_port))
        ready.listen(1)
    while True:
        time.sleep(args.every)
        step += 1
        path = os.path.join(args.dir, "ckpt-%d.bin" % step)
        try:
            write_checkpoint(args.dir, step, args.size)
        except OSError as e:
            log("checkpoint", step, "failed:", e)
            try:
                os.unlink(path + ".tmp")
            except OSError:
                pass
            continue
        for old in checkpoints(args.dir)[:-args.keep]:
            os.unlink(os.path.join(args.dir, old))


def verify_main(args):
    if not os.path.isdir(args.dir):
        print("no checkpoint directory %s" % args.dir)
        return 2
    done = checkpoints(args.dir)
    if not done:
        print("no checkpoint")
        return 2
    try:
        model = load_model(os.path.join(args.dir, done[-1]))
    except (OSError, ValueError) as e:
        print("%s does not load: %s" % (done[-1], e))
        return 1
    print("%s loads (%s)" % (done[-1], model["version"]))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("front")
    f.add_argument("--port", type=int, required=True)
    f.add_argument("--dir", required=True)
    f.add_argument("--replicas", type=int, default=3)
    f.add_argument("--token-delay", type=float, default=0.02)
    f.add_argument("--restart-delay", type=float, default=0.5)
    r = sub.add_parser("replica")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--name", required=True)
    r.add_argument("--weights", required=True)
    r.add_argument("--token-delay", type=float, default=0.02)
    w = sub.add_parser("make-weights")
    w.add_argument("file")
    w.add_argument("--version", default="v1")
    w.add_argument("--size", type=int, default=65536)
    t = sub.add_parser("trainer")
    t.add_argument("--dir", required=True)
    t.add_argument("--every", type=float, default=0.2)
    t.add_argument("--size", type=int, default=262144)
    t.add_argument("--keep", type=int, default=3)
    t.add_argument("--ready-port", type=int, default=0)
    v = sub.add_parser("verify-latest")
    v.add_argument("dir")
    args = p.parse_args()
    if args.cmd == "front":
        front_main(args)
    elif args.cmd == "replica":
        replica_main(args)
    elif args.cmd == "make-weights":
        write_atomic(args.file, model_bytes(args.version, args.size))
    elif args.cmd == "trainer":
        trainer_main(args)
    else:
        sys.exit(verify_main(args))


if __name__ == "__main__":
    main()
