#!/usr/bin/env bash
# How long `karamail members import` takes for a large society: 100,000 members (or
# the count given), from a CSV such as the society's system exports, into a new
# database, postcards file included. Prints the seconds, members per second and peak
# memory, then checks that every member and postcard is there.
#   bash bench/import-scale.sh [count]
set -euo pipefail
count=${1:-100000}
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$count" > "$work/members.csv" <<'PY'
import sys
print("member_no,name")
for n in range(int(sys.argv[1])):
    print(f"{1000000 + n},組合員 {n:06d}")
PY
cd "$work"
start=$(date +%s.%N)
/usr/bin/time -f "%M" -o rss.txt "$OLDPWD/target/release/karamail" --create-database \
    members import members.csv --postcards postcards.csv 2>import.log | tail -1
end=$(date +%s.%N)
rows=$(($(wc -l < postcards.csv) - 1))
members=$(sqlite3 karamail-data/karamail.db "SELECT count(*) FROM members" 2>/dev/null || python3 -c "import sqlite3; print(sqlite3.connect('karamail-data/karamail.db').execute('SELECT count(*) FROM members').fetchone()[0])")
python3 - "$start" "$end" "$count" "$rows" "$members" "$(cat rss.txt)" <<'PY'
import sys
start, end, count, rows, members, rss = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
took = end - start
print(f"import of {count} members: {took:.1f} s ({count / took:,.0f} members/s), peak RSS {rss / 1024:.0f} MB")
print(f"postcards written: {rows}, members stored: {members}")
if rows != count or members != count:
    sys.exit("FAIL: not every member was imported")
PY
