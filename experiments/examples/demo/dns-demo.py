#!/usr/bin/env python3
"""A resolver to run the dns.error demo against, with no setup.

  dns-demo.py --port 18097 --netns chaosd-dnsdemo --link dnsdemo0
      Creates two network namespaces joined by a veth pair: NETNS (the clients' side, LINK at
      10.204.0.1) and NETNS-dns (the resolver's, 10.204.0.2), and runs dnsmasq in NETNS-dns
      answering api.db.internal (and every *.db.internal) with 10.9.9.9 and web.internal with
      10.9.9.10, nothing else (no upstream, no /etc/hosts). Once dnsmasq answers, it listens
      on 127.0.0.1:PORT (accepting and closing connections) so a readiness check knows. A
      client in NETNS asks with `ip netns exec NETNS dig @10.204.0.2 NAME`.
      On SIGTERM it stops dnsmasq and removes both namespaces (a demo killed before it could
      clean up leaves them behind; the next start removes them first).

Needs root, iproute2 and dnsmasq (the demo's own scaffolding; chaosd itself never runs `ip`).
Standard library only.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

CLIENT_ADDR, RESOLVER_ADDR = "10.204.0.1", "10.204.0.2"


def run(*argv, check=True):
    return subprocess.run(argv, check=check, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL if not check else None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--netns", required=True)
    parser.add_argument("--link", required=True)
    args = parser.parse_args()
    ip = shutil.which("ip") or "/usr/sbin/ip"
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    client, resolver = args.netns, args.netns + "-dns"

    def remove():
        for ns in (client, resolver):
            if os.path.exists("/run/netns/" + ns):
                run(ip, "netns", "del", ns, check=False)

    remove()
    run(ip, "netns", "add", client)
    run(ip, "netns", "add", resolver)
    run(ip, "-n", client, "link", "add", args.link, "type", "veth", "peer", "name",
        args.link + "-dns", "netns", resolver)
    for ns, dev, addr in ((client, args.link, CLIENT_ADDR),
                          (resolver, args.link + "-dns", RESOLVER_ADDR)):
        run(ip, "-n", ns, "addr", "add", addr + "/24", "dev", dev)
        run(ip, "-n", ns, "link", "set", dev, "up")
        run(ip, "-n", ns, "link", "set", "lo", "up")
    server = subprocess.Popen([ip, "netns", "exec", resolver, dnsmasq, "--keep-in-foreground",
                               "--no-resolv", "--no-hosts", "--bind-interfaces",
                               "--listen-address=" + RESOLVER_ADDR, "--port=53", "--user=root",
                               "--pid-file=", "--address=/db.internal/10.9.9.9",
                               "--address=/web.internal/10.9.9.10"])
    print("dns-demo: namespaces %s (clients, %s on %s) and %s (dnsmasq on %s), pid %d"
          % (client, args.link, CLIENT_ADDR, resolver, RESOLVER_ADDR, server.pid), flush=True)

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    # Ready once dnsmasq accepts a TCP connection on its address (from the clients' side).
    deadline = time.monotonic() + 15
    while run(ip, "netns", "exec", client, sys.executable, "-c",
              "import socket; socket.create_connection(('%s', 53), timeout=0.5).close()"
              % RESOLVER_ADDR, check=False).returncode != 0:
        if time.monotonic() > deadline or server.poll() is not None:
            print("dns-demo: dnsmasq did not start", flush=True)
            server.kill()
            remove()
            return 1
        time.sleep(0.1)
    ready = socket.socket()
    ready.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ready.bind(("127.0.0.1", args.port))
    ready.listen(16)
    ready.settimeout(0.2)
    print("dns-demo: ready on 127.0.0.1:%d" % args.port, flush=True)
    while not stopping and server.poll() is None:
        try:
            conn, _ = ready.accept()
            conn.close()
        except (socket.timeout, InterruptedError):
            pass
    server.terminate()
    try:
        server.wait(timeout=3)
    except subprocess.TimeoutExpired:
        server.kill()
    remove()
    print("dns-demo: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
