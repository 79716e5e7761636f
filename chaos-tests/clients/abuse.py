#!/usr/bin/env python3
"""What an attacker on the internet does to a mail server, with real smtplib sessions, for the
protection tests. Prints one JSON object with what the server answered.

  abuse.py relay --host H --from A --to B
      Port 25 without AUTH: MAIL FROM and RCPT TO for a domain that is not the server's.
  abuse.py spoof --host H --user U --password W --from A
      Submission (587, STARTTLS) as U, then MAIL FROM:<A>.
  abuse.py login --host H --user U --password W [--password W2 ...]
      One submission session per password (587, STARTTLS, AUTH): each answer and how long it
      took.
  abuse.py flood --host H --port P --count N [--deadline S]
      Opens N connections one after another, reads each greeting and closes: the greetings.

Bounded: every socket has a timeout, and flood stops at its deadline.
"""

import argparse
import json
import smtplib
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from common import reply, tls_context  # noqa: E402  (same directory)

TIMEOUT = 15


def relay(args):
    smtp = smtplib.SMTP(args.host, 25, timeout=TIMEOUT)
    smtp.ehlo("attacker.example")
    mail = reply(*smtp.mail(args.sender))
    rcpt = reply(*smtp.rcpt(args.to))
    smtp.quit()
    return {"mail": mail, "rcpt": rcpt}


def submission(args):
    smtp = smtplib.SMTP(args.host, 587, timeout=TIMEOUT)
    smtp.ehlo("attacker.example")
    smtp.starttls(context=tls_context())
    smtp.ehlo("attacker.example")
    return smtp


def spoof(args):
    smtp = submission(args)
    smtp.login(args.user, args.password[0])
    mail = reply(*smtp.mail(args.sender))
    smtp.quit()
    return {"mail": mail}


def login(args):
    attempts = []
    for password in args.password:
        smtp = submission(args)
        started = time.monotonic()
        # One AUTH PLAIN per password: smtplib's login() would try LOGIN after PLAIN failed,
        # two guesses per password.
        smtp.user, smtp.password = args.user, password
        try:
            code, text = smtp.auth("PLAIN", smtp.auth_plain)
        except smtplib.SMTPAuthenticationError as err:
            code, text = err.smtp_code, err.smtp_error
        elapsed = time.monotonic() - started
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        attempts.append({**reply(code, text), "secs": round(elapsed, 3)})
    return {"attempts": attempts}


def flood(args):
    greetings = []
    deadline = time.monotonic() + args.deadline
    for _ in range(args.count):
        if time.monotonic() > deadline:
            break
        try:
            with socket.create_connection((args.host, args.port), timeout=TIMEOUT) as sock:
                line = sock.makefile("rb").readline().decode("utf-8", "replace").strip()
                if line.startswith("220"):
                    sock.sendall(b"QUIT\r\n")
        except OSError as err:
            line = f"error: {err}"
        greetings.append(line)
    return {"greetings": greetings}


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("relay")
    p.add_argument("--host", required=True)
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--to", required=True)
    for name in ("spoof", "login"):
        p = sub.add_parser(name)
        p.add_argument("--host", required=True)
        p.add_argument("--user", required=True)
        p.add_argument("--password", action="append", required=True)
        p.add_argument("--from", dest="sender")
    p = sub.add_parser("flood")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=25)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--deadline", type=float, default=60)
    args = parser.parse_args()
    try:
        result = {"relay": relay, "spoof": spoof, "login": login, "flood": flood}[args.command](args)
    except (smtplib.SMTPException, OSError) as err:
        result = {"error": f"{type(err).__name__}: {err}"}
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
