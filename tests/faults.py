#!/usr/bin/env python3
"""karamail loses nothing across faults. Run by .ci/run against the built binary:

    python3 tests/faults.py target/debug/karamail

1. 2,000 empty mails from distinct senders over parallel connections; the daemon is
   killed with SIGKILL in the middle and restarted. Every mail that got a 250 must get
   exactly one reply; every other one must have got an error or no answer (so the
   sender's MTA retries).
2. The relay goes away for a while: the backlog drains completely, in order, once.
3. Another process holds the SQLite file locked: intake answers 4xx (never 250 without
   storing), and works again once the lock is gone.
"""

import email
import os
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BINARY = Path(sys.argv[1]).resolve()
WORK = Path(tempfile.mkdtemp(prefix="karamail-faults-"))
MAILS = int(os.environ.get("FAULT_MAILS", "2000"))
failures = []
checks = []


def check(ok, message):
    print(("ok   " if ok else "FAIL ") + message, flush=True)
    checks.append(message)
    if not ok:
        failures.append(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SMTP_PORT, HTTP_PORT = free_port(), free_port()


def write_config(transport="file", relay=""):
    (WORK / "karamail.toml").write_text(f"""
[smtp]
listen = "127.0.0.1:{SMTP_PORT}"
intake_addresses = ["kc@example.jp"]
trusted_relays = []
greeting_delay = "10ms"
[http]
listen = "127.0.0.1:{HTTP_PORT}"
metrics_listen = ""
[database]
path = "{WORK}/karamail.db"
[mail]
from = "noreply@example.jp"
transport = "{transport}"
relay = "{relay}"
outbox_dir = "{WORK}/outbox"
retry_initial = "1s"
retry_max = "2s"
[limits]
signup_per_address_hour = 1000000
signup_per_address_day = 1000000
signup_per_ip_hour = 1000000
signup_per_ip_day = 1000000
""")


def start():
    log = open(WORK / "karamail.log", "a")
    daemon = subprocess.Popen([BINARY, "--config", WORK / "karamail.toml", "serve"], stderr=log, cwd=WORK)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", SMTP_PORT), timeout=1).close()
            return daemon
        except OSError:
            time.sleep(0.05)
    raise SystemExit("karamail did not start; see " + str(WORK / "karamail.log"))


def send(sender, timeout=10):
    """The final reply code for one empty mail, or None if there was no answer."""
    try:
        with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=timeout) as smtp:
            smtp.sendmail(sender, ["kc@example.jp"], f"From: {sender}\r\nSubject: \r\n\r\n")
            return 250
    except smtplib.SMTPResponseException as e:
        return e.smtp_code
    except smtplib.SMTPRecipientsRefused as e:
        return list(e.recipients.values())[0][0]
    except (OSError, smtplib.SMTPException):
        return None


def replies_in_outbox():
    counts = {}
    for path in (WORK / "outbox").glob("*.eml"):
        to = email.message_from_bytes(path.read_bytes())["To"]
        counts[to] = counts.get(to, 0) + 1
    return counts


def outbox_queued():
    with sqlite3.connect(WORK / "karamail.db", timeout=10) as db:
        return db.execute("SELECT count(*) FROM outbox WHERE status = 'queued'").fetchone()[0]


def wait_until(condition, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    check(False, f"timed out waiting for {what}")
    return False


def sigkill_in_the_middle():
    write_config()
    daemon = start()
    results = {}
    accepted = threading.Event()
    up = threading.Event()  # senders hold back while the daemon is down, as MTAs retry later
    up.set()
    lock = threading.Lock()

    def one(i):
        up.wait()
        code = send(f"fault{i}@example.net")
        with lock:
            results[i] = code
            if sum(1 for c in results.values() if c == 250) >= MAILS // 3:
                accepted.set()

    started = time.time()
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(one, i) for i in range(MAILS)]
        accepted.wait(120)
        up.clear()
        daemon.send_signal(signal.SIGKILL)  # while up to 16 sessions are in flight
        daemon.wait()
        killed_after = sum(1 for c in results.values() if c == 250)
        daemon = start()
        up.set()
        for future in futures:
            future.result()
    took = time.time() - started
    got_250 = [i for i, c in results.items() if c == 250]
    other = {i: c for i, c in results.items() if c != 250}
    print(f"     {MAILS} mails in {took:.1f} s; killed after {killed_after} 250s; "
          f"{len(got_250)} got 250, {len(other)} got an error or no answer "
          f"({sum(1 for c in other.values() if c is None)} no answer, "
          f"{sum(1 for c in other.values() if c is not None and 400 <= c < 500)} 4xx)")
    wait_until(lambda: outbox_queued() == 0, 120, "the outbox to drain after the restart")
    replies = replies_in_outbox()
    missing = [i for i in got_250 if replies.get(f"fault{i}@example.net", 0) == 0]
    doubled = [to for to, n in replies.items() if n > 1]
    check(not missing, f"every one of the {len(got_250)} mails that got 250 was answered (missing: {missing[:5]})")
    check(not doubled, f"no one was answered twice (doubled: {doubled[:5]})")
    check(all(c is None or c >= 400 for c in other.values()), "every other mail got an error code or no answer")
    stored_anyway = sum(1 for i in other if replies.get(f"fault{i}@example.net"))
    print(f"     {stored_anyway} of those stored just before the kill were answered too (the sender will retry them)")
    return daemon


class Relay:
    """A minimal SMTP relay that records (recipient, Message-ID) in arrival order."""

    def __init__(self, port):
        self.port, self.received, self.server = port, [], None

    def start(self):
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", self.port))
        self.server.listen(64)
        threading.Thread(target=self.serve, args=(self.server,), daemon=True).start()

    def stop(self):
        self.server.close()

    def serve(self, server):
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        file = conn.makefile("rb")
        conn.sendall(b"220 relay\r\n")
        while line := file.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                conn.sendall(b"354 go\r\n")
                data = b""
                while (chunk := file.readline()) not in (b".\r\n", b""):
                    data += chunk
                message = email.message_from_bytes(data)
                self.received.append((message["To"], message["Message-ID"]))
                conn.sendall(b"250 ok\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                break
            else:
                conn.sendall(b"250 ok\r\n")
        conn.close()


def relay_outage(daemon):
    relay = Relay(free_port())
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(30)
    write_config("smtp", f"smtp://127.0.0.1:{relay.port}")
    daemon = start()
    senders = [f"outage{i}@example.net" for i in range(100)]
    codes = [send(s) for s in senders]
    check(codes == [250] * len(senders), "100 mails accepted while the relay is down")
    time.sleep(3)
    relay.start()
    wait_until(lambda: len(relay.received) >= len(senders), 60, "the backlog to drain through the relay")
    recipients = [to for to, _ in relay.received]
    check(sorted(recipients) == sorted(senders) and len(set(recipients)) == len(senders),
          "the backlog arrived complete, once each")
    # Four lanes (relay_connections) send at once: each mail arrives within a few places
    # of its place in the queue.
    displacement = max(abs(recipients.index(s) - i) for i, s in enumerate(senders))
    check(displacement < 8, f"in the order it was queued, give or take the lanes (at most {displacement} places)")
    return daemon, relay


def locked_database(daemon):
    holder = sqlite3.connect(WORK / "karamail.db", timeout=10, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    code = send("locked@example.net", timeout=30)
    check(code is not None and 400 <= code < 500, f"with the database locked, intake answers 4xx (got {code})")
    holder.execute("ROLLBACK")
    holder.close()
    with sqlite3.connect(WORK / "karamail.db", timeout=10) as db:
        stored = db.execute("SELECT count(*) FROM signup_requests WHERE address = 'locked@example.net'").fetchone()[0]
    check(stored == 0, "nothing half-stored while it was locked")
    check(send("unlocked@example.net") == 250, "once the lock is gone, intake answers 250 again")


def main():
    daemon = sigkill_in_the_middle()
    daemon, relay = relay_outage(daemon)
    locked_database(daemon)
    daemon.send_signal(signal.SIGTERM)
    check(daemon.wait(30) == 0, "the daemon stops cleanly on SIGTERM")
    passed = len(checks) - len(failures)
    print(f"faults: {passed} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
