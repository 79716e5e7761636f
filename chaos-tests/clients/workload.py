#!/usr/bin/env python3
"""Mail workload for the chaos scenarios, with Python's smtplib and poplib: what a client sees.

  workload.py run --host VIP --users a@d,b@d --password PW --seed N --out FILE
                  [--senders 3] [--max-messages 3000] [--duration 30] [--timeout 3]
                  [--pause-ms 40] [--delete-fraction 0.25] [--smtp-port 25] [--pop3-port 110]
                  [--connect-timeout 0.25]
  workload.py final --host IP --users a@d,b@d --password PW [--pop3-port 110]

`run` starts sender threads that each send one message at a time through --host:25, every
message with its own Message-ID and X-Chaos-Token header and a body that repeats the token; a
Message-ID is never sent twice, whatever the outcome. Every attempt becomes one JSON line:

  {"ev": "send", "id": "<...>", "token": "...", "user": "...", "start": T, "end": T,
   "code": 250 | 451 | ... | null, "stage": "connect|mail|rcpt|data|done", "error": "..."}

"code" is the reply to DATA when DATA was answered (null otherwise); "stage" is the last step
that started, so "data" with a null code means the message may or may not have been accepted.

A reader thread logs in over POP3 (STLS) through --host:110, lists UIDLs, reads the headers of
messages it has not seen (and re-reads a few it has, to catch a UIDL that changed meaning),
deletes a seeded fraction and quits:

  {"ev": "seen", "user": U, "uidl": "V.U", "id": "<...>", "token": "...", "t": T}
  {"ev": "deleted" | "delete_unknown", "user": U, "uidl": ..., "id": ..., "t": T}
  {"ev": "pop_error", "user": U, "error": "...", "t": T}

"deleted" is written only after QUIT answered +OK; "delete_unknown" when the session broke after
DELE. Times are time.monotonic() (CLOCK_MONOTONIC). Bounded by --max-messages and --duration
and stops early on SIGTERM/SIGINT (each thread finishes its current attempt, bounded by
--timeout).

`final` reads every message of every user in full (TOP 0, then RETR) from one node and prints
one JSON object: {"users": {U: [{"uidl", "id", "token", "body_ok", ["error"]}...]}} or
{"error": ...}; "error" is the server's -ERR for a message it could not serve.
"""

import argparse
import json
import poplib
import random
import signal
import smtplib
import socket
import ssl
import sys
import threading
import time
from email.parser import BytesHeaderParser, BytesParser
from email.policy import default as default_policy

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from common import Log, tls_context, uidl_map  # noqa: E402  (same directory)

stop = threading.Event()
count_lock = threading.Lock()


class ChaosSMTP(smtplib.SMTP):
    """smtplib with its own connect timeout: a SYN sent to a VIP owner that just vanished is
    given up after --connect-timeout and the next attempt starts, instead of waiting out the
    kernel's 1 s SYN retransmission (the workload measures when the service is back, not the
    client's TCP backoff)."""

    connect_timeout = 0.25

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), self.connect_timeout)
        sock.settimeout(timeout)
        return sock


class ChaosPOP3(poplib.POP3):
    connect_timeout = 0.25

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), self.connect_timeout)
        sock.settimeout(timeout)
        return sock


def body_for(token):
    return "".join(f"chaos token {token} line {i}\r\n" for i in range(8))


def build_message(mid, token, user, sender):
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    head = (
        f"From: {sender}\r\nTo: {user}\r\nSubject: chaos {token}\r\nDate: {date}\r\n"
        f"Message-ID: {mid}\r\nX-Chaos-Token: {token}\r\n\r\n"
    )
    return (head + body_for(token)).encode()


class Budget:
    def __init__(self, limit):
        self.left = limit

    def take(self):
        with count_lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def sender(k, args, log, budget, deadline):
    rng = random.Random(f"{args.seed}-sender-{k}")
    users = args.users.split(",")
    seq = 0
    while not stop.is_set() and time.monotonic() < deadline and budget.take():
        seq += 1
        mid = f"<{args.seed}.{k}.{seq}@chaos.test>"
        token = f"{rng.getrandbits(64):016x}"
        user = rng.choice(users)
        record = {"ev": "send", "id": mid, "token": token, "user": user, "code": None}
        stage = "connect"
        record["start"] = time.monotonic()
        smtp = None
        try:
            smtp = ChaosSMTP(args.host, args.smtp_port, timeout=args.timeout)
            stage = "ehlo"
            smtp.ehlo("client.chaos.test")
            stage = "mail"
            code, reply = smtp.mail("sender@remote.test")
            if code != 250:
                raise smtplib.SMTPResponseException(code, reply)
            stage = "rcpt"
            code, reply = smtp.rcpt(user)
            if code not in (250, 251):
                raise smtplib.SMTPResponseException(code, reply)
            stage = "data"
            code, reply = smtp.data(build_message(mid, token, user, "sender@remote.test"))
            record["code"] = code
            record["reply"] = reply.decode(errors="replace")[:200]
            stage = "done"
        except smtplib.SMTPResponseException as err:
            if stage == "data":
                record["code"] = err.smtp_code
            record["error"] = f"{err.smtp_code} {err.smtp_error!r}"[:200]
        except (smtplib.SMTPException, OSError, ssl.SSLError) as err:
            record["error"] = f"{type(err).__name__}: {err}"[:200]
        finally:
            record["end"] = time.monotonic()
            record["stage"] = stage
            if smtp is not None:
                try:
                    if stage == "done":
                        smtp.quit()
                    else:
                        smtp.close()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        log.write(record)
        if record["code"] == 250:
            stop.wait(args.pause_ms / 1000.0 * (0.5 + rng.random()))
        else:
            # Retry soon (with a new message) so the failover time is measured finely.
            stop.wait(0.02)


def header_fields(raw_lines):
    parsed = BytesHeaderParser(policy=default_policy).parsebytes(b"\r\n".join(raw_lines) + b"\r\n")
    return str(parsed["Message-ID"] or ""), str(parsed["X-Chaos-Token"] or "")


def login(host, port, user, password, timeout):
    pop = ChaosPOP3(host, port, timeout=timeout)
    try:
        pop.stls(context=tls_context())
        pop.user(user)
        pop.pass_(password)
    except BaseException:
        pop.close()
        raise
    return pop


def reader(args, log, deadline):
    rng = random.Random(f"{args.seed}-reader")
    users = args.users.split(",")
    known = {user: {} for user in users}  # uidl -> (id, token)
    turn = 0
    while not stop.is_set() and time.monotonic() < deadline:
        user = users[turn % len(users)]
        turn += 1
        pop = None
        marked = []
        try:
            pop = login(args.host, args.pop3_port, user, args.password, args.timeout)
            listing = uidl_map(pop)
            recheck = [n for n, u in listing.items() if u in known[user]]
            recheck = set(rng.sample(recheck, min(3, len(recheck))))
            for num, uidl in sorted(listing.items()):
                if uidl in known[user] and num not in recheck:
                    continue
                mid, token = header_fields(pop.top(num, 0)[1])
                known[user][uidl] = (mid, token)
                log.write({"ev": "seen", "user": user, "uidl": uidl, "id": mid, "token": token,
                           "t": time.monotonic()})
            for num, uidl in sorted(listing.items()):
                if rng.random() < args.delete_fraction:
                    pop.dele(num)
                    marked.append(uidl)
            reply = pop.quit()
            pop = None
            if reply.startswith(b"+OK"):
                for uidl in marked:
                    mid, token = known[user].pop(uidl)
                    log.write({"ev": "deleted", "user": user, "uidl": uidl, "id": mid,
                               "token": token, "t": time.monotonic()})
                marked = []
        except (poplib.error_proto, OSError, ssl.SSLError, ValueError, KeyError) as err:
            log.write({"ev": "pop_error", "user": user, "error": f"{type(err).__name__}: {err}"[:200],
                       "t": time.monotonic()})
        finally:
            if pop is not None:
                pop.close()
            for uidl in marked:
                mid, token = known[user].pop(uidl)
                log.write({"ev": "delete_unknown", "user": user, "uidl": uidl, "id": mid,
                           "token": token, "t": time.monotonic()})
        stop.wait(0.2)


def run(args):
    ChaosSMTP.connect_timeout = args.connect_timeout
    ChaosPOP3.connect_timeout = args.connect_timeout
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log = Log(args.out)
    deadline = time.monotonic() + args.duration
    log.write({"ev": "start", "t": time.monotonic(), "seed": args.seed})
    budget = Budget(args.max_messages)
    threads = [threading.Thread(target=sender, args=(k, args, log, budget, deadline))
               for k in range(args.senders)]
    if args.delete_fraction >= 0:
        threads.append(threading.Thread(target=reader, args=(args, log, deadline)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.write({"ev": "end", "t": time.monotonic()})


def final(args):
    ChaosPOP3.connect_timeout = args.timeout
    users = {}
    for user in args.users.split(","):
        pop = login(args.host, args.pop3_port, user, args.password, args.timeout)
        messages = []
        for num, uidl in sorted(uidl_map(pop).items()):
            entry = {"uidl": uidl, "id": "", "token": "", "body_ok": False}
            try:
                entry["id"], entry["token"] = header_fields(pop.top(num, 0)[1])
                raw = b"\r\n".join(pop.retr(num)[1]) + b"\r\n"
            except poplib.error_proto as err:
                # The session goes on after an -ERR: note it, read the rest.
                entry["error"] = str(err)[:200]
                messages.append(entry)
                continue
            parsed = BytesParser(policy=default_policy).parsebytes(raw)
            token = str(parsed["X-Chaos-Token"] or "")
            body = parsed.get_payload()
            entry["body_ok"] = bool(token) and token == entry["token"] and \
                isinstance(body, str) and \
                body.replace("\r\n", "\n") == body_for(token).replace("\r\n", "\n")
            messages.append(entry)
        pop.quit()
        users[user] = messages
    print(json.dumps({"users": users}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "final"):
        p = sub.add_parser(name)
        p.add_argument("--host", required=True)
        p.add_argument("--users", required=True)
        p.add_argument("--password", required=True)
        p.add_argument("--pop3-port", type=int, default=110)
        p.add_argument("--timeout", type=float, default=3.0)
    r = sub.choices["run"]
    r.add_argument("--seed", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--smtp-port", type=int, default=25)
    r.add_argument("--connect-timeout", type=float, default=0.25)
    r.add_argument("--senders", type=int, default=3)
    r.add_argument("--max-messages", type=int, default=3000)
    r.add_argument("--duration", type=float, default=30.0)
    r.add_argument("--pause-ms", type=float, default=40.0)
    r.add_argument("--delete-fraction", type=float, default=0.25)
    args = parser.parse_args()
    if args.command == "run":
        run(args)
    else:
        try:
            final(args)
        except (poplib.error_proto, OSError, ssl.SSLError) as err:
            print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
