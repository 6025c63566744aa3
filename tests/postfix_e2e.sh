#!/usr/bin/env bash
# End to end through a real MTA, as a society would run it: Postfix is the MX for
# example.test and hands kc@example.test to karamail over loopback; karamail's reply goes
# out through Postfix into the member's local mailbox; the test reads the sign-up URL
# from that mailbox and completes the sign-up over HTTP. Run by .ci/run (needs root:
# it installs and configures Debian's postfix on this machine).
#
#   bash tests/postfix_e2e.sh target/debug/karamail
set -euo pipefail
cd "$(dirname "$0")/.."
BINARY=$(realpath "${1:-target/debug/karamail}")

if ! command -v postfix >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends postfix >/dev/null
fi

work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KM_SMTP=$(free_port)
KM_HTTP=$(free_port)
cleanup() {
    kill "$(cat "$work/karamail.pid" 2>/dev/null)" 2>/dev/null || true
    postfix stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# The members, with local mailboxes: member@member.test, and three old carrier
# addresses whose local parts break RFC 5321's dot-atom (Postfix quotes them when it
# relays: MAIL FROM:<"taro..yamada."@docomo.ne.jp>), delivered to local users.
for user in member carrier1 carrier2 carrier3; do
    id "$user" >/dev/null 2>&1 || useradd --create-home "$user"
    rm -f "/var/mail/$user"
done
# Postfix looks such addresses up in their quoted (external) form.
cat > /etc/postfix/virtual <<MAP
"taro..yamada."@docomo.ne.jp carrier1@member.test
".abc"@docomo.ne.jp carrier2@member.test
"hanako."@ezweb.ne.jp carrier3@member.test
MAP
postmap /etc/postfix/virtual

# Postfix: MX for example.test (relayed to karamail), local delivery for member.test.
postfix stop >/dev/null 2>&1 || true
cat > /etc/postfix/main.cf <<CONF
compatibility_level = 3.6
myhostname = mx.example.test
mydomain = example.test
myorigin = example.test
mydestination = member.test, localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.test
transport_maps = hash:/etc/postfix/transport
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps = hash:/etc/aliases
alias_database = hash:/etc/aliases
mail_spool_directory = /var/mail
maillog_file = /var/log/postfix-karamail-e2e.log
smtputf8_enable = no
virtual_alias_domains = docomo.ne.jp ezweb.ne.jp
virtual_alias_maps = hash:/etc/postfix/virtual
CONF
echo "example.test smtp:[127.0.0.1]:$KM_SMTP" > /etc/postfix/transport
postmap /etc/postfix/transport
[ -f /etc/aliases ] || echo "postmaster: root" > /etc/aliases
newaliases
: > /var/log/postfix-karamail-e2e.log
postfix start >/dev/null

# karamail behind it: intake for kc@example.test, replies relayed through Postfix.
cat > "$work/karamail.toml" <<CONF
[smtp]
listen = "127.0.0.1:$KM_SMTP"
intake_addresses = ["kc@example.test"]
hostname = "kc.example.test"
[http]
listen = "127.0.0.1:$KM_HTTP"
metrics_listen = ""
[database]
path = "$work/karamail.db"
[mail]
from = "noreply@example.test"
transport = "smtp"
relay = "smtp://127.0.0.1:25"
retry_initial = "1s"
retry_max = "2s"
CONF
printf 'member_no,name\n1001,山田 太郎\n1002,山田 花子\n1003,安倍 一郎\n1004,鈴木 花子\n' > "$work/members.csv"
(cd "$work" && "$BINARY" --config karamail.toml --create-database members import members.csv --postcards postcards.csv >/dev/null 2>&1)
(cd "$work" && exec "$BINARY" --config karamail.toml serve 2>"$work/karamail.log") &
echo $! > "$work/karamail.pid"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$KM_SMTP") 2>/dev/null && break; sleep 0.1; done

WORK="$work" KM_HTTP="$KM_HTTP" python3 - <<'PY'
import email, email.policy, http.cookiejar, mailbox, os, re, smtplib, sys, time, urllib.parse, urllib.request, csv

work, port = os.environ["WORK"], os.environ["KM_HTTP"]
passed = failed = 0
def check(ok, what):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    passed, failed = passed + ok, failed + (not ok)
    if not ok:
        print(open(f"{work}/karamail.log").read()[-3000:])
        print(open("/var/log/postfix-karamail-e2e.log").read()[-3000:])
        print(f"postfix e2e: {passed} passed, {failed} failed")
        sys.exit(1)

rows = list(csv.reader(open(f"{work}/postcards.csv", encoding="utf-8-sig")))[1:]

def reply_in(user, deadline):
    while time.time() < deadline:
        if os.path.exists(f"/var/mail/{user}"):
            for message in mailbox.mbox(f"/var/mail/{user}", factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default)):
                if message["Subject"] == "利用登録手続きのご案内":
                    return message
        time.sleep(0.3)
    return None

def sign_up(sender, user, postcard, login_id):
    """A phone's empty mail from `sender` to the society's MX, the reply in `user`'s
    mailbox, then 本人確認 and 利用者情報入力 on the web."""
    with smtplib.SMTP("127.0.0.1", 25, timeout=30) as mx:
        # By hand: smtplib would rewrite an address that is not a dot-atom.
        mx.ehlo("phone.test")
        check(mx.docmd(f"MAIL FROM:<{sender}>")[0] == 250, f"Postfix takes MAIL FROM:<{sender}>")
        check(mx.docmd("RCPT TO:<kc@example.test>")[0] == 250, "and RCPT TO:<kc@example.test>")
        code, _ = mx.data(f"From: {sender}\r\nTo: kc@example.test\r\nSubject: \r\n\r\n".encode())
        check(code == 250, f"Postfix accepted the empty mail from {sender}")
    reply = reply_in(user, time.time() + 60)
    check(reply is not None, f"the reply 「利用登録手続きのご案内」 reached {sender} through Postfix")
    check("by mx.example.test" in " ".join(reply.get_all("Received") or []), "it went out through Postfix (Received: by mx.example.test)")
    check(reply["Auto-Submitted"] == "auto-replied", "it is marked Auto-Submitted: auto-replied")
    link = re.search(r"http://\S+/signup/link/\S+", reply.get_content()).group(0)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    def fetch(url, fields=None, page=None):
        data = None
        if fields is not None:
            fields = dict(fields, csrf=re.search(r'name="csrf" value="([^"]+)"', page).group(1))
            data = urllib.parse.urlencode(fields).encode()
        return opener.open(url if url.startswith("http") else f"http://127.0.0.1:{port}{url}", data).read().decode()
    page = fetch(link)
    check("仮パスワード" in page, "the link opens 本人確認")
    page = fetch("/signup/verify", {"temp_login_id": postcard[2], "temp_password": postcard[3]}, page)
    check("利用者情報入力" in page, "the postcard opens 利用者情報入力")
    shown = re.search(r'id="email" name="email" type="email" autocomplete="email" value="([^"]*)"', page).group(1)
    check(shown == sender, f"the address is the member's own: {shown}")
    page = fetch("/signup/profile", {"login_id": login_id, "password": "kenpo123", "password_confirm": "kenpo123",
                                     "email": shown, "nickname": "たろう"}, page)
    check("利用者情報登録完了" in page, f"sign-up complete for {sender}: 利用者情報登録完了")

sign_up("member@member.test", "member", rows[0], "yamadataro")
sign_up("taro..yamada.@docomo.ne.jp", "carrier1", rows[1], "yamadahanako")
sign_up(".abc@docomo.ne.jp", "carrier2", rows[2], "abeichiro")
sign_up("hanako.@ezweb.ne.jp", "carrier3", rows[3], "suzukihanako")

import sqlite3
given = [r[0] for r in sqlite3.connect(f"{work}/karamail.db").execute("SELECT address FROM signup_requests")]
check('"taro..yamada."@docomo.ne.jp' in given, f"Postfix quoted the carrier sender on its way in: {given}")
print(f"postfix e2e: {passed} passed, {failed} failed")
PY
