#!/usr/bin/env python3
"""A small write-ahead-log service to inject syscall faults into, with no setup.

  wal-demo.py --port 18090 --dir /tmp/wal-demo [--cleanup]

POST /put appends the request body as one line to DIR/wal.log with write(2) and fsync(2):
200 "stored" when both succeeded, 503 "write refused" when either failed (the entry is not
acknowledged, the service stays up: what a careful storage service does on EIO).
With --cleanup it removes its log (and the directory, if it created it) when it stops.
GET / answers "ok". GET /stats reports stored and refused counts. Standard library only.
"""
import argparse
import http.server
import json
import os
import signal
import threading


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cleanup", action="store_true")
    args = parser.parse_args()
    created = not os.path.isdir(args.dir)
    os.makedirs(args.dir, exist_ok=True)
    wal = os.open(os.path.join(args.dir, "wal.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    lock = threading.Lock()
    counts = {"stored": 0, "refused": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/stats":
                self.reply(200, json.dumps(counts).encode() + b"\n")
            else:
                self.reply(200, b"ok\n")

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).replace(b"\n", b" ") + b"\n"
            with lock:
                try:
                    os.write(wal, body)
                    os.fsync(wal)
                    counts["stored"] += 1
                    status, text = 200, b"stored\n"
                except OSError as e:
                    counts["refused"] += 1
                    status, text = 503, ("write refused: %s\n" % os.strerror(e.errno)).encode()
            self.reply(status, text)

        def reply(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("wal-demo: serving on 127.0.0.1:%d, log in %s" % (args.port, args.dir), flush=True)
    server.serve_forever()
    print("wal-demo: stored %(stored)d, refused %(refused)d" % counts, flush=True)
    if args.cleanup:
        os.close(wal)
        os.unlink(os.path.join(args.dir, "wal.log"))
        if created:
            try:
                os.rmdir(args.dir)
            except OSError:
                pass  # something else was put there: leave it


if __name__ == "__main__":
    main()
