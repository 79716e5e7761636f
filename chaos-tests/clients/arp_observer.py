#!/usr/bin/env python3
"""Watches who owns the virtual IP, the way a client on the same LAN finds out: by ARP.

Runs in the chaos lab's observer namespace. Every --interval-ms it broadcasts an ARP who-has for
the VIP and writes one JSON line per round with the MAC addresses that answered that round:

  {"round": 17, "t": 12345.678, "macs": ["02:77:0b:00:00:01"]}

Each round's request carries its own sender MAC (02:79:00:00:HH:LL, the round number modulo
4096) and the kernel of an owner replies to exactly that MAC, so a late reply is still counted in
the round it answers: two different MACs in one round means two hosts owned the address at once.
Gratuitous ARP for the VIP (sender IP == target IP) is written as {"garp": MAC, "t": ...}.

  arp_observer.py --iface eth0 --vip 10.77.11.100 --src-ip 10.77.11.201 --out FILE
                  [--interval-ms 20] [--duration 600]

It stops by itself after --duration seconds, or on SIGTERM/SIGINT; "t" is time.monotonic()
(CLOCK_MONOTONIC, the clock the harness uses for fault times).
"""

import argparse
import json
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ARP = 0x0806
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
TAGS = 4096
# A reply to a round counts for that round only if it arrives within this time; replies of
# rounds older than this are written as {"late": ...} instead, never silently dropped.
GRACE = 2.0

stopping = False


def on_signal(_signum, _frame):
    global stopping
    stopping = True


def mac_text(raw):
    return ":".join(f"{b:02x}" for b in raw)


def tag_mac(tag):
    return bytes([0x02, 0x79, 0x00, 0x00, tag >> 8, tag & 0xFF])


def request(tag, src_ip, vip):
    sha = tag_mac(tag)
    eth = b"\xff" * 6 + sha + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + sha + src_ip + b"\x00" * 6 + vip
    return eth + arp


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iface", default="eth0")
    parser.add_argument("--vip", required=True)
    parser.add_argument("--src-ip", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--interval-ms", type=int, default=20)
    parser.add_argument("--duration", type=float, default=600.0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    vip = socket.inet_aton(args.vip)
    src_ip = socket.inet_aton(args.src_ip)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    sock.bind((args.iface, ETH_P_ARP))
    # Replies go to each round's own MAC, which is not the interface's: receive them all.
    ifindex = socket.if_nametoindex(args.iface)
    mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
    sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)

    out = open(args.out, "a", buffering=1)
    interval = args.interval_ms / 1000.0
    start = time.monotonic()
    deadline = start + args.duration
    # round number -> (send time, set of MACs); written once older than GRACE.
    open_rounds = {}
    next_round = 0
    next_send = start

    def flush(now, everything=False):
        for n in sorted(open_rounds):
            sent, macs = open_rounds[n]
            if everything or now - sent > GRACE:
                out.write(json.dumps({"round": n, "t": round(sent, 6), "macs": sorted(macs)}) + "\n")
                del open_rounds[n]

    while not stopping:
        now = time.monotonic()
        if now >= deadline:
            break
        if now >= next_send:
            tag = next_round % TAGS
            try:
                sock.send(request(tag, src_ip, vip))
            except OSError as err:
                out.write(json.dumps({"send_error": str(err), "t": round(now, 6)}) + "\n")
            open_rounds[next_round] = (now, set())
            next_round += 1
            next_send += interval
            if next_send < now:
                # We were descheduled; do not burst to catch up.
                next_send = now + interval
            flush(now)
        timeout = max(0.0, next_send - time.monotonic())
        try:
            ready, _, _ = select.select([sock], [], [], timeout)
        except InterruptedError:
            continue
        if not ready:
            continue
        frame, addr = sock.recvfrom(2048)
        at = time.monotonic()
        if addr[2] == socket.PACKET_OUTGOING or len(frame) < 42:
            continue
        op = struct.unpack("!H", frame[20:22])[0]
        sha, spa, tha, tpa = frame[22:28], frame[28:32], frame[32:38], frame[38:42]
        if spa != vip:
            continue
        if tpa == vip:
            out.write(json.dumps({"garp": mac_text(sha), "op": op, "t": round(at, 6)}) + "\n")
            continue
        if op != 2 or tpa != src_ip or tha[:4] != b"\x02\x79\x00\x00":
            continue
        tag = (tha[4] << 8) | tha[5]
        # The newest open round with this tag (tags repeat only after TAGS rounds).
        matches = [n for n in open_rounds if n % TAGS == tag]
        if matches:
            open_rounds[max(matches)][1].add(mac_text(sha))
        else:
            out.write(json.dumps({"late": mac_text(sha), "tag": tag, "t": round(at, 6)}) + "\n")
    flush(time.monotonic(), everything=True)
    out.write(json.dumps({"end": round(time.monotonic(), 6), "rounds": next_round}) + "\n")
    out.close()


if __name__ == "__main__":
    sys.exit(main())
