"""What the client scripts share: the TLS context they connect with, the shape of an SMTP reply
in their reports, a JSON-lines log, POP3 UIDL listings and the --host/--port of a subcommand.

Not a script: the others import it from their own directory, which Python puts first on
sys.path when it runs them. They set sys.dont_write_bytecode first, so no __pycache__ appears
beside the sources.
"""

import json
import ssl
import threading


def tls_context():
    """A client context that does not verify certificates: test clusters use the self-signed
    certificate `init` makes."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def reply(code, message):
    """An SMTP reply as a report shows it: {"code": N, "text": "..."}."""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return {"code": code, "text": message}


class Log:
    """Appends one JSON object a line to a file; threads may share it."""

    def __init__(self, path):
        self.file = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, record):
        line = json.dumps(record)
        with self.lock:
            self.file.write(line + "\n")


def uidl_map(pop):
    """A poplib session's UIDL listing: message number -> UIDL."""
    listing = {}
    for entry in pop.uidl()[1]:
        num, uid = entry.decode().split(" ", 1)
        listing[int(num)] = uid
    return listing


def server_command(sub, name):
    """A subcommand (of argparse subparsers `sub`) that talks to one server: --host, --port."""
    parser = sub.add_parser(name)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    return parser
