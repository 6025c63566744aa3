#!/usr/bin/env bash
# Pages under load: the login page and a member's top page (session, notices, records)
# from karamail, and the very same bytes from a bare hyper server (examples/bare_hyper.rs)
# in the same run, each with wrk (2 threads, 50 connections, keep-alive). Prints
# requests/second and karamail's ratio to bare hyper: medians of three rounds taken in turns.
#   bash bench/pages.sh [seconds]
set -euo pipefail
seconds=${1:-10}
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
fi
cargo build --release --locked --quiet
cargo build --release --locked --quiet --example bare_hyper
binary=$PWD/target/release/karamail
bare=$PWD/target/release/examples/bare_hyper
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KM_HTTP=$(free_port); BARE=$(free_port)
cat > "$work/karamail.toml" <<CONF
[smtp]
listen = "127.0.0.1:0"
intake_addresses = ["kc@example.jp"]
[http]
listen = "127.0.0.1:$KM_HTTP"
metrics_listen = ""
[limits]
web_requests_per_ip_minute = 100000000
CONF
printf 'member_no,name\n1001,山田 太郎\n' > "$work/members.csv"
(cd "$work" && "$binary" --config karamail.toml --create-database members import members.csv --postcards postcards.csv >/dev/null 2>&1)
(cd "$work" && exec "$binary" --config karamail.toml serve 2>"$work/log") &
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$KM_HTTP") 2>/dev/null && break; sleep 0.1; done

# A registered member with a live session, made as karamail makes them: the session id's
# keyed hash under the server key, a notice and two records for the top page.
cookie=$(python3 - "$work" <<'PY'
import hashlib, secrets, sqlite3, sys, time
work = sys.argv[1]
key = bytes.fromhex(open(f"{work}/karamail-data/karamail.key").read().strip())
session = secrets.token_hex(32)
id_hash = hashlib.blake2b(b"session\0" + session.encode(), key=key, digest_size=32).digest()
now = int(time.time())
db = sqlite3.connect(f"{work}/karamail-data/karamail.db")
db.execute("UPDATE members SET login_id = 'benchmember', nickname = 'ベンチ', registered_at = ?, temp_password_hash = NULL WHERE member_no = '1001'", (now,))
member = db.execute("SELECT id FROM members WHERE member_no = '1001'").fetchone()[0]
db.execute("INSERT INTO sessions (id_hash, kind, member_id, created_at, expires_at, last_seen_at) VALUES (?, 'member', ?, ?, ?, ?)", (id_hash, member, now, now + 36000, now))
db.commit()
print(f"km_session={session}")
PY
)
"$binary" --config "$work/karamail.toml" notices add --title 健診のお知らせ --body 今年度の健診が始まります >/dev/null 2>&1 || true
curl -s "http://127.0.0.1:$KM_HTTP/" > "$work/login.html"
curl -s -H "Cookie: $cookie" "http://127.0.0.1:$KM_HTTP/home" > "$work/home.html"
grep -q "ベンチさん" "$work/home.html" || { echo "the top page did not come: $(head -c 300 "$work/home.html")"; exit 1; }

rate() { wrk -t2 -c50 -d"${seconds}s" "$@" 2>/dev/null | awk '/Requests\/sec/ {print $2}'; }
for page in login home; do
    path=/; header=()
    if [ "$page" = home ]; then path=/home; header=(-H "Cookie: $cookie"); fi
    "$bare" "127.0.0.1:$BARE" "$work/$page.html" &
    bare_pid=$!
    sleep 0.3
    # Warmed up first: the first seconds of a run measure connections being made.
    seconds=2 rate "${header[@]}" "http://127.0.0.1:$KM_HTTP$path" >/dev/null
    seconds=2 rate "http://127.0.0.1:$BARE$path" >/dev/null
    # Taken in turns, three rounds each, and the medians compared: the machine's pace
    # drifts by a fifth between runs, and a drift should not fall on one server alone.
    ours=(); theirs=()
    for _ in 1 2 3; do
        ours+=("$(rate "${header[@]}" "http://127.0.0.1:$KM_HTTP$path")")
        theirs+=("$(rate "http://127.0.0.1:$BARE$path")")
    done
    kill $bare_pid; wait $bare_pid 2>/dev/null || true
    python3 - "$page" "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
page, ours, theirs = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
o, t = statistics.median(ours), statistics.median(theirs)
rounds = " ".join(f"{a / b:.2f}" for a, b in zip(ours, theirs))
print(f"{page:>5} page: karamail {o:9,.0f} req/s, bare hyper {t:9,.0f} req/s, ratio {o / t:.2f} (medians of 3; each round: {rounds})")
PY
done
