#!/usr/bin/env bash
# The Debian package as a sysadmin installs it: builds the .deb (cargo-deb), installs it
# with apt, checks what it put where, runs the daemon as the unit would (user karamail,
# in /var/lib/karamail, the unit's ExecStart), runs the README's sysadmin commands from
# another folder, completes a sign-up, then upgrades over itself (config edits and data
# kept) and removes it (data and config kept). Needs root: run by .ci/run on a test
# machine only.
#
#   bash tests/package_e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
passed=0
check() { # check "what" command…  (its output is shown only when it fails)
    local what=$1 out; shift
    if out=$("$@" 2>&1); then
        echo "ok   $what"; passed=$((passed + 1))
    else
        echo "FAIL $what"; echo "$out" | tail -n 20
        [ -f /tmp/karamail-package.log ] && tail -n 20 /tmp/karamail-package.log
        echo "package e2e: $passed passed, 1 failed"; exit 1
    fi
}

command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked
command -v pdftotext >/dev/null 2>&1 || apt-get install -y -q --no-install-recommends poppler-utils >/dev/null
cargo build --release --locked
# The man page the unit's Documentation= names, made by the binary itself.
target/release/karamail man | gzip -9n > target/release/karamail.1.gz
cargo deb --no-build >/dev/null
deb=$(ls -t target/debian/karamail_*.deb | head -n 1)
echo "     package $(basename "$deb"): $(du -k "$deb" | cut -f1) KiB"

# A clean start: an earlier run's package, user data and config go.
if dpkg -s karamail >/dev/null 2>&1; then apt-get purge -y -q karamail >/dev/null; fi
rm -rf /var/lib/karamail /etc/karamail
start=$(date +%s.%N)
apt-get install -y -q "./$deb" >/dev/null
check "apt install ./$(basename "$deb")" dpkg -s karamail
check "the binary, its man page, the unit, the sysusers file, the templates" test -x /usr/bin/karamail -a -f /usr/share/man/man1/karamail.1.gz -a -f /lib/systemd/system/karamail.service -a -f /usr/lib/sysusers.d/karamail.conf -a -f /usr/share/karamail/templates/mail/signup_link.txt
check "the service user karamail" id karamail
check "config 0640 root:karamail" test "$(stat -c '%a %U %G' /etc/karamail/karamail.toml)" = "640 root karamail"
check "state 0700 karamail" test "$(stat -c '%a %U %G' /var/lib/karamail)" = "700 karamail karamail"
if command -v systemd-analyze >/dev/null 2>&1; then
    check "systemd-analyze verify on the installed unit" systemd-analyze verify /lib/systemd/system/karamail.service
fi

# The daemon as the unit runs it (no systemd here: the same user, folder and command).
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/karamail.service)
(cd /var/lib/karamail && exec runuser -u karamail -- $exec_start >/tmp/karamail-package.log 2>&1) &
daemon=$!
trap 'kill $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null && break; sleep 0.1; done
check "the daemon listens as karamail" grep -q "karamail listening" /tmp/karamail-package.log
check "it made the server key 0600 karamail beside the database" test "$(stat -c '%a %U' /var/lib/karamail/karamail.key)" = "600 karamail"
check "and the database 0600" test "$(stat -c '%a %U' /var/lib/karamail/karamail.db)" = "600 karamail"

# The README's sysadmin commands, from the admin's own folder.
admin=$(mktemp -d)
chmod 0777 "$admin"
printf 'member_no,name\n9001,山田 太郎\n' > "$admin/members.csv"
as_karamail() { (cd "$admin" && runuser -u karamail -- karamail --config /etc/karamail/karamail.toml "$@"); }
check "members import from another folder, with the postcards PDF (the package's fonts)" as_karamail members import members.csv --postcards postcards.csv --pdf postcards.pdf
check "the PDF holds the postcard" sh -c "pdftotext '$admin/postcards.pdf' - | grep -q 'への登録について'"
check "it went into the daemon's database" sh -c "cd '$admin' && runuser -u karamail -- karamail --config /etc/karamail/karamail.toml members list 2>&1 | grep -q 9001"
check "qr" as_karamail qr --out-dir "$admin/qr"
check "notices add" as_karamail notices add --title お知らせ --body 本文
check "check-config" as_karamail check-config
check "no database was made in the admin's folder" test ! -e "$admin/karamail-data"
check "systemd-analyze verify on the backup unit and timer" sh -c "! command -v systemd-analyze >/dev/null || systemd-analyze verify /lib/systemd/system/karamail-backup.service /lib/systemd/system/karamail-backup.timer"
backup_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/karamail-backup.service | sed 's/%%/%/g')
rm -f /var/backups/karamail/karamail-*.db   # an earlier run's on this machine
check "the backup unit's command, as karamail, beside the running daemon" sh -c "cd / && KARAMAIL_CONFIG=/etc/karamail/karamail.toml runuser -u karamail -- $backup_start"
backup=$(ls -t /var/backups/karamail/karamail-*.db 2>/dev/null | head -n 1 || true)
check "a backup 0600 karamail in /var/backups/karamail" test "$(stat -c '%a %U' "$backup")" = "600 karamail"
check "restore refuses while the daemon runs" sh -c "runuser -u karamail -- karamail --config /etc/karamail/karamail.toml restore '$backup' 2>&1 | grep -q 'is in use'"

# A member signs up against the installed daemon.
ADMIN="$admin" python3 - <<'PY'
import csv, email, email.policy, glob, http.cookiejar, os, re, smtplib, sys, time, urllib.parse, urllib.request
admin = os.environ["ADMIN"]
with smtplib.SMTP("127.0.0.1", 2525, timeout=30) as mx:
    mx.sendmail("member@example.net", ["kc@localhost"], b"From: member@example.net\r\nSubject: \r\n\r\n")
deadline, mail = time.time() + 30, None
while time.time() < deadline and mail is None:
    for path in glob.glob("/var/lib/karamail/outbox/*.eml"):
        mail = email.message_from_binary_file(open(path, "rb"), policy=email.policy.default)
    time.sleep(0.2)
if mail is None:
    sys.exit("no reply in /var/lib/karamail/outbox")
link = re.search(r"http://\S+/signup/link/\S+", mail.get_content()).group(0)
row = list(csv.reader(open(f"{admin}/postcards.csv", encoding="utf-8-sig")))[1]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
def fetch(url, fields=None, page=None):
    data = None
    if fields is not None:
        fields = dict(fields, csrf=re.search(r'name="csrf" value="([^"]+)"', page).group(1))
        data = urllib.parse.urlencode(fields).encode()
    return opener.open(url if url.startswith("http") else f"http://127.0.0.1:8080{url}", data).read().decode()
page = fetch(link)
page = fetch("/signup/verify", {"temp_login_id": row[2], "temp_password": row[3]}, page)
page = fetch("/signup/profile", {"login_id": "yamadataro", "password": "kenpo123", "password_confirm": "kenpo123",
                                 "email": "member@example.net", "nickname": "たろう"}, page)
sys.exit(0 if "利用者情報登録完了" in page else "no 利用者情報登録完了")
PY
check "a member signed up against the installed daemon" true
echo "     install to first sign-up: $(python3 -c "import sys; print(round($(date +%s.%N) - $start, 1))") s"
kill $daemon; wait $daemon 2>/dev/null || true

# Upgrade over itself: the sysadmin's config edit and the data stay.
sed -i 's/^name = .*/name = "テスト健保ポータル"/' /etc/karamail/karamail.toml
apt-get install -y -q --reinstall -o Dpkg::Options::=--force-confold "./$deb" >/dev/null
check "upgrade keeps the config edit" grep -q 'テスト健保ポータル' /etc/karamail/karamail.toml
check "upgrade keeps the data" sh -c "runuser -u karamail -- karamail --config /etc/karamail/karamail.toml members list 2>&1 | grep -q registered"

# Remove: the binary goes; config and data stay (purge deletes them).
apt-get remove -y -q karamail >/dev/null
check "remove takes the binary" test ! -e /usr/bin/karamail
check "remove keeps config and data" test -f /etc/karamail/karamail.toml -a -f /var/lib/karamail/karamail.db
apt-get purge -y -q karamail >/dev/null
echo "package e2e: $passed passed, 0 failed"
