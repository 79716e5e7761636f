#!/usr/bin/env python3
"""An SMTP sink for the outbound tests (aiosmtpd): accepts mail, or tempfails (4xx) or permfails
(5xx) it at MAIL, RCPT or DATA as a behaviour spec says, and records every transaction.

  smtp_sink.py --record RECORDS.jsonl [--connections CONNECTIONS.jsonl] [--host 127.0.0.2]
               [--port 0] [--spec SPEC.json] [--tls-dir DIR]

Spec (every key optional; no spec accepts everything):
  {"rules": [{"at": "mail" | "rcpt" | "data",
              "match": "regex searched in the sender (mail) or recipient (rcpt, data: any)",
              "reply": "451 4.3.0 try again later",
              "first": 2}],
   "delay": 0.5,            # seconds before each reply to MAIL, RCPT and DATA
   "greeting_delay": 0.5,   # seconds before the 220 greeting
   "starttls": true,        # offer STARTTLS with a self-signed certificate made at start
   "auth": {"user": "relay", "password": "secret"},   # offer AUTH PLAIN and LOGIN
   "idle_timeout": 0.5}     # drop a client silent this long (default 60 s), without a reply

The first rule that matches a command gives its reply. A rule with "first": N gives its reply only
the first N times it matches (counted over the sink's whole life), then stands aside: "tempfail
the first N attempts, then accept". With "auth", MAIL before a successful AUTH is refused with 530,
and AUTH is offered without TLS too (the tests relay over loopback).

Every transaction is recorded as one JSON line: when it ended (DATA answered, MAIL refused, or
RSET, QUIT, a new MAIL or the connection's end after RCPT without DATA), with the peer, the
connection's number (1, 2, ... in the order the sink accepted them), HELO name, TLS and AUTH
state, sender, accepted and refused recipients, the data's sha256, size and Message-ID, the stage
it ended at and the reply given there.

With --connections, every connection is also recorded there as one JSON line when it ends: its
number, peer, when it opened and closed, how many transactions were recorded on it, how many
RSETs it got, and whether the client said QUIT.

When listening it prints one JSON line to stdout: {"ready": true, "host", "port", "cert"}.
It stops on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import hashlib
import ipaddress
import json
import logging
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from email.parser import BytesHeaderParser

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# A client that goes quiet is dropped after this long (aiosmtpd's own read timeout), unless the
# spec's "idle_timeout" says otherwise.
SESSION_TIMEOUT = 60.0


class Rule:
    def __init__(self, doc):
        self.at = doc["at"]
        if self.at not in ("mail", "rcpt", "data"):
            raise ValueError(f"rule stage must be mail, rcpt or data, not {self.at!r}")
        self.match = re.compile(doc["match"], re.IGNORECASE) if "match" in doc else None
        self.reply = doc["reply"]
        if not re.match(r"^[245]\d\d ", self.reply):
            raise ValueError(f"rule reply must start with a 2xx/4xx/5xx code: {self.reply!r}")
        self.first = doc.get("first")
        self.hits = 0

    def applies(self, stage, addresses):
        if stage != self.at:
            return False
        if self.match is not None and not any(self.match.search(a or "") for a in addresses):
            return False
        if self.first is not None and self.hits >= self.first:
            return False
        self.hits += 1
        return True


class Recorder:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)

    def write(self, record):
        self.file.write(json.dumps(record) + "\n")


class Handler:
    def __init__(self, spec, recorder, connections):
        self.rules = [Rule(r) for r in spec.get("rules", [])]
        self.delay = float(spec.get("delay", 0))
        self.auth = spec.get("auth")
        self.recorder = recorder
        self.connections = connections
        self.n_connections = 0

    def rule_reply(self, stage, addresses):
        for rule in self.rules:
            if rule.applies(stage, addresses):
                return rule.reply
        return None

    async def pause(self):
        if self.delay:
            await asyncio.sleep(self.delay)

    def record(self, server, stage, reply, data=None):
        session, txn = server.session, server.txn
        record = {
            "time": time.time(),
            "peer": f"{session.peer[0]}:{session.peer[1]}" if session.peer else None,
            "connection": server.connection_id,
            "helo": session.host_name,
            "tls": server._tls_protocol is not None,
            "auth_user": server.auth_user,
            "mail_from": txn.get("mail_from"),
            "rcpts": txn.get("rcpts", []),
            "refused_rcpts": txn.get("refused_rcpts", []),
            "data_sha256": None,
            "size": None,
            "message_id": None,
            "stage": stage,
            "reply": reply,
        }
        if data is not None:
            record["data_sha256"] = hashlib.sha256(data).hexdigest()
            record["size"] = len(data)
            headers = BytesHeaderParser().parsebytes(data)
            message_id = headers.get("Message-ID")
            record["message_id"] = str(message_id).strip() if message_id else None
        self.recorder.write(record)
        server.n_transactions += 1
        server.txn = {}

    def flush(self, server, why):
        """Records a transaction that got RCPT answers but never reached DATA."""
        if server.txn.get("mail_from") is not None:
            self.record(server, "rcpt", why)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.flush(server, "abandoned before DATA")
        await self.pause()
        if self.auth and not server.auth_user:
            reply = "530 5.7.0 authentication required"
            server.txn = {"mail_from": address}
            self.record(server, "mail", reply)
            return reply
        reply = self.rule_reply("mail", [address])
        if reply and not reply.startswith("2"):
            server.txn = {"mail_from": address}
            self.record(server, "mail", reply)
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        server.txn = {"mail_from": address, "rcpts": [], "refused_rcpts": []}
        return reply or "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await self.pause()
        reply = self.rule_reply("rcpt", [address])
        if reply and not reply.startswith("2"):
            server.txn.setdefault("refused_rcpts", []).append({"rcpt": address, "reply": reply})
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        server.txn.setdefault("rcpts", []).append(address)
        return reply or "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        await self.pause()
        reply = self.rule_reply("data", envelope.rcpt_tos) or "250 2.0.0 OK queued"
        self.record(server, "data", reply, envelope.content)
        return reply

    async def handle_RSET(self, server, session, envelope):
        self.flush(server, "reset before DATA")
        server.n_rset += 1
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        self.flush(server, "quit before DATA")
        server.quit = True
        return "221 Bye"

    def connection_closed(self, server):
        if self.connections is None:
            return
        self.connections.write({
            "connection": server.connection_id,
            "peer": server.peer,
            "opened": server.opened,
            "closed": time.time(),
            "transactions": server.n_transactions,
            "rsets": server.n_rset,
            "quit": server.quit,
        })


class SinkSMTP(SMTP):
    """aiosmtpd's SMTP with a greeting delay, a per-connection transaction and the AUTH user."""

    def __init__(self, handler, greeting_delay, **kwargs):
        super().__init__(handler, **kwargs)
        self.greeting_delay = greeting_delay
        self.txn = {}
        self.auth_user = None
        # One protocol object per TCP connection (STARTTLS keeps it), so it holds the number.
        handler.n_connections += 1
        self.connection_id = handler.n_connections
        self.opened = time.time()
        self.peer = None
        self.n_transactions = 0
        self.n_rset = 0
        self.quit = False
        self.closed = False

    def connection_made(self, transport):
        super().connection_made(transport)
        if self.peer is None and self.session.peer:
            self.peer = f"{self.session.peer[0]}:{self.session.peer[1]}"

    async def _handle_client(self):
        if self.greeting_delay:
            await asyncio.sleep(self.greeting_delay)
        await super()._handle_client()

    def connection_lost(self, error):
        self.event_handler.flush(self, "connection lost before DATA")
        if not self.closed:
            self.closed = True
            self.event_handler.connection_closed(self)
        super().connection_lost(error)


def make_cert(tls_dir, host):
    """A self-signed certificate for sink.test and the listening address, which clients may pin."""
    cert = os.path.join(tls_dir, "sink-cert.pem")
    key = os.path.join(tls_dir, "sink-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=sink.test", "-addext", f"subjectAltName=DNS:sink.test,IP:{host}",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--record", required=True)
    parser.add_argument("--connections")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--spec")
    parser.add_argument("--tls-dir")
    args = parser.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        sys.exit(f"smtp_sink.py listens only on loopback addresses, not {args.host}")
    # aiosmtpd logs every session (and a deprecation warning per AUTH); keep stderr for real errors.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    spec = {}
    if args.spec:
        with open(args.spec) as f:
            spec = json.load(f)
    connections = Recorder(args.connections) if args.connections else None
    handler = Handler(spec, Recorder(args.record), connections)

    tls_context, cert = None, None
    if spec.get("starttls"):
        tls_dir = args.tls_dir or tempfile.mkdtemp(prefix="smtp-sink-")
        cert, key = make_cert(tls_dir, args.host)
        tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_context.load_cert_chain(cert, key)

    auth = spec.get("auth")

    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = (auth_data.login.decode(errors="replace") == auth["user"]
              and auth_data.password.decode(errors="replace") == auth["password"])
        if ok:
            server.auth_user = auth["user"]
        return AuthResult(success=ok, handled=False)

    def factory():
        kwargs = dict(hostname="sink.test", tls_context=tls_context,
                      timeout=float(spec.get("idle_timeout", SESSION_TIMEOUT)),
                      data_size_limit=64 * 1024 * 1024)
        if auth:
            kwargs.update(authenticator=authenticator, auth_require_tls=False)
        else:
            # Without "auth" the sink offers no AUTH at all, also after STARTTLS.
            kwargs.update(auth_exclude_mechanism=["LOGIN", "PLAIN"])
        return SinkSMTP(handler, float(spec.get("greeting_delay", 0)), **kwargs)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(factory, args.host, args.port))
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"ready": True, "host": args.host, "port": port, "cert": cert}), flush=True)
    loop.run_until_complete(stop.wait())
    server.close()


if __name__ == "__main__":
    main()
