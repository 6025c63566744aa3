#!/usr/bin/env python3
"""Checks mails as a receiver would, with tools karamail did not write: dkimpy verifies
the DKIM signature against the given TXT record (standing in for DNS), Python's email
package parses with its strict policy and lists every defect, and the headers carriers
and parsers expect are looked for. One tab-separated line per mail:

    file  subject  dkim(pass|fail)  defects  missing-headers  signed-headers  charset  body

    python3 tests/mail_audit.py SELECTOR DOMAIN 'v=DKIM1; k=rsa; p=…' FILE.eml …
"""
import email
import email.policy
import sys

import dkim

EXPECTED = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
            "Content-Transfer-Encoding", "Auto-Submitted", "DKIM-Signature"]

selector, domain, record, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
name = f"{selector}._domainkey.{domain}.".encode()


def dns(query, timeout=5):
    return record.encode() if query == name else None


for path in files:
    raw = open(path, "rb").read()
    try:
        verified = dkim.verify(raw, dnsfunc=dns)
    except Exception as e:  # a malformed signature is a failure, not a crash
        print(f"dkim error in {path}: {e}", file=sys.stderr)
        verified = False
    defects = []
    try:
        message = email.message_from_bytes(raw, policy=email.policy.strict)
        for part in message.walk():
            defects += [type(d).__name__ for d in part.defects]
            if not part.is_multipart():
                part.get_content()
        subject = str(message["Subject"])
    except Exception as e:
        defects.append(f"{type(e).__name__}: {e}")
        subject = "?"
    lenient = email.message_from_bytes(raw, policy=email.policy.default)
    charset = lenient.get_content_charset() or "-"
    text = lenient.get_content() if not lenient.is_multipart() else ""
    # The society's name closes every mail: the body reads back as Japanese.
    body = "japanese" if "健康保険組合" in text else " ".join(text.split())[:40] or "-"
    missing = [h for h in EXPECTED if lenient[h] is None]
    signature = " ".join(str(lenient["DKIM-Signature"] or "").split())
    tags = dict(t.strip().split("=", 1) for t in signature.split(";") if "=" in t)
    signed = tags.get("h", "").replace(" ", "").replace(":", ",").lower()
    if lenient["In-Reply-To"] is not None:
        signed += ",(reply)"
    print("\t".join([path, subject, "pass" if verified else "fail",
                     ",".join(defects) or "-", ",".join(missing) or "-", signed, charset, body]))
