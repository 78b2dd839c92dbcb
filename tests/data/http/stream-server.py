#!/usr/bin/env python3
"""A streaming HTTP server with known delays, for the tests of the streamed-response figures.

  stream-server.py      binds 127.0.0.1 on a free port and prints "PORT\n" once it listens

Paths (query parameters in milliseconds):
  /sse?first=F&gap=G&n=N    text/event-stream: a comment at once (the first byte), then waits
                            F, sends event 1, then N-1 more G apart; the comment lines
                            (": keep-alive") before each event do not count
  /lines?first=F&gap=G&n=N  chunked NDJSON: the same timing, one {"token": i} line per chunk
  /plain                    a Content-Length answer, not streamed
  /stall?ms=M               waits M, then answers "ok" (Content-Length)
  /serial?ms=M              answers "ok" after M of work done one request at a time: a server
                            whose capacity is 1000/M requests per second
  /window?at=A&for=F        answers "ok" at once, except that a request received from A to A+F
                            ms after the server's first /window request waits until A+F: the
                            whole server stalls for F
  anything else             "ok"
HTTP/1.0-style close after each response; a thread per connection (python stdlib only).
"""
import http.server
import json
import socketserver
import sys
import threading
import time
import urllib.parse


FIRST = None
LOCK = threading.Lock()
SERIAL = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def params(self):
        query = urllib.parse.urlparse(self.path).query
        return {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def stream(self, content_type, render, opening=b""):
        p = self.params()
        first = float(p.get("first", "0")) / 1000
        gap = float(p.get("gap", "0")) / 1000
        n = int(p.get("n", "1"))
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        start = time.monotonic()
        if opening:
            self.chunk(opening)
        for i in range(n):
            due = start + first + i * gap  # on a schedule: a late write does not delay the rest
            time.sleep(max(0.0, due - time.monotonic()))
            self.chunk(render(i))
        self.chunk(b"")

    def plain(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path
        if path == "/sse":
            self.stream("text/event-stream",
                        lambda i: b": keep-alive\n\ndata: {\"token\": %d}\n\n" % i,
                        opening=b": stream open\n\n")
        elif path == "/lines":
            self.stream("application/x-ndjson",
                        lambda i: (json.dumps({"token": i}) + "\n").encode())
        elif path == "/window":
            p = self.params()
            at = float(p.get("at", "0")) / 1000
            span = float(p.get("for", "0")) / 1000
            now = time.monotonic()
            with LOCK:
                global FIRST
                if FIRST is None:
                    FIRST = now
            rel = now - FIRST
            if at <= rel < at + span:
                time.sleep(at + span - rel)
            self.plain(b"ok")
        elif path == "/serial":
            with SERIAL:
                time.sleep(float(self.params().get("ms", "0")) / 1000)
            self.plain(b"ok")
        elif path == "/stall":
            time.sleep(float(self.params().get("ms", "0")) / 1000)
            self.plain(b"ok")
        else:
            self.plain(b"ok")

    do_POST = do_GET


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def main():
    server = Server(("127.0.0.1", 0), Handler)
    sys.stdout.write("%d\n" % server.server_address[1])
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
