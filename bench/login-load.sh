#!/usr/bin/env bash
# Logins under load: N clients (200 by default, then 4) each logging in again and
# again with unknown IDs — as a botnet behind the proxy would — against the release
# binary, for S seconds. Prints, from one run: the argon2id limit of this machine
# (`karamail hash-rate`), logins checked per second and their ratio to that limit,
# 503s, idle RSS and peak RSS (VmHWM from /proc).
#   bash bench/login-load.sh [seconds]
set -euo pipefail
seconds=${1:-20}
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
binary=$PWD/target/release/karamail
work=$(mktemp -d)
cleanup() { [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
cat > "$work/karamail.toml" <<CONF
[smtp]
listen = "127.0.0.1:0"
intake_addresses = ["kc@example.jp"]
[http]
listen = "127.0.0.1:$port"
metrics_listen = ""
[limits]
web_requests_per_ip_minute = 1000000
secret_entries_per_ip_hour = 1000000
CONF
limit=$("$binary" hash-rate --seconds 5)
echo "$limit"
(cd "$work" && exec "$binary" --config karamail.toml serve 2>"$work/log") &
daemon=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
sleep 1
idle=$(awk '/VmRSS/ {print $2}' "/proc/$daemon/status")
for clients in 200 4; do
    python3 - "$port" "$clients" "$seconds" "$limit" "$daemon" "$idle" <<'PY'
import http.client, re, sys, threading, time, urllib.parse
port, clients, seconds, limit, pid, idle = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
rate_limit = float(re.search(r"= ([\d.]+)/s", limit).group(1))
counts = {"checked": 0, "busy": 0, "other": 0}
lock = threading.Lock()
start = time.time() + 2
end = start + seconds
def client(n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/")
    page = conn.getresponse()
    body = page.read().decode()
    cookie = page.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf" value="([^"]+)"', body).group(1)
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    while time.time() < start:
        time.sleep(0.01)
    tries = 0
    while time.time() < end:
        # A new unknown ID each time: a locked ID is answered without a check.
        tries += 1
        form = urllib.parse.urlencode({"csrf": token, "login_id": f"nobody{n:04d}x{tries}", "password": "wrong123"})
        conn.request("POST", "/login", form, headers)
        answer = conn.getresponse()
        answer.read()
        kind = {303: "checked", 401: "checked", 503: "busy"}.get(answer.status, "other")
        with lock:
            counts[kind] += 1
        if answer.status == 503:
            time.sleep(0.05)
threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
status = {l.split(":")[0]: l.split()[1] for l in open(f"/proc/{pid}/status") if ":" in l and len(l.split()) > 1}
peak = int(status["VmHWM"])
print(f"    threads now {status['Threads']}", file=sys.stderr)
rate = counts["checked"] / seconds
print(f"{clients:>3} clients: {rate:6.1f} logins checked/s = {rate / rate_limit:.2f} x the argon2id limit ({rate_limit:.1f}/s); "
      f"{counts['busy']} answered 503, {counts['other']} other; idle RSS {idle / 1024:.1f} MB, peak RSS so far {peak / 1024:.1f} MB")
PY
done
