#!/usr/bin/env python3
"""A small token service whose answers depend on its wall clock, to skew it with no setup.

  clock-demo.py --port 18091 [--lifetime 600]

At start it issues a token valid for LIFETIME seconds by its own clock. GET /health answers
200 "token valid" while its clock is within [issued - 60 s, expiry), else 503 "token expired"
or "token not yet valid" (what a service checking certificates, leases or signed requests
does when its clock is wrong). GET /skew answers "skew=+S.SSSs": how far its wall clock
(CLOCK_REALTIME) has moved from its monotonic clock since it started, which time.skew leaves
true. Standard library only.
"""
import argparse
import http.server
import signal
import sys
import time

LEEWAY = 60.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18091)
    parser.add_argument("--lifetime", type=float, default=600.0)
    args = parser.parse_args()
    wall0, mono0 = time.time(), time.monotonic()
    issued, expiry = wall0, wall0 + args.lifetime

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            now = time.time()
            if self.path == "/skew":
                skew = (now - wall0) - (time.monotonic() - mono0)
                self.reply(200, ("skew=%+.3fs\n" % skew).encode())
            elif now < issued - LEEWAY:
                self.reply(503, b"token not yet valid\n")
            elif now >= expiry:
                self.reply(503, b"token expired\n")
            else:
                self.reply(200, b"token valid\n")

        def reply(self, code, body):
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    # One thread: Python's thread locks wait with sem_clockwait(CLOCK_MONOTONIC), which
    # Debian 12's libfaketime mishandles when the monotonic clock is left true.
    server = http.server.HTTPServer(("127.0.0.1", args.port), Handler)
    # One thread, so no server.shutdown() from the handler (it would wait for itself).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
