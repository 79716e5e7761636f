#!/usr/bin/env python3
"""Sends several messages in ONE smtplib session and reports the reply to each, then a NOOP,
so a test sees both the verdicts and that the session survived them. Prints one JSON object
(or {"error": ...} and exit status 2).

  smtp_batch.py --host H --port P --from F --to T [--user U --password W] --message FILE...
      {"replies": [{"code": 250, "reply": "..."}, ...], "noop": 250}

With --user the session uses STARTTLS (certificate not verified) and AUTH.
"""

import argparse
import json
import smtplib
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from common import tls_context  # noqa: E402  (same directory)

TIMEOUT = 60


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--from", dest="sender", required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--message", action="append", required=True)
    args = parser.parse_args()
    try:
        s = smtplib.SMTP(args.host, args.port, timeout=TIMEOUT)
        s.ehlo("client.test")
        if args.user:
            s.starttls(context=tls_context())
            s.ehlo("client.test")
            s.login(args.user, args.password)
        replies = []
        for path in args.message:
            with open(path, "rb") as f:
                data = f.read()
            try:
                s.mail(args.sender)
                s.rcpt(args.to)
                code, text = s.data(data)
            except smtplib.SMTPDataError as err:
                # Refused: reset the transaction and go on in the same session.
                code, text = err.smtp_code, err.smtp_error
                s.rset()
            replies.append({"code": code, "reply": text.decode(errors="replace")})
        noop = s.noop()[0]
        s.quit()
    except (smtplib.SMTPException, OSError) as err:
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        sys.exit(2)
    print(json.dumps({"replies": replies, "noop": noop}))


if __name__ == "__main__":
    main()
