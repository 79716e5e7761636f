#!/usr/bin/env python3
"""A DNS stub for the outbound and inbound-check tests: serves MX, A, AAAA and TXT records from a JSON zone file over UDP
and TCP on one loopback address and port, answers NXDOMAIN for names it does not know, and can be
told to answer SERVFAIL for some names or never to answer for others (to test resolver failures).

  dns_stub.py --zone ZONE.json --log QUERIES.jsonl [--host 127.0.0.1] [--port 0]

Zone file:
  {"ttl": 60,
   "records": {"example.test": {"MX": [[10, "mx1.example.test"], [20, "mx2.example.test"]]},
               "mx1.example.test": {"A": ["127.0.0.2"], "AAAA": ["::1"]},
               "spf.example.test": {"TXT": ["v=spf1 -all"]}},
   "servfail": ["broken.test"],
   "timeout": ["silent.test"]}

Names match without case and without the trailing dot. A TXT string longer than 255 bytes is
sent as several character-strings (as DKIM keys are published). A known name asked for a type it lacks
gets an empty NOERROR answer (NODATA). The zone is read once: restart the stub to change it.

Each query is logged as one JSON line (time, transport, peer, qname, qtype, what was answered).
When both sockets listen it prints one JSON line to stdout: {"ready": true, "host": ..., "port":
...}. Port 0 picks a free port (the same for UDP and TCP). It stops on SIGTERM or SIGINT.
"""

import argparse
import ipaddress
import json
import signal
import socket
import struct
import sys
import threading
import time

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A, DNSRecord

# A TCP client that sends nothing is dropped after this long, so no thread waits forever.
TCP_READ_TIMEOUT = 10.0


def norm(name):
    return str(name).rstrip(".").lower()


class Zone:
    def __init__(self, doc):
        self.ttl = int(doc.get("ttl", 60))
        self.records = {norm(k): v for k, v in doc.get("records", {}).items()}
        self.servfail = {norm(n) for n in doc.get("servfail", [])}
        self.timeout = {norm(n) for n in doc.get("timeout", [])}

    def answer(self, request):
        """Returns (reply bytes or None for no answer, what was done)."""
        qname = request.q.qname
        name = norm(qname)
        qtype = QTYPE[request.q.qtype]
        if name in self.timeout:
            return None, "timeout"
        reply = request.reply()
        if name in self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack(), "SERVFAIL"
        if name not in self.records:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply.pack(), "NXDOMAIN"
        entry = self.records[name]
        for value in entry.get(qtype, []) if qtype in ("MX", "A", "AAAA", "TXT") else []:
            if qtype == "MX":
                rdata = MX(value[1], int(value[0]))
            elif qtype == "A":
                rdata = A(value)
            elif qtype == "TXT":
                data = value.encode()
                rdata = TXT([data[i:i + 255] for i in range(0, len(data), 255)] or [b""])
            else:
                rdata = AAAA(value)
            reply.add_answer(RR(qname, getattr(QTYPE, qtype), rdata=rdata, ttl=self.ttl))
        return reply.pack(), f"NOERROR {len(reply.rr)}"


class QueryLog:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, transport, peer, request, action):
        if request is None:
            qname, qtype = None, None
        else:
            qname, qtype = norm(request.q.qname), QTYPE[request.q.qtype]
        line = json.dumps({
            "time": time.time(),
            "transport": transport,
            "peer": f"{peer[0]}:{peer[1]}",
            "qname": qname,
            "qtype": qtype,
            "action": action,
        })
        with self.lock:
            self.file.write(line + "\n")


def handle(zone, log, transport, peer, data):
    try:
        request = DNSRecord.parse(data)
    except Exception as err:  # a malformed query is logged and dropped
        log.write(transport, peer, None, f"unparsable: {err}")
        return None
    reply, action = zone.answer(request)
    log.write(transport, peer, request, action)
    return reply


def serve_udp(sock, zone, log):
    while True:
        data, peer = sock.recvfrom(65535)
        reply = handle(zone, log, "udp", peer, data)
        if reply is not None:
            sock.sendto(reply, peer)


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def serve_tcp_client(conn, peer, zone, log):
    conn.settimeout(TCP_READ_TIMEOUT)
    try:
        while True:
            head = read_exact(conn, 2)
            if head is None:
                return
            data = read_exact(conn, struct.unpack("!H", head)[0])
            if data is None:
                return
            reply = handle(zone, log, "tcp", peer, data)
            if reply is None:
                # "timeout": say nothing; the client gives up or we drop it after the read timeout
                continue
            conn.sendall(struct.pack("!H", len(reply)) + reply)
    except OSError:
        return
    finally:
        conn.close()


def serve_tcp(sock, zone, log):
    while True:
        conn, peer = sock.accept()
        threading.Thread(target=serve_tcp_client, args=(conn, peer, zone, log), daemon=True).start()


def bind(host, port):
    """UDP and TCP sockets on one port; with port 0, retries until a free UDP port is free for
    TCP too."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((host, port))
        chosen = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, chosen))
        except OSError:
            udp.close()
            tcp.close()
            if port:
                raise
            continue
        tcp.listen(64)
        return udp, tcp, chosen
    sys.exit("dns_stub.py found no port free for both UDP and TCP")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zone", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        sys.exit(f"dns_stub.py listens only on loopback addresses, not {args.host}")
    with open(args.zone) as f:
        zone = Zone(json.load(f))
    log = QueryLog(args.log)

    udp, tcp, port = bind(args.host, args.port)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    threading.Thread(target=serve_udp, args=(udp, zone, log), daemon=True).start()
    threading.Thread(target=serve_tcp, args=(tcp, zone, log), daemon=True).start()
    print(json.dumps({"ready": True, "host": args.host, "port": port}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
