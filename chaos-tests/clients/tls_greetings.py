#!/usr/bin/env python3
"""Opens N connections at once over implicit TLS to HOST:PORT and prints, as one JSON object,
the first line each got ({"greetings": [...]}; a connection that closed without a line, or
whose handshake failed, shows as "closed: REASON"). Every connection stays open until all are
read. Certificates are not verified: test clusters use the self-signed certificate `init` makes.

  tls_greetings.py HOST PORT N
"""

import json
import socket
import ssl
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from common import tls_context  # noqa: E402  (same directory)

TIMEOUT = 10


def first_line(host, port, context, keep):
    try:
        raw = socket.create_connection((host, port), timeout=TIMEOUT)
        tls = context.wrap_socket(raw, server_hostname=host)
        keep.append(tls)
        line = b""
        while not line.endswith(b"\r\n"):
            chunk = tls.recv(1)
            if not chunk:
                return "closed: " + line.decode("utf-8", "replace")
            line += chunk
        return line[:-2].decode("utf-8", "replace")
    except (OSError, ssl.SSLError) as err:
        return "closed: " + str(err)


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    context = tls_context()
    keep = []
    greetings = [first_line(host, port, context, keep) for _ in range(n)]
    for tls in keep:
        tls.close()
    print(json.dumps({"greetings": greetings}))


if __name__ == "__main__":
    main()
