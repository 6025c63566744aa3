#!/usr/bin/env bash
# How long printing the postcards takes for a large society: 10,000 members (or the
# count given) imported with `--pdf`, one はがき a page, then the same CSV again as A4
# sheets of four. Prints the seconds, cards per second, the PDF's size and peak memory,
# then checks every card is in the PDF (pdfinfo's page count; pdftotext finds the last
# member's credentials). Target (issue #14): 10,000 postcards in under a minute.
#   bash bench/postcards.sh [count]
set -euo pipefail
count=${1:-10000}
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin="$PWD/target/release/karamail"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$count" > "$work/members.csv" <<'PY'
import sys
print("member_no,name")
for n in range(int(sys.argv[1])):
    print(f"{1000000 + n},組合員 花子{n:06d}")
PY
cd "$work"
measure() { # measure LABEL PDF SHEETS-PER-PAGE command…
    local label=$1 pdf=$2 per_page=$3; shift 3
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -f "%M" -o rss.txt "$@" >/dev/null 2>run.log
    end=$(date +%s.%N)
    local pages size
    pages=$(pdfinfo "$pdf" | sed -n 's/^Pages: *//p')
    size=$(stat -c %s "$pdf")
    python3 - "$label" "$start" "$end" "$count" "$pages" "$per_page" "$size" "$(cat rss.txt)" <<'PY'
import sys
label, start, end, count, pages, per_page, size, rss = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
took = end - start
print(f"{label}: {count} cards in {took:.1f} s ({count / took:,.0f} cards/s), {pages} pages, {size / 1e6:.1f} MB, peak RSS {rss / 1024:.0f} MB")
if pages != -(-count // per_page):
    sys.exit(f"FAIL: {pages} pages for {count} cards")
if took >= 60:
    sys.exit("FAIL: over a minute")
PY
}
measure "members import --pdf (はがき)" postcards.pdf 1 \
    "$bin" --create-database members import members.csv --postcards postcards.csv --pdf postcards.pdf
measure "postcards print --sheet a4" a4.pdf 4 "$bin" postcards print postcards.csv --out a4.pdf --sheet a4
last=$(tail -1 postcards.csv | cut -d, -f3)
pdftotext -f "$count" -l "$count" postcards.pdf - | grep -q "$last" || { echo "FAIL: the last card lacks $last"; exit 1; }
echo "the last card holds its member's temporary ID ($last)"
