#!/usr/bin/env bash
# SMTP intake: karamail against smtp-sink (Postfix's test server: the protocol's speed
# limit on this machine) and aiosmtpd (Python asyncio, stores nothing), each driven by
# the same client (examples/smtp_load.rs) in the same run: empty mails, one connection
# per mail, each with its own sender and from many loopback addresses. karamail stores
# every mail before its 250 and answers each with an .eml (the embedded default).
#
# Prints, for each number of parallel clients, the rate of each server, the ratios, and
# karamail's reply latency (from each 250 to its .eml), and the CPU time per mail of
# karamail, smtp-sink and the client (what the 2 cores are spent on); then that latency at a steady
# 1,000 mails/s; writes the figures to bench/results/intake.tsv and the plot to
# bench/results/intake.svg.
#
#   bash bench/smtp-throughput.sh
#   CLIENTS="1 20" MESSAGES=2000 bash bench/smtp-throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-"1 5 10 20 50 100"}
MESSAGES=${MESSAGES:-5000}

if ! command -v smtp-sink >/dev/null 2>&1 && [ ! -x /usr/sbin/smtp-sink ]; then
    export DEBIAN_FRONTEND=noninteractive
    # "No configuration": the tools without configuring or starting a Postfix.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -q
    apt-get install -y -q --no-install-recommends postfix >/dev/null
fi
SMTP_SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
python3 -c 'import aiosmtpd' 2>/dev/null || pip install -q aiosmtpd

cargo build --release --locked -q
cargo build --release --locked -q --example smtp_load --example intake_plot
load=$PWD/target/release/examples/smtp_load
work=$(mktemp -d)
results=bench/results
mkdir -p "$results"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KM_SMTP=$(free_port); KM_HTTP=$(free_port); SINK=$(free_port); AIO=$(free_port)

# The sign-up limits are raised so that every mail costs what an answered sign-up costs
# (stored, queued, a link minted, an .eml written); the rest are the defaults.
cat > "$work/karamail.toml" <<TOML
[smtp]
listen = "127.0.0.1:$KM_SMTP"
intake_addresses = ["kc@localhost"]
trusted_relays = []
# Every client address here is on the one loopback network. The early-talker pause
# (300ms by default: a client that talks before the greeting is no MTA) is a wait per
# connection, not work; at its least (1ms), so the engine is measured, as smtp-sink
# has none.
max_connections_per_network = 1000
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
RUST_LOG=warn ./target/release/karamail --config "$work/karamail.toml" --create-database serve 2>"$work/karamail.log" &
declare -A pid=([karamail]=$!)
# smtp-sink refuses to run as root without a user to switch to.
"$SMTP_SINK" -u nobody -c "127.0.0.1:$SINK" 1024 >/dev/null 2>"$work/sink.log" &
pid[smtp-sink]=$!
python3 bench/aiosmtpd_server.py "$AIO" 2>"$work/aiosmtpd.log" &
pid[aiosmtpd]=$!
wait_for_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2; cat "$work"/*.log >&2; exit 1
}
for port in "$KM_SMTP" "$SINK" "$AIO"; do wait_for_port "$port"; done

field() { # key line -> value
    tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}
# CPU time of a process and all its threads so far, in clock ticks (user + system).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick_us=$(( 1000000 / $(getconf CLK_TCK) ))

# A fresh database grows its files during the first few thousand mails; measured
# after that, as a running service would be.
"$load" --server "127.0.0.1:$KM_SMTP" --clients 20 --messages 3000 --tag warm --eml-dir "$work/outbox" >/dev/null

tsv=$results/intake.tsv
printf 'server\tclients\trate\tsession_p50_ms\tsession_p99_ms\treply_p50_ms\treply_p99_ms\tserver_cpu_us\tclient_cpu_us\n' > "$tsv"
printf '%8s %10s %10s %10s %9s %9s %14s %14s %24s %24s\n' clients karamail smtp-sink aiosmtpd "/sink" "/aiosmtpd" "reply p50 ms" "reply p99 ms" "CPU µs/mail: karamail+client" "smtp-sink+client"
for clients in $CLIENTS; do
    # Fewer mails for a few clients, so each point takes seconds, not minutes.
    messages=$(( clients * 300 < MESSAGES ? clients * 300 : MESSAGES ))
    messages=$(( messages < 600 ? 600 : messages ))
    declare -A rate=() server_us=() client_us=()
    for server in smtp-sink aiosmtpd karamail; do
        case $server in
            smtp-sink) port=$SINK; extra=() ;;
            aiosmtpd) port=$AIO; extra=() ;;
            karamail) port=$KM_SMTP; extra=(--eml-dir "$work/outbox") ;;
        esac
        # CPU per mail, the server's and the client's: what the 2 cores are spent on.
        before=$(ticks "${pid[$server]}")
        line=$("$load" --server "127.0.0.1:$port" --clients "$clients" --messages "$messages" --tag "c$clients" "${extra[@]}")
        rate[$server]=$(field rate "$line")
        # karamail's replies may still be written after the client ends: its CPU is
        # read once every .eml is there (the client waits for them).
        server_us[$server]=$(( ($(ticks "${pid[$server]}") - before) * tick_us / messages ))
        client_us[$server]=$(field client_cpu_us "$line")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$clients" "${rate[$server]}" \
            "$(field session_p50_ms "$line")" "$(field session_p99_ms "$line")" \
            "$(field reply_p50_ms "$line")" "$(field reply_p99_ms "$line")" \
            "${server_us[$server]}" "${client_us[$server]}" >> "$tsv"
        if [ "$server" = karamail ]; then
            missing=$(field replies_missing "$line")
            [ "$missing" = 0 ] || echo "karamail: $missing replies missing after two minutes" >&2
            reply50=$(field reply_p50_ms "$line"); reply99=$(field reply_p99_ms "$line")
        fi
    done
    python3 -c 'import sys; c, k, s, a, r50, r99, kc, sc = sys.argv[1:]; k, s, a = float(k), float(s), float(a); print(f"{c:>8} {k:10,.0f} {s:10,.0f} {a:10,.0f} {k/s:9.2f} {k/a:9.2f} {r50:>14} {r99:>14} {kc:>24} {sc:>24}")' \
        "$clients" "${rate[karamail]}" "${rate[smtp-sink]}" "${rate[aiosmtpd]}" "$reply50" "$reply99" \
        "${server_us[karamail]}+${client_us[karamail]}" "${server_us[smtp-sink]}+${client_us[smtp-sink]}"
done

echo
echo "karamail at a steady 1,000 mails/s (10,000 mails, up to 100 clients):"
line=$("$load" --server "127.0.0.1:$KM_SMTP" --clients 100 --messages 10000 --rate 1000 --tag steady --eml-dir "$work/outbox")
echo "  $line"
echo "  reply latency from the 250 to the .eml: p50 $(field reply_p50_ms "$line") ms, p99 $(field reply_p99_ms "$line") ms (negative: the .eml was on disk before the client read its 250)"

./target/release/examples/intake_plot "$tsv" "$results/intake.svg"
echo
echo "figures: $tsv; plot: $results/intake.svg"
