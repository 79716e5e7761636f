#!/usr/bin/env python3
"""An IMAP client that keeps a cache across a failover, for the chaos scenario
imap_cache_survives_vip_kill (chaos-tests/tests/it/chaos.rs), with Python's imaplib.

  imap_cache.py --host VIP --user U --idle-user U2 --password PW --seed N --out FILE
                [--mailbox Kept] [--imap-port 143] [--imaps-port 993] [--timeout 15]
                [--connect-timeout 0.25] [--reconnect-for 45] [--deadline 150]

Two sessions run side by side, both through --host, and write JSON lines to --out
(times are time.monotonic(), CLOCK_MONOTONIC, like the workload's). SIGUSR1 tells the client
that the fault is about to happen: the next dropped connection is the fault's.

The cache session (--user, port 143 with STARTTLS) selects INBOX, stores flags and keywords on
messages there, creates --mailbox, copies messages into it, appends one of its own, changes
flags there, marks two \\Deleted and expunges one of them (UID EXPUNGE). Then it caches both
mailboxes (a snapshot: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, and per UID its flags, MODSEQ,
Message-ID and whether the body is intact), says "ready" and polls INBOX with NOOP, changing
nothing more, until its connection drops. It reconnects (retrying until LOGIN and SELECT work,
for at most --reconnect-for seconds), asks what changed since the cached HIGHESTMODSEQ
(UID FETCH ... (CHANGEDSINCE)) and takes the snapshots again.

The idle session (--idle-user, port 993) caches INBOX, starts IDLE, says "ready" and records
the updates IDLE pushes, until the connection drops (TCP keepalive bounds how long a dead peer
can go unnoticed); then it reconnects and snapshots INBOX again the same way.

A connection lost before SIGUSR1, or a NO [UNAVAILABLE] then (the VIP holder let the VIP go
without a fault, as an overloaded node does when its leader lease runs out), restarts that
session from the beginning, the cache session with a fresh mailbox (--mailbox plus the attempt number): a
"restart" record, after which the checker ignores what the session did before. A connection
lost while reading the mailboxes again after the fault is reconnected too (within
--reconnect-for); a message whose body the server cannot serve yet (NO [UNAVAILABLE]: its only
copy is on the killed node) is asked for again until it can.

  {"ev": "snapshot", "session": S, "phase": "cached" | "after", "user": U, "mailbox": M,
   "t_select": T, "t_selected": T, "t_end": T, "uidvalidity": N, "uidnext": N,
   "highestmodseq": N, "messages": [{"uid", "flags", "modseq", "id", "token", "body_ok"}]}
  {"ev": "set", "session": S, "user": U, "mailbox": M, "uid": N, "op": "+" | "-" | "=",
   "flags": [...], "t": T}                       a STORE (or APPEND flags) the client did
  {"ev": "copied", ..., "mailbox": M, "pairs": [[from_uid, to_uid], ...]}   COPYUID
  {"ev": "appended", ..., "mailbox": M, "uid": N, "id": "<...>"}          APPENDUID
  {"ev": "expunged", ..., "mailbox": M, "uid": N}                         UID EXPUNGE
  {"ev": "ready", "session": S, "t": T}
  {"ev": "idle_update", "session": S, "line": "* 12 EXISTS", "t": T}
  {"ev": "restart", "session": S, "t": T, "error": "..."}  connection lost before SIGUSR1
  {"ev": "dropped", "session": S, "t": T, "error": "..."}  the first loss after SIGUSR1
  {"ev": "selected", "session": S, "mailbox": M, "t": T, "attempts": N, "last_error": "..."}
  {"ev": "reconnect", "session": S, "t": T, "error": "..."}  lost while reading again
  {"ev": "changed_since", "session": S, "mailbox": M, "modseq": N, "uids": [...], "t": T}
  {"ev": "error", "session": S, "error": "...", "t": T}     the session gave up
  {"ev": "done", "t": T}

The checks are in chaos-tests/src/checks/imap_cache.rs; this client only reports.
"""

import argparse
import email
import imaplib
import os
import random
import re
import signal
import socket
import sys
import threading
import time
from email.policy import default as default_policy

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Log, tls_context  # noqa: E402  (same directory)
from workload import body_for  # noqa: E402

# Set by SIGUSR1: the fault is about to happen.
fault_coming = threading.Event()


def keepalive(sock):
    """A dead peer is noticed within about 5 s even when nothing is sent (as IDLE does)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 2)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


def open_socket(host, port, timeout):
    """A short connect timeout: a SYN to a VIP owner that just vanished is given up for a new
    attempt. Then TCP keepalive, and the operation timeout."""
    sock = socket.create_connection((host, port), CacheIMAP.connect_timeout)
    keepalive(sock)
    sock.settimeout(timeout)
    return sock


class CacheIMAP(imaplib.IMAP4):
    connect_timeout = 0.25

    def _create_socket(self, timeout):
        return open_socket(self.host, self.port, timeout)


class CacheIMAPS(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout):
        sock = open_socket(self.host, self.port, timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


class Failed(Exception):
    """The server said NO or BAD, or answered something the client cannot use."""


class Unavailable(Failed):
    """NO [UNAVAILABLE]: the server cannot do it now (during a failover); try again."""


# What a lost connection raises (imaplib's abort is its EOF and socket errors).
LOST = (OSError, imaplib.IMAP4.abort, Unavailable)


def ok(reply, what):
    typ, data = reply
    if typ != "OK":
        text = b" ".join(d for d in data if isinstance(d, bytes))
        kind = Unavailable if b"[UNAVAILABLE]" in text else Failed
        raise kind(f"{what}: {typ} {data!r}"[:300])
    return data


def connect(args, user, implicit_tls):
    if implicit_tls:
        imap = CacheIMAPS(args.host, args.imaps_port, ssl_context=tls_context(),
                          timeout=args.timeout)
    else:
        imap = CacheIMAP(args.host, args.imap_port, timeout=args.timeout)
    try:
        if not implicit_tls:
            ok(imap.starttls(ssl_context=tls_context()), "STARTTLS")
        ok(imap.login(user, args.password), "LOGIN")
        ok(imap.enable("CONDSTORE"), "ENABLE CONDSTORE")
    except BaseException:
        close(imap)
        raise
    return imap


def close(imap):
    try:
        imap.shutdown()
    except (OSError, imaplib.IMAP4.error, ValueError):
        pass


def code(imap, name):
    """The value of a response code ([UIDNEXT 12]) from the last command, as an int."""
    _, data = imap.response(name)
    if not data or data[-1] is None:
        raise Failed(f"no {name} in the reply")
    return int(data[-1].split()[0])


def select(imap, mailbox):
    """SELECT; returns (t_select, t_selected, uidvalidity, uidnext, highestmodseq)."""
    t_select = time.monotonic()
    ok(imap.select(mailbox), f"SELECT {mailbox}")
    t_selected = time.monotonic()
    return (t_select, t_selected, code(imap, "UIDVALIDITY"), code(imap, "UIDNEXT"),
            code(imap, "HIGHESTMODSEQ"))


FLAGS_RE = re.compile(r"FLAGS \(([^)]*)\)")
UID_RE = re.compile(r"UID (\d+)")
MODSEQ_RE = re.compile(r"MODSEQ \((\d+)\)")


def fetch_items(data):
    """imaplib's FETCH data as (text without literals, literal or None) per response."""
    items = []
    for part in data:
        if part is None:
            continue
        if isinstance(part, tuple):
            items.append([part[0].decode(errors="replace"), part[1]])
        else:
            text = part.decode(errors="replace")
            if items and (text.startswith(")") or text.startswith(" ")):
                items[-1][0] += text
            else:
                items.append([text, None])
    return items


def parse_flags(text):
    found = FLAGS_RE.search(text)
    if not found:
        return None
    return sorted(f for f in found.group(1).split() if f.lower() != "\\recent")


def describe(raw):
    """(Message-ID, X-Chaos-Token, body intact) of a message's bytes."""
    parsed = email.message_from_bytes(raw, policy=default_policy)
    mid = str(parsed["Message-ID"] or "")
    token = str(parsed["X-Chaos-Token"] or "")
    body = parsed.get_payload()
    body_ok = bool(token) and isinstance(body, str) and \
        body.replace("\r\n", "\n") == body_for(token).replace("\r\n", "\n")
    return mid, token, body_ok


def snapshot(imap, log, session, user, mailbox, phase):
    """SELECT and read every message: the cache a client keeps of a mailbox."""
    t_select, t_selected, uidvalidity, uidnext, highest = select(imap, mailbox)
    # A message expunged between SELECT and FETCH makes the FETCH NO [EXPUNGEISSUED]; one
    # whose only copy is on a dead node, NO [UNAVAILABLE] until the node is back. The client
    # reads again, as a real one would, for a bounded time.
    give_up = time.monotonic() + 30
    while True:
        typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS MODSEQ BODY.PEEK[])")
        if typ == "OK":
            break
        imap.untagged_responses.pop("FETCH", None)
        if time.monotonic() > give_up:
            raise Failed(f"UID FETCH 1:* in {mailbox} for 30 s: {typ} {data!r}"[:300])
        time.sleep(0.5)
    messages = {}
    for text, literal in fetch_items(data):
        uid = UID_RE.search(text)
        flags = parse_flags(text)
        modseq = MODSEQ_RE.search(text)
        if uid is None or literal is None:
            # An unsolicited FETCH (another session's flag change) carries no body.
            continue
        if flags is None or modseq is None:
            raise Failed(f"FETCH response without FLAGS or MODSEQ: {text!r}"[:300])
        mid, token, body_ok = describe(literal)
        messages[int(uid.group(1))] = {"uid": int(uid.group(1)), "flags": flags,
                                       "modseq": int(modseq.group(1)), "id": mid,
                                       "token": token, "body_ok": body_ok}
    record = {"ev": "snapshot", "session": session, "phase": phase, "user": user,
              "mailbox": mailbox, "t_select": t_select, "t_selected": t_selected,
              "t_end": time.monotonic(), "uidvalidity": uidvalidity, "uidnext": uidnext,
              "highestmodseq": highest,
              "messages": [messages[uid] for uid in sorted(messages)]}
    log.write(record)
    return record


def uid_set(uids):
    return ",".join(str(u) for u in uids)


def store(imap, log, session, user, mailbox, uids, op, flags):
    """UID STORE on one UID or a list of them; one "set" record per UID."""
    uids = uids if isinstance(uids, list) else [uids]
    item = {"+": "+FLAGS.SILENT", "-": "-FLAGS.SILENT", "=": "FLAGS.SILENT"}[op]
    typ, data = imap.uid("STORE", uid_set(uids), item, "(" + " ".join(flags) + ")")
    # In INBOX the workload's POP3 reader may have just expunged a message: the checker then
    # finds its deletion in the workload's history.
    text = b" ".join(d for d in data if isinstance(d, bytes))
    if not (mailbox == "INBOX" and b"EXPUNGEISSUED" in text):
        ok((typ, data), f"UID STORE {uid_set(uids)} {item} in {mailbox}")
    t = time.monotonic()
    for uid in uids:
        log.write({"ev": "set", "session": session, "user": user, "mailbox": mailbox,
                   "uid": uid, "op": op, "flags": flags, "t": t})


def prepare(imap, args, log, rng, kept):
    """The cache session's own changes, all before the fault."""
    session, user = "cache", args.user
    uids = []
    give_up = time.monotonic() + 20
    while len(uids) < 8:
        if time.monotonic() > give_up:
            raise Failed(f"only {len(uids)} messages in INBOX after 20 s of load")
        select(imap, "INBOX")
        data = ok(imap.uid("SEARCH", "ALL"), "UID SEARCH ALL")
        uids = sorted(int(u) for u in data[0].split())
        time.sleep(0.2)
    # In INBOX, where the workload's POP3 reader deletes a quarter of what it lists on every
    # pass, so some of these are gone before the cache is taken: a keyword on all of them,
    # and a few more flags on a few.
    store(imap, log, session, user, "INBOX", uids, "+", ["$ChaosMany"])
    picked = rng.sample(uids, 4)
    store(imap, log, session, user, "INBOX", picked[0], "+", ["\\Flagged", "$ChaosKept"])
    store(imap, log, session, user, "INBOX", picked[1], "+", ["\\Flagged", "$ChaosKept"])
    store(imap, log, session, user, "INBOX", picked[2], "+", ["\\Answered", "\\Seen"])
    store(imap, log, session, user, "INBOX", picked[3], "+", ["$Chaos-Label", "\\Draft"])
    store(imap, log, session, user, "INBOX", picked[3], "-", ["\\Draft"])
    # Copies of what is still there: messages the reader cannot delete, whose blobs its
    # deletions unreference in INBOX. Copied again from what arrived meanwhile until there
    # are enough (the reader may take some between SEARCH and COPY).
    ok(imap.create(kept), f"CREATE {kept}")
    pairs = []
    tried = set()
    while len(pairs) < 6:
        if time.monotonic() > give_up + 20:
            raise Failed(f"only {len(pairs)} messages copied to {kept} in 20 s")
        data = ok(imap.uid("SEARCH", "ALL"), "UID SEARCH ALL")
        fresh = sorted(set(int(u) for u in data[0].split()) - tried)
        if not fresh:
            time.sleep(0.2)
            continue
        tried.update(fresh)
        ok(imap.uid("COPY", uid_set(fresh), kept), f"UID COPY to {kept}")
        _, copyuid = imap.response("COPYUID")
        if copyuid and copyuid[-1] is not None:
            _, src, dst = copyuid[-1].decode().split()
            pairs += zip(expand(src), expand(dst))
    log.write({"ev": "copied", "session": session, "user": user, "mailbox": kept,
               "pairs": pairs, "t": time.monotonic()})
    mid = f"<imap-cache.{args.seed}@chaos.test>"
    token = f"{rng.getrandbits(64):016x}"
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    raw = (f"From: {user}\r\nTo: {user}\r\nSubject: kept {token}\r\nDate: {date}\r\n"
           f"Message-ID: {mid}\r\nX-Chaos-Token: {token}\r\n\r\n" + body_for(token)).encode()
    appended_flags = ["$ChaosAppended", "\\Draft"]
    ok(imap.append(kept, "(" + " ".join(appended_flags) + ")", None, raw), f"APPEND {kept}")
    _, appenduid = imap.response("APPENDUID")
    if not appenduid or appenduid[-1] is None:
        raise Failed("APPEND answered without APPENDUID")
    appended = int(appenduid[-1].decode().split()[1])
    log.write({"ev": "appended", "session": session, "user": user, "mailbox": kept,
               "uid": appended, "id": mid, "t": time.monotonic()})
    log.write({"ev": "set", "session": session, "user": user, "mailbox": kept,
               "uid": appended, "op": "=", "flags": appended_flags, "t": time.monotonic()})
    select(imap, kept)
    # Copies of the flagged ones first (when the reader left them in INBOX to be copied), so
    # that replacing and removing flags takes away flags the copies really had.
    copy_of = dict(pairs)
    targets = [copy_of[u] for u in picked[:2] if u in copy_of]
    targets += [d for _, d in pairs if d not in targets]
    store(imap, log, session, user, kept, targets[0], "=", ["\\Flagged", "\\Seen"])
    store(imap, log, session, user, kept, targets[1], "-", ["\\Flagged", "$ChaosKept"])
    store(imap, log, session, user, kept, targets[2], "+", ["$ChaosKept2"])
    store(imap, log, session, user, kept, targets[3], "+", ["\\Deleted"])
    store(imap, log, session, user, kept, targets[4], "+", ["\\Deleted", "\\Answered"])
    # Only the named UID goes: targets[3] keeps its \Deleted flag.
    ok(imap.uid("EXPUNGE", str(targets[4])), f"UID EXPUNGE {targets[4]}")
    log.write({"ev": "expunged", "session": session, "user": user, "mailbox": kept,
               "uid": targets[4], "t": time.monotonic()})


def expand(text):
    uids = []
    for part in text.split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            uids.extend(range(min(a, b), max(a, b) + 1))
        else:
            uids.append(int(part))
    return uids


def error_text(err):
    return f"{type(err).__name__}: {err}"[:200]


def reconnect(args, log, session, user, implicit_tls, give_up, first):
    """Retries until LOGIN and SELECT INBOX work through the VIP, until `give_up`; the first
    time after the fault's drop, records when that was."""
    attempts = 0
    last_error = ""
    while time.monotonic() < give_up:
        attempts += 1
        imap = None
        try:
            imap = connect(args, user, implicit_tls)
            select(imap, "INBOX")
            if first:
                log.write({"ev": "selected", "session": session, "mailbox": "INBOX",
                           "t": time.monotonic(), "attempts": attempts,
                           "last_error": last_error})
            return imap
        except (OSError, imaplib.IMAP4.error, Failed, ValueError) as err:
            last_error = error_text(err)
            if imap is not None:
                close(imap)
            time.sleep(0.05)
    raise Failed(f"no IMAP SELECT through the VIP within {args.reconnect_for} s "
                 f"({attempts} attempts, last: {last_error})")


def read_again(imap, log, session, user, cached):
    """What a CONDSTORE client does on reconnecting: ask what changed since its cache, then
    (here, to check everything) read the mailboxes again."""
    for record in cached:
        mailbox = record["mailbox"]
        select(imap, mailbox)
        uids = []
        if record["uidnext"] > 1:
            typ, data = imap.uid("FETCH", f"1:{record['uidnext'] - 1}", "(UID FLAGS)",
                                 f"(CHANGEDSINCE {record['highestmodseq']})")
            ok((typ, data), f"UID FETCH CHANGEDSINCE in {mailbox}")
            for text, _ in fetch_items(data):
                uid = UID_RE.search(text)
                if uid:
                    uids.append(int(uid.group(1)))
        log.write({"ev": "changed_since", "session": session, "mailbox": mailbox,
                   "modseq": record["highestmodseq"], "uids": sorted(set(uids)),
                   "t": time.monotonic()})
    for record in cached:
        snapshot(imap, log, session, user, record["mailbox"], "after")


def after_fault(args, log, session, user, implicit_tls, cached, deadline):
    """Reconnects and reads the mailboxes again; a connection lost meanwhile (the VIP may move
    once more while the cluster settles) is reconnected, within --reconnect-for."""
    give_up = min(deadline, time.monotonic() + args.reconnect_for)
    first = True
    while True:
        imap = reconnect(args, log, session, user, implicit_tls, give_up, first)
        first = False
        try:
            read_again(imap, log, session, user, cached)
            close(imap)
            return
        except LOST as err:
            close(imap)
            log.write({"ev": "reconnect", "session": session, "t": time.monotonic(),
                       "error": error_text(err)})


def connect_before_fault(args, user, implicit_tls, deadline):
    """Connects while the cluster is healthy; a few retries for a slow start."""
    last = None
    give_up = min(deadline, time.monotonic() + 20)
    while time.monotonic() < give_up:
        try:
            return connect(args, user, implicit_tls)
        except (OSError, imaplib.IMAP4.error, Failed) as err:
            last = err
            time.sleep(0.2)
    raise Failed(f"cannot connect before the fault: {last}")


def lost_before_fault(log, session, imap, ready, err, deadline):
    """A connection lost: the fault's (True), or one before it, and the session starts over
    (False)."""
    if imap is not None:
        close(imap)
    if fault_coming.is_set():
        if not ready:
            raise Failed(f"the connection was lost before the session was ready, with the "
                         f"fault coming: {error_text(err)}")
        log.write({"ev": "dropped", "session": session, "t": time.monotonic(),
                   "error": error_text(err)})
        return True
    if time.monotonic() > deadline:
        raise Failed(f"no fault before the deadline; last connection lost: {error_text(err)}")
    log.write({"ev": "restart", "session": session, "t": time.monotonic(),
               "error": error_text(err)})
    time.sleep(0.2)
    return False


def cache_session(args, log, deadline):
    session, user = "cache", args.user
    rng = random.Random(f"{args.seed}-imap-cache")
    attempt = 0
    while True:
        attempt += 1
        kept = args.mailbox if attempt == 1 else f"{args.mailbox}{attempt}"
        imap, ready = None, False
        try:
            imap = connect_before_fault(args, user, False, deadline)
            prepare(imap, args, log, rng, kept)
            cached = [snapshot(imap, log, session, user, m, "cached") for m in (kept, "INBOX")]
            log.write({"ev": "ready", "session": session, "t": time.monotonic()})
            ready = True
            # Poll INBOX (still selected) as a client checking for new mail does; change
            # nothing.
            while time.monotonic() < deadline:
                ok(imap.noop(), "NOOP")
                time.sleep(0.1)
            raise Failed("the connection never dropped")
        except LOST as err:
            if lost_before_fault(log, session, imap, ready, err, deadline):
                break
    after_fault(args, log, session, user, False, cached, deadline)


def idle_session(args, log, deadline):
    session, user = "idle", args.idle_user
    while True:
        imap, ready = None, False
        try:
            imap = connect_before_fault(args, user, True, deadline)
            cached = [snapshot(imap, log, session, user, "INBOX", "cached")]
            tag = imap._new_tag()
            imap.send(tag + b" IDLE\r\n")
            while True:
                line = imap.readline()
                if not line:
                    raise OSError("end of stream before the IDLE continuation")
                if line.startswith(b"+"):
                    break
                if line.startswith(tag):
                    raise Failed(f"IDLE refused: {line!r}")
            log.write({"ev": "ready", "session": session, "t": time.monotonic()})
            ready = True
            # No timeout of our own: a dead server is noticed by the FIN of its kernel or by
            # TCP keepalive, as a real IDLE client notices it.
            imap.sock.settimeout(None)
            n = 0
            while time.monotonic() < deadline:
                line = imap.readline()
                if not line:
                    raise OSError("end of stream")
                n += 1
                if n <= 200:
                    log.write({"ev": "idle_update", "session": session,
                               "line": line.decode(errors="replace").strip()[:100],
                               "t": time.monotonic()})
                if line.startswith(b"* BYE") or line.startswith(tag):
                    raise OSError(f"server said {line!r}")
            raise Failed("the connection never dropped")
        except LOST as err:
            if lost_before_fault(log, session, imap, ready, err, deadline):
                break
    after_fault(args, log, session, user, True, cached, deadline)


def guarded(target, args, log, deadline, name):
    def run():
        try:
            target(args, log, deadline)
        except Exception as err:  # recorded for the checker, which fails the scenario
            log.write({"ev": "error", "session": name, "error": error_text(err),
                       "t": time.monotonic()})
    return threading.Thread(target=run, name=name, daemon=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--idle-user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--seed", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--mailbox", default="Kept")
    parser.add_argument("--imap-port", type=int, default=143)
    parser.add_argument("--imaps-port", type=int, default=993)
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--connect-timeout", type=float, default=0.25)
    parser.add_argument("--reconnect-for", type=float, default=45.0)
    parser.add_argument("--deadline", type=float, default=150.0)
    args = parser.parse_args()
    CacheIMAP.connect_timeout = args.connect_timeout
    signal.signal(signal.SIGUSR1, lambda *_: fault_coming.set())
    log = Log(args.out)
    deadline = time.monotonic() + args.deadline
    threads = [guarded(cache_session, args, log, deadline, "cache"),
               guarded(idle_session, args, log, deadline, "idle")]
    for thread in threads:
        thread.start()
    # Joined in short steps, so SIGUSR1 is handled at once; the sessions are daemon threads,
    # so one stuck past the deadline does not keep the client alive.
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    log.write({"ev": "done", "t": time.monotonic()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
