#!/usr/bin/env python3
"""A scripted IMAP4rev1 session with Python's imaplib against a two-node test cluster, touching
every command the server offers and checking what came back (exact counts, flags, UIDs, bytes).

  imap_session.py --n1 IP --n2 IP --user U --password W
                  [--smtp-port 2525] [--imap-port 2143] [--imaps-port 2993]

It first delivers a few messages through SMTP on node 1 (a nested multipart with an attachment
and an encapsulated message, an 8-bit UTF-8 body with RFC 2047 headers, a large one), then runs
the steps below, writing through one node and reading through the other. It prints one JSON
object: {"ok": true, "steps": [...], "checks": N} or {"ok": false, "step": S, "error": E, ...}.
A check that fails stops the run; the Rust test asserts that every step ran.

Certificates are not verified: test clusters use the self-signed certificate `init` makes.
imaplib sends command arguments as written, so names and strings are quoted here as needed.
"""

import argparse
import base64
import imaplib
import json
import re
import smtplib
import socket
import sys
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from common import tls_context  # noqa: E402  (same directory)

TIMEOUT = 30

# imaplib knows neither ID nor IDLE (before 3.14); ID goes through its generic command path.
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED", "LOGOUT"))


class CheckFailed(Exception):
    pass


class Run:
    """Counts checks and remembers the step in progress."""

    def __init__(self):
        self.checks = 0
        self.steps = []
        self.step = None

    def eq(self, actual, expected, what):
        self.checks += 1
        if actual != expected:
            raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")

    def true(self, condition, what):
        self.checks += 1
        if not condition:
            raise CheckFailed(what)


R = Run()


def step(name):
    def wrap(fn):
        def run(*args, **kwargs):
            R.step = name
            fn(*args, **kwargs)
            R.steps.append(name)

        run.__name__ = fn.__name__
        return run

    return wrap


# ---- modified UTF-7 (RFC 3501 5.1.3) ----


def utf7_encode(name):
    out, pending = [], []

    def flush():
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def utf7_decode(text):
    def decode(m):
        inner = m.group(1)
        if inner == "":
            return "&"
        data = inner.replace(",", "/")
        data += "=" * (-len(data) % 4)
        return base64.b64decode(data).decode("utf-16-be")

    return re.sub(r"&([^-]*)-", decode, text)


def q(text):
    """An IMAP quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- response parsing ----


class Parser:
    """Parses IMAP response data: atoms (str), strings and literals (bytes), NIL (None), lists.
    An atom keeps a bracketed section and a partial (`BODY[HEADER.FIELDS (Subject)]<0>`)."""

    def __init__(self, data):
        self.s = data
        self.i = 0

    def parse_all(self):
        out = []
        while True:
            self.skip()
            if self.i >= len(self.s):
                return out
            out.append(self.value())

    def skip(self):
        while self.i < len(self.s) and self.s[self.i : self.i + 1] in (b" ", b"\r", b"\n"):
            self.i += 1

    def value(self):
        self.skip()
        c = self.s[self.i : self.i + 1]
        if c == b"(":
            self.i += 1
            items = []
            while True:
                self.skip()
                if self.s[self.i : self.i + 1] == b")":
                    self.i += 1
                    return items
                if self.i >= len(self.s):
                    raise CheckFailed(f"unterminated list in {self.s!r}")
                items.append(self.value())
        if c == b'"':
            self.i += 1
            out = bytearray()
            while True:
                b = self.s[self.i]
                self.i += 1
                if b == ord("\\"):
                    out.append(self.s[self.i])
                    self.i += 1
                elif b == ord('"'):
                    return bytes(out)
                else:
                    out.append(b)
        m = re.compile(rb"~?\{(\d+)\+?\}\r\n").match(self.s, self.i)
        if m:
            n = int(m.group(1))
            start = m.end()
            self.i = start + n
            return self.s[start : start + n]
        start = self.i
        depth = 0
        while self.i < len(self.s):
            b = self.s[self.i : self.i + 1]
            if b == b"[":
                depth += 1
            elif b == b"]":
                depth -= 1
            elif depth == 0 and b in (b" ", b"(", b")", b"\r", b"\n"):
                break
            self.i += 1
        atom = self.s[start : self.i].decode("utf-8", "replace")
        return None if atom == "NIL" else atom


def joined(data):
    """imaplib splits a response at its literals into (head, literal) tuples followed by the
    rest of the line; this puts each response back together as it came on the wire."""
    responses, current = [], b""
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            current += item[0] + b"\r\n" + item[1]
        else:
            responses.append(current + item)
            current = b""
    return responses


def fetch_items(data):
    """FETCH responses (from imaplib) as {seq: {ITEM: value}}."""
    out = {}
    for response in joined(data):
        parsed = Parser(response).parse_all()
        seq, items = int(parsed[0]), parsed[1]
        fields = {}
        for k in range(0, len(items), 2):
            fields[items[k].upper()] = items[k + 1]
        out.setdefault(seq, {}).update(fields)
    return out


def cmd(M, name, *args):
    """Runs one command; returns (status, tagged text, the untagged responses it produced).
    imaplib's own state check is bypassed (the server's is under test); callers that change
    the state set `M.state` themselves."""
    M.untagged_responses.clear()
    saved = M.state
    allowed = imaplib.Commands.get(name, ())
    if allowed and M.state not in allowed:
        M.state = allowed[0]
    try:
        typ, dat = M._simple_command(name, *args)
    except M.abort:
        raise
    except M.error as err:
        # imaplib raises on BAD; the text is the server's.
        return "BAD", str(err), {}
    finally:
        M.state = saved
    text = dat[-1] if dat and dat[-1] is not None else b""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return typ, text, {k: list(v) for k, v in M.untagged_responses.items()}


def ok(M, name, *args):
    typ, text, untagged = cmd(M, name, *args)
    R.eq(typ, "OK", f"{name} {' '.join(map(str, args))} answered {text!r}")
    return text, untagged


def fetch(M, seqset, items, uid=False, modifiers=None):
    args = [seqset, items] + ([modifiers] if modifiers else [])
    if uid:
        text, untagged = ok(M, "UID", "FETCH", *args)
    else:
        text, untagged = ok(M, "FETCH", *args)
    return fetch_items(untagged.get("FETCH", []))


def search(M, *criteria, uid=False, literal=None):
    M.literal = literal
    if uid:
        _, untagged = ok(M, "UID", "SEARCH", *criteria)
    else:
        _, untagged = ok(M, "SEARCH", *criteria)
    found = []
    for line in untagged.get("SEARCH", []):
        found += [int(n) for n in line.split() if n.isdigit()]
    return found


def code(text, name):
    """The arguments of response code `name` in a response text, e.g. COPYUID's."""
    m = re.search(r"\[" + name + r"(?: ([^\]]*))?\]", text)
    return None if m is None else (m.group(1) or "")


def list_names(M, reference, pattern, command="LIST"):
    """{decoded name: set of attributes} from LIST/LSUB."""
    _, untagged = ok(M, command, reference, pattern)
    out = {}
    for response in joined(untagged.get(command, [])):
        attrs, delim, name = Parser(response).parse_all()
        R.eq(delim, b"/", "hierarchy delimiter")
        name = name if isinstance(name, str) else name.decode()
        out[utf7_decode(name)] = set(attrs)
    return out


def status(M, mailbox, items="(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"):
    _, untagged = ok(M, "STATUS", mailbox, items)
    responses = joined(untagged.get("STATUS", []))
    R.eq(len(responses), 1, f"one STATUS response for {mailbox}")
    name, values = Parser(responses[0]).parse_all()
    return {values[k]: int(values[k + 1]) for k in range(0, len(values), 2)}


def select(M, mailbox, readonly=False):
    typ, text, untagged = cmd(M, "EXAMINE" if readonly else "SELECT", mailbox)
    R.eq(typ, "OK", f"select {mailbox}: {text}")
    M.state = "SELECTED"
    info = {
        "exists": int(untagged["EXISTS"][-1]),
        "uidvalidity": int(untagged["UIDVALIDITY"][-1]),
        "uidnext": int(untagged["UIDNEXT"][-1]),
        "text": text,
        "untagged": untagged,
    }
    R.true(("[READ-ONLY]" if readonly else "[READ-WRITE]") in text, f"{text!r} names the mode")
    return info


def close_selected(M, command="CLOSE"):
    ok(M, command)
    M.state = "AUTH"


def flags(fields):
    """The message's flags, without \\Recent (which belongs to one session; see recent())."""
    return set(fields["FLAGS"]) - {"\\Recent"}


def recent(fields):
    return "\\Recent" in set(fields["FLAGS"])


# ---- the test messages ----


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


ATTACHMENT = bytes(range(10))
INNER = crlf(
    """From: Carol <c@remote.test>
To: bob@remote.test
Subject: inner message
Date: Wed, 31 May 2023 08:00:00 +0000
Message-ID: <inner-1@remote.test>

inner body line"""
)
ALT_MIME = b'Content-Type: multipart/alternative; boundary="alt-bnd"\r\n\r\n'
ATTACHMENT_MIME = crlf(
    """Content-Type: application/octet-stream; name="data.bin"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="data.bin"

"""
)
NESTED_HEADER = crlf(
    """From: Bob Builder <b@remote.test>
To: alice@example.test
Subject: nested parts
Date: Thu, 01 Jun 2023 09:30:00 +0200
Message-ID: <nested-1@remote.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer-bnd"

"""
)
NESTED_BODY = (
    crlf(
        """This is a multi-part message in MIME format.
--outer-bnd
"""
    )
    + ALT_MIME
    + crlf(
        """--alt-bnd
Content-Type: text/plain; charset=us-ascii

alternative text version
--alt-bnd
Content-Type: text/html; charset=us-ascii

<p>alternative html version</p>
--alt-bnd--

--outer-bnd
"""
    )
    + ATTACHMENT_MIME
    + base64.b64encode(ATTACHMENT)
    + crlf(
        """
--outer-bnd
Content-Type: message/rfc822

"""
    )
    + INNER
    + crlf(
        """
--outer-bnd--
"""
    )
)
NESTED = NESTED_HEADER + NESTED_BODY

UTF8_SUBJECT = "Grüße aus 台北"
UTF8_TEXT = "Grüße aus 台北 — ünïcödé\r\nzweite Zeile\r\n"
UTF8 = (
    crlf(
        f"""From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@remote.test>
To: Alice <alice@example.test>, Other <other@remote.test>
Cc: undisclosed-recipients:;
Subject: =?UTF-8?B?{base64.b64encode(UTF8_SUBJECT.encode()).decode()}?=
Date: Fri, 15 Mar 2024 12:00:00 +0800
Message-ID: <utf8-1@remote.test>
In-Reply-To: <nested-1@remote.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

"""
    )
    + UTF8_TEXT.encode()
)

PLAIN = crlf(
    """From: Alice Example <a@remote.test>
To: alice@example.test
Subject: plain hello
Date: Mon, 02 Jan 2023 10:00:00 +0000
Message-ID: <plain-1@remote.test>

Hello world
second line
"""
)

LARGE = crlf(
    """From: d@remote.test
To: alice@example.test
Subject: large
X-Test: marker-42
Message-ID: <large-1@remote.test>

"""
) + b"".join(b"line %05d of a large message, padded to be long enough\r\n" % i for i in range(400))

APPENDED = crlf(
    """From: Eve <e@remote.test>
To: alice@example.test
Subject: appended with flags
Date: Wed, 01 Jan 2020 00:00:00 +0000
Message-ID: <appended-1@remote.test>

appended body
"""
)
APPEND_DATE = '"01-Jan-2020 12:34:56 +0000"'


def smtp_deliver(host, port, to, raw):
    smtp = smtplib.SMTP(host, port, timeout=TIMEOUT)
    smtp.ehlo("client.imap.test")
    refused = smtp.sendmail("sender@remote.test", [to], raw, mail_options=["BODY=8BITMIME"])
    smtp.quit()
    R.eq(refused, {}, "SMTP refused no recipient")


# ---- connections ----


class Cluster:
    def __init__(self, args):
        self.args = args

    def plain(self, node):
        return imaplib.IMAP4(self.ip(node), self.args.imap_port, timeout=TIMEOUT)

    def tls(self, node):
        return imaplib.IMAP4_SSL(
            self.ip(node), self.args.imaps_port, ssl_context=tls_context(), timeout=TIMEOUT
        )

    def ip(self, node):
        return self.args.n1 if node == 1 else self.args.n2

    def login(self, node):
        """A logged-in session: STARTTLS + LOGIN on node 1, implicit TLS + PLAIN on node 2."""
        if node == 1:
            M = self.plain(1)
            M.starttls(ssl_context=tls_context())
            M.login(self.args.user, self.args.password)
        else:
            M = self.tls(2)
            M.authenticate("PLAIN", lambda _: self.plain_response())
        return M

    def plain_response(self):
        return f"\0{self.args.user}\0{self.args.password}".encode()


def caps(text):
    if isinstance(text, list):
        text = text[-1]
    if isinstance(text, bytes):
        text = text.decode()
    m = re.search(r"CAPABILITY ([^\]]*)", text)
    return set(m.group(1).split()) if m else set()


BASE_CAPS = set(
    "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT SPECIAL-USE "
    "CHILDREN QUOTA CONDSTORE SORT SORT=DISPLAY STATUS=SIZE BINARY APPENDLIMIT=52428800".split()
)


@step("capability_starttls_login")
def capability_starttls_login(c):
    M = c.plain(1)
    greeting = M.welcome.decode()
    R.true(greeting.startswith("* OK [CAPABILITY "), f"greeting {greeting!r}")
    before = caps(greeting)
    R.eq(before, BASE_CAPS | {"STARTTLS", "LOGINDISABLED"}, "capabilities before TLS")
    typ, text, _ = cmd(M, "CAPABILITY")
    R.eq(typ, "OK", "CAPABILITY")
    R.eq(set(M.untagged_responses.get("CAPABILITY", [b""])[-1].decode().split()), before,
         "CAPABILITY matches the greeting")
    # No password in clear text.
    typ, text, _ = cmd(M, "LOGIN", c.args.user, q(c.args.password))
    R.eq(typ, "NO", "LOGIN before STARTTLS is refused")
    R.true("[PRIVACYREQUIRED]" in text, f"PRIVACYREQUIRED in {text!r}")
    typ, text, _ = cmd(M, "SELECT", "INBOX")
    R.true(typ != "OK", "SELECT before login fails")
    M.starttls(ssl_context=tls_context())
    typ, _, untagged = cmd(M, "CAPABILITY")
    after = set(untagged["CAPABILITY"][-1].decode().split())
    R.eq(after, BASE_CAPS | {"AUTH=PLAIN"}, "capabilities under TLS")
    typ, text, _ = cmd(M, "LOGIN", c.args.user, q("wrong password"))
    R.eq(typ, "NO", "a wrong password")
    R.true("[AUTHENTICATIONFAILED]" in text, text)
    typ, text = M.login(c.args.user, c.args.password)
    R.eq(typ, "OK", "LOGIN")
    R.eq(caps(text), BASE_CAPS, "capabilities after login (no AUTH=, no STARTTLS)")
    typ, text, _ = cmd(M, "STARTTLS")
    R.eq(typ, "BAD", "STARTTLS after login")
    M.logout()


def raw_line(sock):
    """One line from a socket, read byte by byte so nothing after it is taken from the socket
    (the TLS handshake that follows must find its bytes there)."""
    out = bytearray()
    while not out.endswith(b"\r\n"):
        b = sock.recv(1)
        if b == b"":
            raise CheckFailed(f"connection closed after {bytes(out)!r}")
        out += b
    return bytes(out[:-2]).decode()


@step("pipelining_and_starttls_injection")
def pipelining_and_starttls_injection(c):
    sock = socket.create_connection((c.ip(1), c.args.imap_port), timeout=TIMEOUT)
    R.true(raw_line(sock).startswith("* OK "), "greeting")
    # Three commands in one write are answered in order.
    sock.sendall(b"p1 NOOP\r\np2 CAPABILITY\r\np3 NOOP\r\n")
    lines = [raw_line(sock) for _ in range(4)]
    R.eq([line.split(" ")[0] for line in lines], ["p1", "*", "p2", "p3"], f"pipelined: {lines}")
    # A command sent in clear text right behind STARTTLS is dropped, not run under TLS
    # (RFC 3501 6.2.1; the STARTTLS command injection attack).
    sock.sendall(b"t1 STARTTLS\r\nt2 LOGIN " + c.args.user.encode() + b" x\r\n")
    R.eq(raw_line(sock), "t1 OK Begin TLS negotiation now", "STARTTLS")
    tls = tls_context().wrap_socket(sock)
    tls.sendall(b"t3 NOOP\r\n")
    R.eq(raw_line(tls), "t3 OK NOOP completed", "the first reply under TLS is to t3")
    tls.sendall(b"t4 LOGOUT\r\n")
    R.eq(raw_line(tls), "* BYE Logging out", "LOGOUT")
    tls.close()


@step("implicit_tls_authenticate_plain")
def implicit_tls_authenticate_plain(c):
    # Without SASL-IR: the client waits for the empty challenge.
    M = c.tls(2)
    R.eq(caps(M.welcome.decode()), BASE_CAPS | {"AUTH=PLAIN"}, "capabilities on 993")
    typ, text = M.authenticate("PLAIN", lambda _: c.plain_response())
    R.eq(typ, "OK", "AUTHENTICATE PLAIN")
    M.logout()
    # With SASL-IR (RFC 4959): the response on the command line.
    M = c.tls(2)
    token = base64.b64encode(c.plain_response()).decode()
    text, _ = ok(M, "AUTHENTICATE", "PLAIN", token)
    M.state = "AUTH"
    R.true("Logged in" in text, text)
    M.logout()
    # Wrong password, and acting as someone else.
    M = c.tls(2)
    bad = base64.b64encode(f"\0{c.args.user}\0nope".encode()).decode()
    typ, text, _ = cmd(M, "AUTHENTICATE", "PLAIN", bad)
    R.eq(typ, "NO", "AUTHENTICATE with a wrong password")
    R.true("[AUTHENTICATIONFAILED]" in text, text)
    other = base64.b64encode(f"root@example.test\0{c.args.user}\0{c.args.password}".encode())
    typ, text, _ = cmd(M, "AUTHENTICATE", "PLAIN", other.decode())
    R.eq(typ, "NO", "AUTHENTICATE as another user")
    R.true("[AUTHORIZATIONFAILED]" in text, text)
    M.logout()


@step("noop_id_namespace")
def noop_id_namespace(c):
    M = c.login(2)
    ok(M, "NOOP")
    _, untagged = ok(M, "ID", '("name" "imaplib" "version" "3")')
    server_id = Parser(untagged["ID"][-1]).parse_all()[0]
    R.eq(server_id[0:2], [b"name", b"mcluster"], "ID names the server")
    _, untagged = ok(M, "ID", "NIL")
    R.true("ID" in untagged, "ID NIL is answered too")
    typ, data = M.namespace()
    R.eq(typ, "OK", "NAMESPACE")
    R.eq(Parser(data[0]).parse_all(), [[[b"", b"/"]], None, None], "one personal namespace")
    M.logout()


@step("mailboxes")
def mailboxes(c):
    M1, M2 = c.login(1), c.login(2)
    default = {"INBOX", "Drafts", "Junk", "Sent", "Trash"}
    listed = list_names(M1, '""', "*")
    R.eq(set(listed), default, "the default mailboxes")
    R.eq(listed["Sent"], {"\\HasNoChildren", "\\Sent"}, "SPECIAL-USE on Sent")
    R.eq(listed["INBOX"], {"\\HasNoChildren"}, "INBOX attributes")

    taipei, child = "台北", "台北/子"
    R.eq(utf7_encode(taipei), "&U,BTFw-", "modified UTF-7 of 台北")
    for name in ["Projects", "Projects/2024", child, "My Folder"]:
        ok(M1, "CREATE", q(utf7_encode(name)))
    typ, text, _ = cmd(M1, "CREATE", "Projects")
    R.eq(typ, "NO", "CREATE of an existing mailbox")
    R.true("[ALREADYEXISTS]" in text, text)
    typ, text, _ = cmd(M1, "CREATE", "inbox")
    R.eq(typ, "NO", "CREATE INBOX")
    typ, text, _ = cmd(M1, "CREATE", q("Wild*card"))
    R.eq(typ, "NO", "CREATE of a name with a LIST wildcard")
    R.true("[CANNOT]" in text, text)

    # Node 2 sees node 1's mailboxes: LIST with *, % and a reference.
    everything = list_names(M2, '""', "*")
    R.eq(set(everything), default | {"Projects", "Projects/2024", taipei, child, "My Folder"},
         "LIST * on node 2")
    R.eq(everything["Projects"], {"\\HasChildren"}, "Projects has children")
    R.eq(everything[taipei], {"\\HasChildren"}, "CREATE made the superior 台北")
    R.eq(everything[child], {"\\HasNoChildren"}, "台北/子 attributes")
    top = list_names(M2, '""', "%")
    R.eq(set(top), default | {"Projects", taipei, "My Folder"}, "LIST %")
    R.eq(set(list_names(M2, "Projects/", "%")), {"Projects/2024"}, "LIST with a reference")
    R.eq(set(list_names(M2, "Projects", "*")), {"Projects/2024"}, "reference without delimiter")
    R.eq(set(list_names(M2, '""', q(utf7_encode("台北/%")))), {child}, "LIST 台北/%")
    R.eq(set(list_names(M2, '""', "*/2024")), {"Projects/2024"}, "LIST */2024")
    R.eq(set(list_names(M2, '""', "inbox")), {"INBOX"}, "INBOX matches without case")
    _, untagged = ok(M2, "LIST", '""', '""')
    R.eq(Parser(untagged["LIST"][-1]).parse_all(), [["\\Noselect"], b"/", b""],
         "LIST \"\" \"\" gives the delimiter")

    # The Chinese name round-trips through SELECT on both nodes and through APPEND.
    encoded_child = q(utf7_encode(child))
    typ, text = M1.append(encoded_child, None, None, PLAIN)
    R.eq(typ, "OK", "APPEND to 台北/子")
    info = select(M2, encoded_child)
    R.eq(info["exists"], 1, "台北/子 holds the appended message on node 2")
    got = fetch(M2, "1", "(BODY.PEEK[])")
    R.eq(got[1]["BODY[]"], PLAIN, "the message in 台北/子")
    close_selected(M2, "UNSELECT")
    R.eq(status(M2, q(utf7_encode(child)), "(MESSAGES)"), {"MESSAGES": 1}, "STATUS 台北/子")
    typ, text, _ = cmd(M2, "SELECT", "&U,BTFw")
    R.true(typ != "OK", "a broken modified UTF-7 name is refused")

    # SUBSCRIBE / UNSUBSCRIBE / LSUB (with an unsubscribed parent shown \Noselect).
    subscribed_before = set(list_names(M1, '""', "*", "LSUB"))
    ok(M1, "SUBSCRIBE", "Projects/2024")
    lsub = list_names(M2, '""', "*", "LSUB")
    R.eq(set(lsub), subscribed_before | {"Projects/2024"}, "LSUB * after SUBSCRIBE")
    lsub_top = list_names(M2, '""', "%", "LSUB")
    R.true("\\Noselect" in lsub_top.get("Projects", set()),
           f"LSUB % shows the unsubscribed parent as \\Noselect: {lsub_top}")
    ok(M1, "SUBSCRIBE", "Projects")
    ok(M1, "UNSUBSCRIBE", "Projects/2024")
    lsub = list_names(M2, '""', "*", "LSUB")
    R.eq(set(lsub), subscribed_before | {"Projects"}, "LSUB after UNSUBSCRIBE")

    # RENAME with a child: the child and its messages move along.
    typ, text = M1.append("Projects/2024", "(\\Flagged)", None, PLAIN)
    R.eq(typ, "OK", "APPEND to Projects/2024")
    before = status(M1, "Projects/2024", "(MESSAGES UIDVALIDITY UIDNEXT)")
    ok(M1, "RENAME", "Projects", "Work")
    after = list_names(M2, '""', "*")
    R.true("Projects" not in after and "Projects/2024" not in after, f"old names gone: {after}")
    R.true({"Work", "Work/2024"} <= set(after), f"new names listed: {after}")
    R.eq(status(M2, "Work/2024", "(MESSAGES)"), {"MESSAGES": 1}, "messages moved with the child")
    moved = status(M2, "Work/2024", "(UIDNEXT)")
    R.eq(moved["UIDNEXT"], before["UIDNEXT"], "the child keeps its UIDs")
    R.eq(set(list_names(M2, '""', "*", "LSUB")), subscribed_before | {"Work"},
         "the subscription moved with the name")
    typ, text, _ = cmd(M1, "RENAME", "NoSuchBox", "Other")
    R.eq(typ, "NO", "RENAME of a missing mailbox")
    R.true("[NONEXISTENT]" in text, text)
    typ, text, _ = cmd(M1, "RENAME", "Work", "INBOX")
    R.eq(typ, "NO", "RENAME onto INBOX")

    # DELETE: the child first, then the parent; INBOX and missing names are refused.
    ok(M2, "DELETE", "Work/2024")
    ok(M2, "DELETE", "Work")
    ok(M2, "DELETE", q("My Folder"))
    typ, text, _ = cmd(M2, "DELETE", "Work")
    R.eq(typ, "NO", "DELETE of a deleted mailbox")
    R.true("[NONEXISTENT]" in text, text)
    typ, text, _ = cmd(M2, "DELETE", "INBOX")
    R.eq(typ, "NO", "DELETE INBOX")
    # RFC 3501 6.3.6: the server does not drop a subscription by itself; the client can.
    lsub = list_names(M1, '""', "*", "LSUB")
    R.true("\\Noselect" in lsub.get("Work", set()),
           f"a deleted mailbox stays subscribed, not selectable: {lsub}")
    ok(M1, "UNSUBSCRIBE", "Work")
    R.true("Work" not in list_names(M1, '""', "*", "LSUB"), "UNSUBSCRIBE of a deleted mailbox")
    # INBOX is case-insensitive also as the top of a longer name.
    ok(M1, "CREATE", "inbox/Kid")
    names = list_names(M2, '""', "*")
    R.true("INBOX/Kid" in names and "inbox" not in names and "inbox/Kid" not in names,
           f"inbox/Kid is INBOX's child: {sorted(names)}")
    R.eq(names["INBOX"], {"\\HasChildren"}, "INBOX has a child")
    R.eq(status(M2, "iNbOx/Kid", "(MESSAGES)"), {"MESSAGES": 0},
         "INBOX/Kid can be opened")
    typ, text, _ = cmd(M2, "CREATE", "Inbox/Kid")
    R.eq(typ, "NO", "Inbox/Kid is the same mailbox")
    ok(M2, "DELETE", "INBOX/Kid")
    final = list_names(M1, '""', "*")
    R.eq(set(final), default | {taipei, child}, "LIST on node 1 after the deletes")
    typ, text, _ = cmd(M1, "STATUS", "Work", "(MESSAGES)")
    R.eq(typ, "NO", "STATUS of a deleted mailbox")
    M1.logout()
    M2.logout()


@step("deliver")
def deliver(c, facts):
    for raw in [PLAIN, NESTED, UTF8, LARGE]:
        smtp_deliver(c.args.n1, c.args.smtp_port, c.args.user, raw)
    facts["sent"] = [PLAIN, NESTED, UTF8, LARGE]


@step("status_examine_read_only")
def status_examine_read_only(c, facts):
    M = c.login(2)
    st = status(M, "INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)")
    R.eq(st["MESSAGES"], 4, "four delivered messages")
    R.eq(st["UNSEEN"], 4, "all unseen")
    R.eq(st["UIDNEXT"], 5, "UIDs 1-4 used")
    R.eq(st["RECENT"], 4, "STATUS: no session has claimed the four as \\Recent")
    R.true(st["HIGHESTMODSEQ"] >= 1, "HIGHESTMODSEQ")
    facts["uidvalidity"] = st["UIDVALIDITY"]

    info = select(M, "INBOX", readonly=True)
    R.eq(info["exists"], 4, "EXAMINE EXISTS")
    R.eq(int(info["untagged"]["RECENT"][-1]), 4, "EXAMINE shows the four as recent")
    R.eq(info["uidvalidity"], st["UIDVALIDITY"], "UIDVALIDITY agrees with STATUS")
    R.true("PERMANENTFLAGS" in info["untagged"], "PERMANENTFLAGS")
    R.eq(info["untagged"]["PERMANENTFLAGS"][-1], b"()", "nothing is permanent when read-only")
    got = fetch(M, "1", "(BODY[] RFC822.TEXT)")
    R.true("FLAGS" not in got[1], f"no implicit \\Seen under EXAMINE: {got[1].keys()}")
    R.true(got[1]["BODY[]"].endswith(PLAIN), "BODY[] ends with what was sent")
    got = fetch(M, "1:4", "(FLAGS)")
    R.eq({n: flags(f) for n, f in got.items()}, {1: set(), 2: set(), 3: set(), 4: set()},
         "EXAMINE left every message unseen")
    R.true(all(recent(f) for f in got.values()), "EXAMINE: FLAGS show \\Recent")
    sizes = fetch(M, "1:4", "(RFC822.SIZE)")
    R.eq(st["SIZE"], sum(int(f["RFC822.SIZE"]) for f in sizes.values()),
         "STATUS SIZE is the sum of RFC822.SIZE")
    typ, text, _ = cmd(M, "STORE", "1", "+FLAGS", "(\\Seen)")
    R.eq(typ, "NO", "STORE under EXAMINE")
    R.true("[READ-ONLY]" in text, text)
    typ, text, _ = cmd(M, "EXPUNGE")
    R.eq(typ, "NO", "EXPUNGE under EXAMINE")
    close_selected(M, "CLOSE")
    R.eq(status(M, "INBOX", "(UNSEEN MESSAGES RECENT)"), {"UNSEEN": 4, "MESSAGES": 4, "RECENT": 4},
         "CLOSE after EXAMINE changes nothing, and EXAMINE claimed nothing")
    M.logout()


def inner_envelope_checks(envelope, what):
    R.eq(envelope[1], b"inner message", f"{what} subject")
    R.eq(envelope[2], [[b"Carol", None, b"c", b"remote.test"]], f"{what} from")
    R.eq(envelope[9], b"<inner-1@remote.test>", f"{what} message-id")


@step("fetch_all_items")
def fetch_all_items(c, facts):
    M = c.login(1)
    info = select(M, "INBOX")
    R.eq(info["exists"], 4, "SELECT EXISTS")
    R.eq(int(info["untagged"]["RECENT"][-1]), 4, "SELECT on node 1 claims the four as recent")
    other = c.login(2)
    R.eq(status(other, "INBOX", "(RECENT)")["RECENT"], 0, "node 2 sees them claimed")
    other.logout()
    # SORT (RFC 5256) through imaplib: by size, largest first, ties in mailbox order.
    typ, data = M.sort("(REVERSE SIZE)", "UTF-8", "ALL")
    R.eq(typ, "OK", "SORT")
    sizes = {n: int(f["RFC822.SIZE"]) for n, f in fetch(M, "1:4", "(RFC822.SIZE)").items()}
    R.eq([int(n) for n in data[0].split()], sorted(sizes, key=lambda n: (-sizes[n], n)),
         "SORT (REVERSE SIZE)")
    R.eq(info["uidnext"], 5, "SELECT UIDNEXT")
    R.eq(int(info["untagged"]["UNSEEN"][-1]), 1, "the first unseen message")

    # The nested multipart, every item at once.
    items = (
        "(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE UID BODY.PEEK[HEADER] "
        "BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[HEADER.FIELDS (Subject)] "
        "BODY.PEEK[]<0.10> RFC822.HEADER)"
    )
    got = fetch(M, "2", items)[2]
    full = fetch(M, "2", "(BODY.PEEK[])")[2]["BODY[]"]
    R.true(full.endswith(NESTED), "BODY[] ends with the sent bytes")
    prefix = full[: len(full) - len(NESTED)]
    R.true(prefix.startswith(b"Return-Path: <sender@remote.test>\r\n"), f"trace header {prefix!r}")
    R.eq(int(got["RFC822.SIZE"]), len(full), "RFC822.SIZE is the size of BODY[]")
    R.eq(int(got["UID"]), 2, "UID")
    R.eq(got["FLAGS"], ["\\Recent"], "no flags yet but \\Recent (this session claimed it)")
    R.true(re.fullmatch(rb"\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d \+0000", got["INTERNALDATE"]),
           f"INTERNALDATE {got['INTERNALDATE']!r}")
    R.eq(got["BODY[HEADER]"], prefix + NESTED_HEADER, "BODY[HEADER]")
    R.eq(got["RFC822.HEADER"], prefix + NESTED_HEADER, "RFC822.HEADER")
    R.eq(got["BODY[TEXT]"], NESTED_BODY, "BODY[TEXT]")
    R.eq(got["BODY[HEADER.FIELDS (SUBJECT)]"], b"Subject: nested parts\r\n\r\n",
         "HEADER.FIELDS (Subject)")
    R.eq(got["BODY[]<0>"], full[:10], "BODY[]<0.10>")
    R.eq(got["BODY[1.MIME]"], ALT_MIME, "BODY[1.MIME]")
    alt = got["BODY[1]"]
    R.true(alt.startswith(b"--alt-bnd\r\n") and alt.endswith(b"--alt-bnd--\r\n"),
           f"BODY[1] is the alternative's body: {alt!r}")

    env = got["ENVELOPE"]
    R.eq(env[0], b"Thu, 01 Jun 2023 09:30:00 +0200", "envelope date")
    R.eq(env[1], b"nested parts", "envelope subject")
    R.eq(env[2], [[b"Bob Builder", None, b"b", b"remote.test"]], "envelope from")
    R.eq(env[3], env[2], "sender defaults to from")
    R.eq(env[4], env[2], "reply-to defaults to from")
    R.eq(env[5], [[None, None, b"alice", b"example.test"]], "envelope to")
    R.eq(env[6:9], [None, None, None], "no cc, bcc, in-reply-to")
    R.eq(env[9], b"<nested-1@remote.test>", "envelope message-id")

    bs = got["BODYSTRUCTURE"]
    R.eq(bs[3], b"MIXED", "outer subtype")
    R.eq(bs[4], [b"BOUNDARY", b"outer-bnd"], "outer boundary parameter")
    alternative, attachment, message = bs[0], bs[1], bs[2]
    R.eq(alternative[2], b"ALTERNATIVE", "first part is multipart/alternative")
    text_part, html_part = alternative[0], alternative[1]
    R.eq(text_part[:6], [b"TEXT", b"PLAIN", [b"CHARSET", b"us-ascii"], None, None, b"7BIT"],
         "text/plain part")
    R.eq((int(text_part[6]), int(text_part[7])), (len(b"alternative text version"), 1),
         "text/plain size and lines")
    R.eq(html_part[:2], [b"TEXT", b"HTML"], "text/html part")
    R.eq(int(html_part[6]), len(b"<p>alternative html version</p>"), "text/html size")
    R.eq(attachment[:6], [b"APPLICATION", b"OCTET-STREAM", [b"NAME", b"data.bin"], None, None,
                          b"BASE64"], "attachment fields")
    R.eq(int(attachment[6]), len(base64.b64encode(ATTACHMENT)), "attachment size")
    R.eq(attachment[8], [b"ATTACHMENT", [b"FILENAME", b"data.bin"]], "attachment disposition")
    R.eq(message[:6], [b"MESSAGE", b"RFC822", None, None, None, b"7BIT"], "message/rfc822 fields")
    R.eq(int(message[6]), len(INNER), "message/rfc822 size")
    inner_envelope_checks(message[7], "encapsulated envelope")
    R.eq(message[8][:2], [b"TEXT", b"PLAIN"], "encapsulated body")
    R.eq(int(message[9]), INNER.count(b"\n") + 1, "message/rfc822 lines")
    body = got["BODY"]
    R.eq(len(body[1]), 7, "BODY has no extension data")
    R.eq(body[3], b"MIXED", "BODY subtype")

    parts = fetch(
        M,
        "2",
        "(BODY.PEEK[1.1] BODY.PEEK[1.2] BODY.PEEK[2] BODY.PEEK[2.MIME] BODY.PEEK[3] "
        "BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT] BODY.PEEK[3.1] BODY.PEEK[3.2] BODY.PEEK[4] "
        "BINARY.PEEK[2])",
    )[2]
    R.eq(parts["BODY[1.1]"], b"alternative text version", "BODY[1.1]")
    R.eq(parts["BODY[1.2]"], b"<p>alternative html version</p>", "BODY[1.2]")
    R.eq(parts["BODY[2]"], base64.b64encode(ATTACHMENT), "BODY[2]")
    R.eq(parts["BODY[2.MIME]"], ATTACHMENT_MIME, "BODY[2.MIME]")
    R.eq(parts["BINARY[2]"], ATTACHMENT, "BINARY[2] decodes base64")
    R.eq(parts["BODY[3]"], INNER, "BODY[3] is the encapsulated message")
    R.eq(parts["BODY[3.HEADER]"], INNER[: INNER.index(b"\r\n\r\n") + 4], "BODY[3.HEADER]")
    R.eq(parts["BODY[3.TEXT]"], b"inner body line", "BODY[3.TEXT]")
    R.eq(parts["BODY[3.1]"], b"inner body line", "BODY[3.1]")
    R.eq(parts["BODY[3.2]"], None, "BODY[3.2] does not exist")
    R.eq(parts["BODY[4]"], None, "BODY[4] does not exist")
    R.eq(flags(fetch(M, "2", "(FLAGS)")[2]), set(), ".PEEK set no flag")

    # The 8-bit UTF-8 message with RFC 2047 headers.
    got = fetch(M, "3", "(ENVELOPE BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[TEXT] RFC822.SIZE)")[3]
    env = got["ENVELOPE"]
    subject = base64.b64encode(UTF8_SUBJECT.encode()).decode()
    R.eq(env[1], f"=?UTF-8?B?{subject}?=".encode(), "the subject stays RFC 2047 encoded")
    R.eq(env[2], [[b"=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?=", None, b"joerg", b"remote.test"]],
         "encoded display name")
    R.eq(env[5], [[b"Alice", None, b"alice", b"example.test"],
                  [b"Other", None, b"other", b"remote.test"]], "two recipients")
    R.eq(env[6], [[None, None, b"undisclosed-recipients", None], [None, None, None, None]],
         "an empty group in Cc")
    R.eq(env[8], b"<nested-1@remote.test>", "in-reply-to")
    bs = got["BODYSTRUCTURE"]
    R.eq(bs[:6], [b"TEXT", b"PLAIN", [b"CHARSET", b"utf-8"], None, None, b"8BIT"], "8-bit part")
    R.eq(int(bs[6]), len(UTF8_TEXT.encode()), "8-bit part size in octets")
    R.eq(int(bs[7]), 2, "8-bit part lines")
    R.eq(got["BODY[1]"], UTF8_TEXT.encode(), "BODY[1] of a single-part message is its body")
    R.eq(got["BODY[TEXT]"].decode("utf-8"), UTF8_TEXT, "8-bit bytes come back unchanged")

    # Fetches that set \Seen: BODY[TEXT], RFC822, RFC822.TEXT (and show FLAGS unasked).
    got = fetch(M, "1", "(BODY[TEXT])")[1]
    R.eq(got["BODY[TEXT]"], PLAIN[PLAIN.index(b"\r\n\r\n") + 4 :], "BODY[TEXT] of message 1")
    R.eq(got.get("FLAGS"), ["\\Seen", "\\Recent"], "BODY[] sets \\Seen and says so")
    got = fetch(M, "4", "(RFC822 RFC822.TEXT RFC822.HEADER)")[4]
    R.eq(got["RFC822.HEADER"] + got["RFC822.TEXT"], got["RFC822"], "RFC822 = HEADER + TEXT")
    R.true(got["RFC822"].endswith(LARGE), "RFC822 of the large message")
    R.eq(got.get("FLAGS"), ["\\Seen", "\\Recent"], "RFC822 sets \\Seen")
    got = fetch(M, "1:4", "(FLAGS)")
    R.eq({n: flags(f) for n, f in got.items()},
         {1: {"\\Seen"}, 2: set(), 3: set(), 4: {"\\Seen"}}, "flags after the fetches")
    # Bad sequence numbers are a protocol error; unknown UIDs are not.
    typ, text, _ = cmd(M, "FETCH", "5", "(FLAGS)")
    R.eq(typ, "BAD", "FETCH 5 of 4 messages")
    R.true("5" in text, f"BAD names the number: {text}")
    R.eq(fetch(M, "99:100", "(FLAGS)", uid=True), {}, "UID FETCH of missing UIDs: nothing")
    M.logout()


@step("append")
def append(c, facts):
    M1, M2 = c.login(1), c.login(2)
    info = select(M1, "INBOX")
    typ, text = M1.append("INBOX", "(\\Seen $Important)", APPEND_DATE, APPENDED)
    R.eq(typ, "OK", "APPEND")
    text = text[0].decode()
    appenduid = code(text, "APPENDUID")
    R.eq(appenduid, f"{info['uidvalidity']} 5", f"APPENDUID in {text!r}")
    # The selected session learns about it (EXISTS before the tagged OK).
    R.eq(M1.untagged_responses.get("EXISTS", [b"0"])[-1], b"5", "EXISTS after APPEND")
    # Node 2 sees the same bytes, flags and date, under the same UID.
    select(M2, "INBOX", readonly=True)
    got = fetch(M2, "5", "(BODY.PEEK[] FLAGS INTERNALDATE RFC822.SIZE)", uid=True)
    R.eq(list(got), [5], "the appended message is number 5 on node 2")
    got = got[5]
    R.eq(got["BODY[]"], APPENDED, "APPENDed bytes come back identical")
    R.eq(flags(got), {"\\Seen", "$Important"}, "APPEND flags")
    R.eq(got["INTERNALDATE"], b"01-Jan-2020 12:34:56 +0000", "APPEND date")
    R.eq(int(got["RFC822.SIZE"]), len(APPENDED), "RFC822.SIZE of the appended message")
    # An APPEND through node 2 into a mailbox the node-1 session has selected.
    ok(M1, "CREATE", "Lab")
    lab = select(M1, "Lab")
    R.eq(lab["exists"], 0, "Lab starts empty")
    typ, text = M2.append("Lab", None, None, PLAIN)
    R.eq(typ, "OK", "APPEND on node 2")
    R.eq(code(text[0].decode(), "APPENDUID"), f"{lab['uidvalidity']} 1", "APPENDUID in Lab")
    deadline = time.monotonic() + 20
    while True:
        _, untagged = ok(M1, "NOOP")
        if untagged.get("EXISTS") == [b"1"]:
            break
        R.true(time.monotonic() < deadline, "node 1 reported the message appended on node 2")
        time.sleep(0.1)
    typ, text = M2.append("NoSuchBox", None, None, PLAIN)
    R.eq(typ, "NO", "APPEND to a missing mailbox")
    R.true("[TRYCREATE]" in text[0].decode(), text)
    M1.logout()
    M2.logout()


@step("store")
def store(c, facts):
    M = c.login(1)
    select(M, "INBOX")
    # A known starting point: messages 1-4 without flags, 5 as appended.
    text, untagged = ok(M, "STORE", "1:4", "FLAGS.SILENT", "()")
    R.true("FETCH" not in untagged, f".SILENT sends no FETCH: {untagged.get('FETCH')}")
    _, untagged = ok(M, "STORE", "1", "+FLAGS", "(\\Answered)")
    R.eq({n: flags(f) for n, f in fetch_items(untagged["FETCH"]).items()}, {1: {"\\Answered"}},
         "+FLAGS answers with the new flags")
    _, untagged = ok(M, "STORE", "2", "+FLAGS", "(\\Flagged $Work custom)")
    R.eq(flags(fetch_items(untagged["FETCH"])[2]), {"\\Flagged", "$Work", "custom"},
         "keywords are stored")
    R.true("FLAGS" in untagged, "new keywords are announced with FLAGS")
    _, untagged = ok(M, "STORE", "2", "-FLAGS", "(custom)")
    R.eq(flags(fetch_items(untagged["FETCH"])[2]), {"\\Flagged", "$Work"}, "-FLAGS")
    _, untagged = ok(M, "STORE", "3", "FLAGS", "(\\Deleted \\Draft)")
    R.eq(flags(fetch_items(untagged["FETCH"])[3]), {"\\Deleted", "\\Draft"}, "FLAGS replaces")
    _, untagged = ok(M, "STORE", "3", "-FLAGS.SILENT", "(\\Draft)")
    R.true("FETCH" not in untagged, "-FLAGS.SILENT is silent")
    typ, text, _ = cmd(M, "STORE", "1", "+FLAGS", "(\\Recent)")
    R.eq(typ, "BAD", "STORE \\Recent")
    expected = {1: {"\\Answered"}, 2: {"\\Flagged", "$Work"}, 3: {"\\Deleted"}, 4: set(),
                5: {"\\Seen", "$Important"}}
    got = fetch(M, "1:*", "(FLAGS)")
    R.eq({n: flags(f) for n, f in got.items()}, expected, "flags on node 1")
    # Node 2 agrees (SELECT reads after catching up with the leader).
    M2 = c.login(2)
    select(M2, "INBOX", readonly=True)
    got = fetch(M2, "1:*", "(UID FLAGS)")
    R.eq({n: flags(f) for n, f in got.items()}, expected, "flags on node 2")
    R.eq({n: int(f["UID"]) for n, f in got.items()}, {1: 1, 2: 2, 3: 3, 4: 4, 5: 5}, "UIDs")
    M2.logout()
    M.logout()


@step("search")
def search_keys(c, facts):
    M = c.login(2)
    select(M, "INBOX", readonly=True)
    today = time.strftime("%d-%b-%Y", time.gmtime())
    cases = [
        (("ALL",), [1, 2, 3, 4, 5]),
        (("ANSWERED",), [1]),
        (("DELETED",), [3]),
        (("FLAGGED",), [2]),
        (("SEEN",), [5]),
        (("UNSEEN",), [1, 2, 3, 4]),
        (("UNANSWERED", "UNDELETED"), [2, 4, 5]),
        (("KEYWORD", "$Important"), [5]),
        (("KEYWORD", "$Work"), [2]),
        (("UNKEYWORD", "$Work"), [1, 3, 4, 5]),
        (("FROM", q("Alice Example")), [1]),
        (("FROM", "remote.test"), [1, 2, 3, 4, 5]),
        (("TO", "other@remote.test"), [3]),
        (("CC", "undisclosed"), [3]),
        (("SUBJECT", "nested"), [2]),
        (("SUBJECT", q("PLAIN HELLO")), [1]),
        (("BODY", q("alternative text")), [2]),
        (("BODY", "marker-42"), []),
        (("TEXT", "marker-42"), [4]),
        (("HEADER", "X-Test", "marker-42"), [4]),
        (("HEADER", "Message-ID", "appended-1"), [5]),
        (("LARGER", "10000"), [4]),
        (("SMALLER", "10000"), [1, 2, 3, 5]),
        (("SINCE", today), [1, 2, 3, 4]),
        (("BEFORE", "1-Jan-2021"), [5]),
        (("ON", "1-Jan-2020"), [5]),
        (("ON", today), [1, 2, 3, 4]),
        (("SENTSINCE", "1-Jan-2024"), [3, 4]),
        (("SENTBEFORE", "1-Jan-2023"), [5]),
        (("SENTON", "2-Jan-2023"), [1]),
        (("UID", "2:3"), [2, 3]),
        (("2:3",), [2, 3]),
        (("NOT", "SEEN"), [1, 2, 3, 4]),
        (("OR", "FLAGGED", "ANSWERED"), [1, 2]),
        (("NOT", "OR", "FLAGGED", "ANSWERED"), [3, 4, 5]),
        (("(OR", "DELETED", "SEEN)", "SMALLER", "5000"), [3, 5]),
        (("NEW",), []),
        (("OLD",), [1, 2, 3, 4, 5]),
    ]
    for criteria, expected in cases:
        R.eq(search(M, *criteria), expected, f"SEARCH {' '.join(criteria)}")
    # UID SEARCH answers UIDs (equal to sequence numbers here, so check a range form too).
    R.eq(search(M, "UID", "4:*", uid=True), [4, 5], "UID SEARCH UID 4:*")
    R.eq(search(M, "FLAGGED", uid=True), [2], "UID SEARCH FLAGGED")
    # CHARSET UTF-8 with non-ASCII strings, sent as literals.
    R.eq(search(M, "CHARSET", "UTF-8", "BODY", literal="台北".encode()), [3], "BODY 台北")
    R.eq(search(M, "CHARSET", "UTF-8", "SUBJECT", literal="Grüße".encode()), [3], "SUBJECT decoded from RFC 2047")
    R.eq(search(M, "CHARSET", "UTF-8", "FROM", literal="Jörg".encode()), [3], "FROM Jörg")
    R.eq(search(M, "CHARSET", "UTF-8", "TEXT", literal="ünïcödé".encode()), [3], "TEXT 8-bit")
    typ, text, _ = cmd(M, "SEARCH", "CHARSET", "KOI8-R", "ALL")
    R.eq(typ, "NO", "an unknown charset")
    R.true("[BADCHARSET" in text, text)
    M.logout()


@step("copy_move_uid")
def copy_move_uid(c, facts):
    M1, M2 = c.login(1), c.login(2)
    lab = status(M1, "Lab", "(MESSAGES UIDNEXT UIDVALIDITY)")
    R.eq((lab["MESSAGES"], lab["UIDNEXT"]), (1, 2), "Lab holds the message APPENDed on node 2")
    inbox = select(M1, "INBOX")
    # COPY 1:2 -> Lab UIDs 2:3.
    text, _ = ok(M1, "COPY", "1:2", "Lab")
    R.eq(code(text, "COPYUID"), f"{lab['UIDVALIDITY']} 1:2 2:3", f"COPYUID in {text!r}")
    # UID COPY of 4 and 5 -> 4:5.
    text, _ = ok(M1, "UID", "COPY", "4:5", "Lab")
    R.eq(code(text, "COPYUID"), f"{lab['UIDVALIDITY']} 4:5 4:5", "UID COPY COPYUID")
    typ, text, _ = cmd(M1, "COPY", "1", "Nowhere")
    R.eq(typ, "NO", "COPY to a missing mailbox")
    R.true("[TRYCREATE]" in text, text)
    # The copies are the same bytes with the same flags.
    src = fetch(M1, "1:5", "(BODY.PEEK[] FLAGS)", uid=True)
    select(M2, "Lab")
    dst = fetch(M2, "1:*", "(UID BODY.PEEK[] FLAGS)")
    R.eq(sorted(int(f["UID"]) for f in dst.values()), [1, 2, 3, 4, 5], "Lab UIDs on node 2")
    pairs = {2: 1, 3: 2, 4: 4, 5: 5}
    by_uid = {int(f["UID"]): f for f in dst.values()}
    for lab_uid, inbox_uid in pairs.items():
        R.eq(by_uid[lab_uid]["BODY[]"], src[inbox_uid]["BODY[]"], f"copy of INBOX {inbox_uid}")
        R.eq(flags(by_uid[lab_uid]), flags(src[inbox_uid]), f"flags of INBOX {inbox_uid}'s copy")
    close_selected(M2, "UNSELECT")

    # Work inside Lab on node 1: MOVE, UID MOVE, UID STORE, UID FETCH, UID EXPUNGE.
    ok(M1, "CREATE", "Lab/Moved")
    moved = status(M1, "Lab/Moved", "(UIDVALIDITY)")["UIDVALIDITY"]
    lab_info = select(M1, "Lab")
    R.eq(lab_info["exists"], 5, "Lab EXISTS")
    text, untagged = ok(M1, "MOVE", "2", "Lab/Moved")
    R.eq(untagged.get("EXPUNGE"), [b"2"], "MOVE expunges the source")
    R.eq(code(untagged["OK"][-1].decode(), "COPYUID"), f"{moved} 2 1", "MOVE's COPYUID")
    text, untagged = ok(M1, "UID", "MOVE", "4", "Lab/Moved")
    R.eq(untagged.get("EXPUNGE"), [b"3"], "UID MOVE expunges UID 4 (now number 3)")
    R.eq(code(untagged["OK"][-1].decode(), "COPYUID"), f"{moved} 4 2", "UID MOVE's COPYUID")
    # MOVE into the selected mailbox (RFC 6851): the message gets a new UID at the end.
    text, untagged = ok(M1, "MOVE", "1", "Lab")
    R.eq(untagged.get("EXPUNGE"), [b"1"], "MOVE onto the same mailbox expunges number 1")
    R.eq(code(untagged["OK"][-1].decode(), "COPYUID"), f"{lab['UIDVALIDITY']} 1 6",
         "MOVE onto the same mailbox: COPYUID")
    got = fetch(M1, "1:*", "(UID)")
    R.eq([int(f["UID"]) for _, f in sorted(got.items())], [3, 5, 6], "Lab after the moves")
    _, untagged = ok(M1, "UID", "STORE", "3,5", "+FLAGS", "(\\Deleted)")
    got = fetch_items(untagged["FETCH"])
    R.eq({int(f["UID"]) for f in got.values()}, {3, 5}, "UID STORE answers with UIDs")
    got = fetch(M1, "3:5", "(FLAGS)", uid=True)
    R.eq({int(f["UID"]): "\\Deleted" in flags(f) for f in got.values()}, {3: True, 5: True},
         "UID FETCH 3:5 answers UIDs 3 and 5")
    R.eq(sorted(got), [1, 2], "UID FETCH 3:5 is messages 1 and 2")
    # UID EXPUNGE 5 removes only UID 5 (number 2), though 3 is \Deleted too.
    text, untagged = ok(M1, "UID", "EXPUNGE", "5")
    R.eq(untagged.get("EXPUNGE"), [b"2"], "UID EXPUNGE 5")
    R.eq(search(M1, "DELETED", uid=True), [3], "UID 3 is still there, deleted")
    R.eq(search(M1, "ALL", uid=True), [3, 6], "UID SEARCH ALL")
    # Node 2 sees the result.
    R.eq(status(M2, "Lab", "(MESSAGES)"), {"MESSAGES": 2}, "Lab on node 2")
    R.eq(status(M2, "Lab/Moved", "(MESSAGES UIDNEXT)"), {"MESSAGES": 2, "UIDNEXT": 3},
         "Lab/Moved on node 2")
    # The source INBOX is untouched by COPY.
    R.eq(status(M2, "INBOX", "(MESSAGES)"), {"MESSAGES": 5}, "COPY leaves INBOX alone")
    M1.logout()
    M2.logout()


@step("expunge_close_unselect")
def expunge_close_unselect(c, facts):
    M = c.login(1)
    select(M, "Lab")
    text, _ = ok(M, "CHECK")
    R.eq(text, "Check completed", "CHECK")
    # UNSELECT keeps \Deleted messages.
    close_selected(M, "UNSELECT")
    R.eq(status(M, "Lab", "(MESSAGES DELETED)"), {"MESSAGES": 2, "DELETED": 1}, "after UNSELECT")
    # CLOSE expunges them silently.
    select(M, "Lab")
    typ, text, untagged = cmd(M, "CLOSE")
    R.eq(typ, "OK", "CLOSE")
    R.true("EXPUNGE" not in untagged, "CLOSE sends no EXPUNGE")
    M.state = "AUTH"
    R.eq(status(M, "Lab", "(MESSAGES)"), {"MESSAGES": 1}, "after CLOSE")
    # EXPUNGE reports each removal, highest first so every number stays valid.
    select(M, "Lab/Moved")
    ok(M, "STORE", "1:2", "+FLAGS.SILENT", "(\\Deleted)")
    _, untagged = ok(M, "EXPUNGE")
    R.eq(untagged.get("EXPUNGE"), [b"2", b"1"], "EXPUNGE responses")
    R.eq(fetch(M, "1:*", "(UID)", uid=True), {}, "Lab/Moved is empty")
    close_selected(M, "UNSELECT")
    # Commands of the selected state are refused without a mailbox.
    typ, text, _ = cmd(M, "FETCH", "1", "FLAGS")
    R.eq(typ, "BAD", "FETCH without a selected mailbox")
    M.logout()


def read_line(M, what, deadline):
    remaining = deadline - time.monotonic()
    R.true(remaining > 0, f"timed out waiting for {what}")
    M.sock.settimeout(remaining)
    try:
        line = M.readline()
    except socket.timeout:
        raise CheckFailed(f"timed out waiting for {what}")
    finally:
        M.sock.settimeout(TIMEOUT)
    R.true(line != b"", f"connection closed waiting for {what}")
    return line.decode("utf-8", "replace").rstrip("\r\n")


@step("idle_cross_node")
def idle_cross_node(c, facts):
    idler = c.login(2)
    info = select(idler, "INBOX")
    n = info["exists"]
    tag = idler._new_tag().decode()
    idler.send(f"{tag} IDLE\r\n".encode())
    deadline = time.monotonic() + 60
    R.eq(read_line(idler, "the IDLE continuation", deadline), "+ idling", "IDLE continuation")
    # Node 1: a delivery through SMTP and a flag change through another IMAP session.
    smtp_deliver(c.args.n1, c.args.smtp_port, c.args.user, PLAIN)
    changer = c.login(1)
    select(changer, "INBOX")
    ok(changer, "STORE", "4", "+FLAGS", "(\\Flagged)")
    seen = {"exists": None, "fetch": None}
    while seen["exists"] is None or seen["fetch"] is None:
        line = read_line(idler, f"EXISTS and FETCH during IDLE (got {seen})", deadline)
        m = re.fullmatch(r"\* (\d+) EXISTS", line)
        if m:
            seen["exists"] = int(m.group(1))
        m = re.fullmatch(r"\* 4 FETCH \((.*)\)", line)
        if m and "\\Flagged" in m.group(1):
            seen["fetch"] = m.group(1)
    R.eq(seen["exists"], n + 1, "the idler saw the delivery")
    R.true("UID 4" in seen["fetch"], f"FETCH carries the UID: {seen['fetch']}")
    idler.send(b"DONE\r\n")
    while True:
        line = read_line(idler, "the end of IDLE", deadline)
        if line.startswith(tag + " "):
            break
    R.eq(line, f"{tag} OK IDLE terminated", "IDLE ends with OK")
    # The session goes on normally.
    got = fetch(idler, f"{n + 1}", "(UID FLAGS)")
    R.eq(int(got[n + 1]["UID"]), 6, "the delivered message has UID 6")
    ok(changer, "STORE", "4", "-FLAGS", "(\\Flagged)")
    idler.logout()
    changer.logout()


@step("condstore")
def condstore(c, facts):
    M = c.login(1)
    typ, data = M.enable("CONDSTORE")
    R.eq(typ, "OK", "ENABLE CONDSTORE")
    R.eq(M.untagged_responses.get("ENABLED", [b""])[-1].strip(), b"CONDSTORE", "ENABLED")
    info = select(M, "INBOX")
    highest = int(info["untagged"]["HIGHESTMODSEQ"][-1])
    R.eq(fetch(M, "1:*", "(FLAGS)", modifiers=f"(CHANGEDSINCE {highest})"), {},
         "nothing changed since HIGHESTMODSEQ")
    _, untagged = ok(M, "STORE", "2", "+FLAGS", "($Changed)")
    got = fetch_items(untagged["FETCH"])[2]
    modseq = int(got["MODSEQ"][0])
    R.true(modseq > highest, f"STORE returns the new MODSEQ ({modseq} > {highest})")
    got = fetch(M, "1:*", "(FLAGS)", modifiers=f"(CHANGEDSINCE {highest})")
    R.eq(list(got), [2], "CHANGEDSINCE finds the one change")
    R.eq(int(got[2]["MODSEQ"][0]), modseq, "with its MODSEQ")
    # UNCHANGEDSINCE older than the message's MODSEQ: refused, MODIFIED names it.
    text, untagged = ok(M, "STORE", "1:2", f"(UNCHANGEDSINCE {highest})", "+FLAGS", "(\\Flagged)")
    R.eq(code(text, "MODIFIED"), "2", f"MODIFIED in {text!r}")
    got = fetch(M, "1:2", "(FLAGS MODSEQ)")
    R.eq(flags(got[1]), {"\\Answered", "\\Flagged"}, "message 1 was unchanged: stored")
    R.eq(flags(got[2]), {"\\Flagged", "$Work", "$Changed"}, "message 2 was changed: untouched")
    R.eq(int(got[2]["MODSEQ"][0]), modseq, "message 2's MODSEQ did not move")
    current = int(got[2]["MODSEQ"][0])
    text, untagged = ok(M, "UID", "STORE", "2", f"(UNCHANGEDSINCE {current})", "-FLAGS",
                        "($Changed)")
    R.eq(code(text, "MODIFIED"), None, "UNCHANGEDSINCE equal to MODSEQ succeeds")
    got = fetch_items(untagged["FETCH"])[2]
    latest = int(got["MODSEQ"][0])
    R.true(latest > current, "and moves MODSEQ")
    R.eq(search(M, "MODSEQ", str(latest)), [2], "SEARCH MODSEQ finds the latest change")
    R.eq(search(M, "MODSEQ", str(current + 1)), [1, 2], "SEARCH MODSEQ finds both changes")
    ok(M, "STORE", "1", "-FLAGS.SILENT", "(\\Flagged)")
    st = status(M, "INBOX", "(HIGHESTMODSEQ)")
    R.true(st["HIGHESTMODSEQ"] > current, "STATUS HIGHESTMODSEQ moved")
    M.logout()


@step("quota")
def quota(c, facts):
    M = c.login(2)
    # STORAGE counts every message of every mailbox, in KiB rounded up. (EXAMINE also brings
    # node 2 up to date with the leader, so the usage it reports next is current.)
    total = 0
    for name, attributes in list_names(M, '""', "*").items():
        if "\\Noselect" in attributes:
            continue
        if select(M, q(utf7_encode(name)), readonly=True)["exists"]:
            total += sum(int(f["RFC822.SIZE"]) for f in fetch(M, "1:*", "(RFC822.SIZE)").values())
        close_selected(M, "UNSELECT")
    typ, data = M.getquotaroot("INBOX")
    R.eq(typ, "OK", "GETQUOTAROOT")
    roots, quotas = data
    R.eq(Parser(roots[0]).parse_all(), [b"INBOX", b""], "the quota root is \"\"")
    parsed = Parser(quotas[0]).parse_all()
    R.eq(parsed[0], b"", "QUOTA root")
    R.eq(parsed[1][0], "STORAGE", "a STORAGE resource")
    used, limit = int(parsed[1][1]), int(parsed[1][2])
    R.eq(limit, 1024 * 1024, "1024 MB in KiB")
    R.eq(used, -(-total // 1024), f"STORAGE used for {total} bytes")
    typ, data = M.getquota('""')
    R.eq(typ, "OK", "GETQUOTA")
    R.eq(Parser(data[0]).parse_all(), parsed, "GETQUOTA agrees")
    typ, data = M.getquota("nope")
    R.eq(typ, "NO", "GETQUOTA of an unknown root")
    typ, data = M.setquota('""', "(STORAGE 1)")
    R.eq(typ, "NO", "SETQUOTA is the administrator's")
    M.logout()


@step("logout")
def logout(c, facts):
    M = c.login(1)
    typ, data = M.logout()
    R.eq(typ, "BYE", "LOGOUT answers BYE")
    R.eq(M.state, "LOGOUT", "logged out")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n1", required=True)
    parser.add_argument("--n2", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--imap-port", type=int, default=2143)
    parser.add_argument("--imaps-port", type=int, default=2993)
    args = parser.parse_args()
    c = Cluster(args)
    facts = {}
    started = time.monotonic()
    try:
        capability_starttls_login(c)
        pipelining_and_starttls_injection(c)
        implicit_tls_authenticate_plain(c)
        noop_id_namespace(c)
        mailboxes(c)
        deliver(c, facts)
        status_examine_read_only(c, facts)
        fetch_all_items(c, facts)
        append(c, facts)
        store(c, facts)
        search_keys(c, facts)
        copy_move_uid(c, facts)
        expunge_close_unselect(c, facts)
        idle_cross_node(c, facts)
        condstore(c, facts)
        quota(c, facts)
        logout(c, facts)
    except Exception as err:  # the report names the step; the traceback says where
        print(
            json.dumps(
                {
                    "ok": False,
                    "step": R.step,
                    "steps": R.steps,
                    "checks": R.checks,
                    "error": f"{type(err).__name__}: {err}",
                    "traceback": traceback.format_exc(),
                }
            )
        )
        sys.exit(1)
    print(
        json.dumps(
            {
                "ok": True,
                "steps": R.steps,
                "checks": R.checks,
                "uidvalidity": facts.get("uidvalidity"),
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
