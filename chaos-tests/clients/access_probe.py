#!/usr/bin/env python3
"""Probes a mail server's block and allow lists from a chosen source address, with real
smtplib, poplib and imaplib sessions. Prints one JSON object with what the server answered.

  access_probe.py smtp --host H --port P --source S --helo NAME --from A --to B [--to C ...]
      Connects from S, then EHLO, MAIL FROM, RCPT TO for each recipient, and DATA (a short
      message) if every recipient was accepted. Stops at the first refused step; each step
      reports {"code": N, "text": "..."}.
  access_probe.py greeting --host H --port P --source S --protocol pop3|imap
      Connects from S and reports the greeting (or how the server closed).

Bounded: every socket has a timeout.
"""

import argparse
import imaplib
import json
import poplib
import smtplib
import socket
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from common import reply, server_command  # noqa: E402  (same directory)

TIMEOUT = 15


def smtp(args):
    result = {}
    try:
        session = smtplib.SMTP(
            args.host, args.port, timeout=TIMEOUT, source_address=(args.source, 0)
        )
    except smtplib.SMTPConnectError as err:
        result["connect"] = reply(err.smtp_code, err.smtp_error)
        return result
    except smtplib.SMTPServerDisconnected as err:
        result["connect"] = {"code": 0, "text": "closed: %s" % err}
        return result
    result["connect"] = {"code": 220, "text": ""}
    try:
        result["helo"] = reply(*session.ehlo(args.helo))
        if result["helo"]["code"] != 250:
            return result
        result["mail"] = reply(*session.mail(args.sender))
        if result["mail"]["code"] != 250:
            return result
        result["rcpt"] = [reply(*session.rcpt(to)) for to in args.to]
        if any(r["code"] != 250 for r in result["rcpt"]):
            return result
        message = (
            "From: <%s>\r\nTo: <%s>\r\nSubject: access probe\r\n\r\nhello\r\n"
            % (args.sender, args.to[0])
        )
        result["data"] = reply(*session.data(message.encode()))
    finally:
        try:
            session.quit()
        except (smtplib.SMTPException, OSError):
            pass
    return result


def greeting(args):
    try:
        if args.protocol == "pop3":
            session = POP3From(args.source, args.host, args.port, TIMEOUT)
            text = session.getwelcome().decode("utf-8", "replace")
            session.quit()
            return {"greeting": text}
        session = IMAP4From(args.source, args.host, args.port, TIMEOUT)
        text = session.welcome.decode("utf-8", "replace")
        session.logout()
        return {"greeting": text}
    except poplib.error_proto as err:
        return {"greeting": str(err)}
    except imaplib.IMAP4.error as err:
        return {"greeting": str(err)}
    except (EOFError, OSError) as err:
        return {"greeting": "closed: %s" % err}


class FromSource:
    """Mixed into a poplib or imaplib class: connects from a chosen source address."""

    def __init__(self, source, host, port, timeout):
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._source, 0)
        )


class POP3From(FromSource, poplib.POP3):
    """poplib.POP3 connecting from a chosen source address."""


class IMAP4From(FromSource, imaplib.IMAP4):
    """imaplib.IMAP4 connecting from a chosen source address."""


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = server_command(sub, "smtp")
    s.add_argument("--source", required=True)
    s.add_argument("--helo", required=True)
    s.add_argument("--from", dest="sender", required=True)
    s.add_argument("--to", action="append", required=True)
    g = server_command(sub, "greeting")
    g.add_argument("--source", required=True)
    g.add_argument("--protocol", choices=["pop3", "imap"], required=True)
    args = parser.parse_args()
    try:
        result = smtp(args) if args.command == "smtp" else greeting(args)
    except Exception as err:  # the test reads the error; it must not look like an answer
        result = {"error": "%s: %s" % (type(err).__name__, err)}
    print(json.dumps(result))
    sys.exit(0)


if __name__ == "__main__":
    main()

