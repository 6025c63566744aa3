#!/usr/bin/env bash
# Intake throughput: 20,000 empty mails over 20 parallel connections, one connection
# per mail (Postfix's smtp-source), to karamail and, in the same run, to smtp-sink
# (the protocol's speed limit on this machine). Prints messages/second and the ratio.
#
#   bash bench/smtp-throughput.sh            # 20000 mails, 20 sessions
#   MESSAGES=2000 SESSIONS=10 bash bench/smtp-throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-20}

if ! command -v smtp-source >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    # "No configuration": install the tools without configuring or starting a Postfix.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -q
    apt-get install -y -q --no-install-recommends postfix >/dev/null
fi
SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
SMTP_SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)

cargo build --release --locked -q
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KM_SMTP=$(free_port); KM_HTTP=$(free_port); SINK=$(free_port)

# Every mail is answered: limits off, so each one costs what a real sign-up costs
# (stored, queued, a link minted, an .eml written).
cat > "$work/karamail.toml" <<TOML
[smtp]
listen = "127.0.0.1:$KM_SMTP"
intake_addresses = ["kc@localhost"]
trusted_relays = []
# One client address opens every connection here, and the early-talker pause (300ms by
# default) would only measure itself: both out of the way for a protocol benchmark.
max_connections_per_ip = 1000
greeting_delay = "1ms"
[http]
listen = "127.0.0.1:$KM_HTTP"
metrics_listen = ""
[database]
path = "$work/karamail.db"
[mail]
outbox_dir = "$work/outbox"
[limits]
signup_per_address_hour = 1000000
signup_per_address_day = 1000000
signup_per_ip_hour = 1000000
signup_per_ip_day = 1000000
TOML
RUST_LOG=warn ./target/release/karamail --config "$work/karamail.toml" serve 2>"$work/karamail.log" &
# smtp-sink refuses to run as root without a user to switch to.
"$SMTP_SINK" -u nobody -c "127.0.0.1:$SINK" 256 >/dev/null 2>"$work/sink.log" &
wait_for_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2; cat "$work"/*.log >&2; exit 1
}
wait_for_port "$KM_SMTP"
wait_for_port "$SINK"

measure() { # name port -> prints messages/second
    local start end
    start=$(date +%s.%N)
    "$SMTP_SOURCE" -s "$SESSIONS" -m "$MESSAGES" -f member@example.net -t kc@localhost "127.0.0.1:$2"
    end=$(date +%s.%N)
    python3 -c "print(f'{$MESSAGES / ($end - $start):.0f}')"
}

query() { # SQL -> the first column of the first row
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$work/karamail.db" "$1"
}

sink_rate=$(measure smtp-sink "$SINK")
intake_start=$(date +%s.%N)
karamail_rate=$(measure karamail "$KM_SMTP")
stored=$(query "select count(*) from signup_requests")
# The replies: wait until the outbox is empty (every reply written as an .eml).
while [ "$(query "select count(*) from outbox where status = 'queued'")" != 0 ]; do sleep 0.2; done
drained=$(date +%s.%N)
sent=$(query "select count(*) from outbox where status = 'sent'")

echo "messages: $MESSAGES over $SESSIONS parallel connections, one connection per mail"
echo "smtp-sink: $sink_rate msg/s"
echo "karamail:  $karamail_rate msg/s accepted ($stored stored)"
python3 -c "print(f'ratio karamail/smtp-sink: {$karamail_rate / $sink_rate:.3f}')"
python3 -c "print(f'replies:   $sent sent, all within {$drained - $intake_start:.1f} s of the first mail ({$sent / ($drained - $intake_start):.0f} replies/s end to end)')"
