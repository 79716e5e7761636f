#!/usr/bin/env python3
"""Real mail clients for the chaos tests: Python's smtplib and poplib, driven from the command
line, printing one JSON object with what the server answered.

  mailclient.py send --host H --port P --mode plain|starttls|tls [--user U --password W]
                     --from A --to B [--to C] --subject S [--body-bytes N]
  mailclient.py bulk --host H --port P --mode starttls --user U --password W --from A
                     --count N --domain D [--domain E ...]
  mailclient.py pop3 --host H --port P --mode plain|stls|tls --user U --password W
                     [--delete-all] [--auth plain|user]

Certificates are not verified: test clusters use the self-signed certificate `init` makes.
"""

import argparse
import json
import poplib
import smtplib
import sys
import time
import uuid
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from common import server_command, tls_context, uidl_map  # noqa: E402  (same directory)

TIMEOUT = 30


def smtp_session(args):
    """Connects as --mode says, says EHLO, and logs in when --user is given."""
    if args.mode == "tls":
        smtp = smtplib.SMTP_SSL(args.host, args.port, timeout=TIMEOUT, context=tls_context())
    else:
        smtp = smtplib.SMTP(args.host, args.port, timeout=TIMEOUT)
    smtp.ehlo("client.chaos.test")
    if args.mode == "starttls":
        smtp.starttls(context=tls_context())
        smtp.ehlo("client.chaos.test")
    if args.user:
        smtp.login(args.user, args.password)
    return smtp


def send(args):
    msg = EmailMessage()
    msg["From"] = args.sender
    msg["To"] = ", ".join(args.to)
    msg["Subject"] = args.subject
    msg["Message-ID"] = f"<{uuid.uuid4()}@chaos.test>"
    msg["Date"] = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    line = "The quick brown fox jumps over the lazy dog. " * 1 + "\n"
    body = ""
    while len(body) < args.body_bytes:
        body += line
    msg.set_content(body or "hello\n")
    smtp = smtp_session(args)
    code, reply = smtp.mail(args.sender)
    if code != 250:
        raise SystemExit(f"MAIL FROM refused: {code} {reply!r}")
    for rcpt in args.to:
        code, reply = smtp.rcpt(rcpt)
        if code not in (250, 251):
            raise SystemExit(f"RCPT TO {rcpt} refused: {code} {reply!r}")
    # On the wire every line ends in CRLF (smtplib's send_message does the same).
    code, reply = smtp.data(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))
    smtp.quit()
    print(json.dumps({"code": code, "reply": reply.decode(), "message_id": msg["Message-ID"]}))


def bulk(args):
    """N messages over one session, message i to u<i>@<domain i mod len>; prints their
    Message-IDs in order. Stops at the first refusal (and says so)."""
    smtp = smtp_session(args)
    ids = []
    for i in range(args.count):
        msg = EmailMessage()
        msg["From"] = args.sender
        rcpt = f"u{i}@{args.domain[i % len(args.domain)]}"
        msg["To"] = rcpt
        msg["Subject"] = f"bulk {i}"
        msg["Message-ID"] = f"<bulk-{i}-{uuid.uuid4()}@chaos.test>"
        msg["Date"] = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        msg.set_content(f"message {i}\n")
        try:
            smtp.sendmail(args.sender, [rcpt], msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))
        except smtplib.SMTPException as err:
            print(json.dumps({"ids": ids, "error": f"message {i}: {type(err).__name__}: {err}"}))
            return
        ids.append(msg["Message-ID"])
    smtp.quit()
    print(json.dumps({"ids": ids}))


def pop3(args):
    if args.mode == "tls":
        pop = poplib.POP3_SSL(args.host, args.port, timeout=TIMEOUT, context=tls_context())
    else:
        pop = poplib.POP3(args.host, args.port, timeout=TIMEOUT)
    caps = pop.capa()
    if args.mode == "stls":
        pop.stls(context=tls_context())
    if args.auth == "plain":
        # SASL PLAIN with an initial response (RFC 5034).
        import base64

        token = base64.b64encode(f"\0{args.user}\0{args.password}".encode()).decode()
        pop._shortcmd(f"AUTH PLAIN {token}")
    else:
        pop.user(args.user)
        pop.pass_(args.password)
    count, size = pop.stat()
    uidls = uidl_map(pop)
    messages = []
    for num in range(1, count + 1):
        lines = pop.retr(num)[1]
        raw = b"\r\n".join(lines) + b"\r\n"
        parsed = BytesParser(policy=default_policy).parsebytes(raw)
        top = pop.top(num, 0)[1]
        messages.append(
            {
                "uidl": uidls[num],
                "subject": str(parsed["Subject"]),
                "message_id": str(parsed["Message-ID"]),
                "size": len(raw),
                "top_lines": len(top),
                "received": len(parsed.get_all("Received") or []),
                "return_path": str(parsed["Return-Path"]),
            }
        )
        if args.raw:
            messages[-1]["raw"] = raw.decode("utf-8", "replace")
        if args.delete_all:
            pop.dele(num)
    reply = pop.quit()
    print(
        json.dumps(
            {
                "count": count,
                "size": size,
                "capa": sorted(caps.keys()),
                "messages": messages,
                "quit": reply.decode(),
            }
        )
    )


def smtp_command(sub, name, default_mode):
    """send and bulk: the options smtp_session reads, and --from."""
    parser = server_command(sub, name)
    parser.add_argument("--mode", choices=["plain", "starttls", "tls"], default=default_mode)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--from", dest="sender", required=True)
    return parser


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = smtp_command(sub, "send", "plain")
    s.add_argument("--to", action="append", required=True)
    s.add_argument("--subject", required=True)
    s.add_argument("--body-bytes", type=int, default=200)
    b = smtp_command(sub, "bulk", "starttls")
    b.add_argument("--count", type=int, required=True)
    b.add_argument("--domain", action="append", required=True)
    p = server_command(sub, "pop3")
    p.add_argument("--mode", choices=["plain", "stls", "tls"], default="stls")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--auth", choices=["user", "plain"], default="user")
    p.add_argument("--delete-all", action="store_true")
    p.add_argument("--raw", action="store_true", help="include each message's text")
    args = parser.parse_args()
    try:
        {"send": send, "bulk": bulk, "pop3": pop3}[args.command](args)
    except (smtplib.SMTPException, poplib.error_proto, OSError) as err:
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        sys.exit(2)


if __name__ == "__main__":
    main()
