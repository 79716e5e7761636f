#!/usr/bin/env python3
"""A sending MTA for the inbound-check tests: one SMTP transaction with Python's smtplib from a
chosen source address and HELO name, optionally DKIM-signed with dkimpy, and a report of every
reply as one JSON line on stdout.

  inbound_sender.py keygen --out KEY.pem
      makes a 2048-bit RSA key (openssl) and prints {"public": "<base64 DER>"} for the p= tag
  inbound_sender.py send --host H --port P --source IP --helo NAME --from ADDR --to ADDR...
      [--header-from ADDR] [--subject S] [--dkim-key KEY.pem --dkim-domain D --dkim-selector S]
      [--tamper] [--body TEXT] [--extra-header "Name: value"]...
      --tamper changes the body after signing, so the signature no longer verifies.

The report: {"greeting": [code, text], "ehlo": [code, text], "mail": [code, text],
"rcpt": [[code, text], ...], "data": [code, text] or null}. A greeting that is not 220 ends the
session there; so does a refused MAIL, or RCPT with no recipient accepted. Every socket operation
times out after 30 seconds.
"""

import argparse
import base64
import json
import smtplib
import subprocess
import sys
import time
from email.utils import formatdate, make_msgid

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from common import server_command  # noqa: E402  (same directory)

TIMEOUT = 30


def keygen(args):
    subprocess.run(["openssl", "genrsa", "-out", args.out, "2048"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    der = subprocess.run(["openssl", "rsa", "-in", args.out, "-pubout", "-outform", "DER"],
                         check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    print(json.dumps({"public": base64.b64encode(der).decode()}))


def build_message(args):
    header_from = args.header_from or args.sender
    lines = [
        f"From: <{header_from}>",
        f"To: <{args.to[0]}>",
        f"Subject: {args.subject}",
        *args.extra_header,
        f"Date: {formatdate(time.time())}",
        f"Message-ID: {make_msgid(domain=header_from.rsplit('@', 1)[-1])}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        args.body,
        "",
    ]
    message = "\r\n".join(lines).encode()
    if args.dkim_key:
        import dkim

        with open(args.dkim_key, "rb") as f:
            key = f.read()
        signature = dkim.sign(message, args.dkim_selector.encode(), args.dkim_domain.encode(), key,
                              include_headers=[b"from", b"to", b"subject", b"date",
                                               b"message-id"])
        message = signature + message
    if args.tamper:
        message = message.replace(args.body.encode(), args.body.encode() + b" (altered)")
    return message


def pair(reply):
    code, text = reply
    return [code, text.decode(errors="replace") if isinstance(text, bytes) else str(text)]


def send(args):
    report = {"greeting": None, "ehlo": None, "mail": None, "rcpt": [], "data": None}
    message = build_message(args)
    smtp = smtplib.SMTP(timeout=TIMEOUT, source_address=(args.source, 0))
    try:
        try:
            report["greeting"] = pair(smtp.connect(args.host, args.port))
        except smtplib.SMTPConnectError as err:
            report["greeting"] = [err.smtp_code, err.smtp_error.decode(errors="replace")]
            return report
        report["ehlo"] = pair(smtp.ehlo(args.helo))
        report["mail"] = pair(smtp.mail(args.sender))
        if report["mail"][0] != 250:
            return report
        accepted = 0
        for rcpt in args.to:
            reply = pair(smtp.rcpt(rcpt))
            report["rcpt"].append(reply)
            accepted += reply[0] == 250
        if not accepted:
            return report
        try:
            report["data"] = pair(smtp.data(message))
        except smtplib.SMTPDataError as err:
            report["data"] = [err.smtp_code, err.smtp_error.decode(errors="replace")]
        return report
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("--out", required=True)
    s = server_command(sub, "send")
    s.add_argument("--source", required=True)
    s.add_argument("--helo", required=True)
    s.add_argument("--from", dest="sender", required=True)
    s.add_argument("--to", action="append", required=True)
    s.add_argument("--header-from")
    s.add_argument("--subject", default="inbound check")
    s.add_argument("--body", default="Hello from the inbound check tests.")
    s.add_argument("--dkim-key")
    s.add_argument("--dkim-domain")
    s.add_argument("--dkim-selector")
    s.add_argument("--tamper", action="store_true")
    s.add_argument("--extra-header", action="append", default=[])
    args = parser.parse_args()
    if args.command == "keygen":
        keygen(args)
        return
    try:
        report = send(args)
    except (smtplib.SMTPException, OSError) as err:
        report = {"error": f"{type(err).__name__}: {err}"}
    print(json.dumps(report))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
