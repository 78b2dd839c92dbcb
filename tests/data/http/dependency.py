#!/usr/bin/env python3
"""A dependency for http.fault's tests and demo: HTTP/1.1 with keep-alive on one port, raw echo
on others. No Date or Server header, so two answers to the same request are byte-identical.

  dependency.py ADDRESS HTTP_PORT [ECHO_PORT...]     (ADDRESS "::": every address, v4 and v6)

HTTP paths: /echo answers with the raw request it received (head and body) as its body;
/big/N answers N bytes of 'x'; /count answers how many requests the server has seen; anything
else answers "ok <path>". A request body (Content-Length) is read and counted, never stored.
"""
import socket
import sys
import threading

count = 0
lock = threading.Lock()


def read_head(conn, buf):
    while b"\r\n\r\n" not in buf:
        got = conn.recv(65536)
        if not got:
            return None, buf
        buf += got
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def serve_http(conn):
    global count
    buf = b""
    try:
        while True:
            head, buf = read_head(conn, buf)
            if head is None:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0"))
            body = b""
            while length > 0:
                if not buf:
                    buf = conn.recv(65536)
                    if not buf:
                        return
                take = buf[:length]
                if path == "/echo":
                    body += take
                buf = buf[len(take):]
                length -= len(take)
            with lock:
                count += 1
                seen = count
            if path == "/echo":
                out = head + body
            elif path.startswith("/big/"):
                out = b"x" * int(path[5:])
            elif path == "/count":
                out = str(seen).encode()
            else:
                out = ("ok " + path).encode()
            close = headers.get("connection", "").lower() == "close"
            resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" % len(out)
            resp += b"Connection: close\r\n\r\n" if close else b"\r\n"
            conn.sendall(resp if method == "HEAD" else resp + out)
            if close:
                return
    except (ConnectionError, OSError):
        pass
    finally:
        conn.close()


def serve_echo(conn):
    try:
        while True:
            got = conn.recv(65536)
            if not got:
                return
            conn.sendall(got)
    except (ConnectionError, OSError):
        pass
    finally:
        conn.close()


def listen(address, port, handler):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # "::" takes IPv4 too
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    s.listen(512)

    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=handler, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def main():
    address = sys.argv[1]
    listen(address, int(sys.argv[2]), serve_http)
    for p in sys.argv[3:]:
        listen(address, int(p), serve_echo)
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
