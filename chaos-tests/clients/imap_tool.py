#!/usr/bin/env python3
"""Single IMAP operations with Python's imaplib for the chaos tests, over implicit TLS, each
printing one JSON object (or {"error": ...} and exit status 2).

  imap_tool.py dump   --host H --port P --user U --password W [--mailbox M]
      every message of M: uid, flags, internaldate, size and the bytes (hex), plus the
      mailbox's uidvalidity and uidnext
  imap_tool.py append --host H --port P --user U --password W [--mailbox M] --file F
                      [--flags "(\\Seen)"] [--date '"01-Jan-2020 00:00:00 +0000"']
      the tagged reply (with APPENDUID)
  imap_tool.py store  --host H --port P --user U --password W [--mailbox M] --uid N
                      --op +FLAGS --flags "(\\Flagged)"
  imap_tool.py expunge --host H --port P --user U --password W [--mailbox M] --uid N
      flags UID N \\Deleted and UID EXPUNGEs it
  imap_tool.py create --host H --port P --user U --password W --mailbox M

Mailbox names are given in modified UTF-7 as they go on the wire. Certificates are not verified:
test clusters use the self-signed certificate `init` makes.
"""

import argparse
import imaplib
import json
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from common import server_command, tls_context  # noqa: E402  (same directory)

TIMEOUT = 30


def connect(args):
    M = imaplib.IMAP4_SSL(args.host, args.port, ssl_context=tls_context(), timeout=TIMEOUT)
    M.login(args.user, args.password)
    return M


def checked(result, what):
    typ, data = result
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{what}: {typ} {data!r}")
    return data


def dump(M, args):
    typ, data = M.select(args.mailbox, readonly=True)
    if typ != "OK":
        raise imaplib.IMAP4.error(f"EXAMINE {args.mailbox}: {data!r}")
    uidvalidity = int(M.untagged_responses["UIDVALIDITY"][-1])
    uidnext = int(M.untagged_responses["UIDNEXT"][-1])
    messages = []
    if int(data[0]) > 0:
        data = checked(
            M.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"), "FETCH"
        )
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item[0].decode(), item[1]
            messages.append(
                {
                    "uid": int(re.search(r"UID (\d+)", head).group(1)),
                    "flags": re.search(r"FLAGS \(([^)]*)\)", head).group(1).split(),
                    "internaldate": re.search(r'INTERNALDATE "([^"]*)"', head).group(1),
                    "size": int(re.search(r"RFC822\.SIZE (\d+)", head).group(1)),
                    "body": body.hex(),
                }
            )
    return {"uidvalidity": uidvalidity, "uidnext": uidnext, "messages": messages}


def append(M, args):
    with open(args.file, "rb") as f:
        message = f.read()
    typ, data = M.append(args.mailbox, args.flags, args.date, message)
    return {"status": typ, "text": data[0].decode() if data and data[0] else ""}


def store(M, args):
    checked(M.select(args.mailbox), "SELECT")
    data = checked(M.uid("STORE", str(args.uid), args.op, args.flags), "UID STORE")
    return {"fetch": [d.decode() for d in data if d]}


def expunge(M, args):
    checked(M.select(args.mailbox), "SELECT")
    checked(M.uid("STORE", str(args.uid), "+FLAGS.SILENT", "(\\Deleted)"), "UID STORE")
    M.untagged_responses.pop("EXPUNGE", None)
    checked(M.uid("EXPUNGE", str(args.uid)), "UID EXPUNGE")
    return {"expunged": [int(n) for n in M.untagged_responses.get("EXPUNGE", [])]}


def create(M, args):
    checked(M.create(args.mailbox), "CREATE")
    return {"created": args.mailbox}


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {"dump": dump, "append": append, "store": store, "expunge": expunge,
                "create": create}
    for name in commands:
        p = server_command(sub, name)
        p.add_argument("--user", required=True)
        p.add_argument("--password", required=True)
        p.add_argument("--mailbox", default="INBOX")
        if name == "append":
            p.add_argument("--file", required=True)
            p.add_argument("--flags")
            p.add_argument("--date")
        if name in ("store", "expunge"):
            p.add_argument("--uid", type=int, required=True)
        if name == "store":
            p.add_argument("--op", required=True)
            p.add_argument("--flags", required=True)
    args = parser.parse_args()
    try:
        M = connect(args)
        result = commands[args.command](M, args)
        M.logout()
    except (imaplib.IMAP4.error, OSError, KeyError, AttributeError) as err:
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        sys.exit(2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
