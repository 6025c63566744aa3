#!/usr/bin/env bash
# The whole test suite, real browsers included, on a fresh Debian machine: installs what
# the tests need when it is missing (Chromium + chromedriver, Firefox ESR + geckodriver,
# Japanese fonts for legible screenshots and the postcards, poppler, axe-core, dkimpy), then `cargo test`.
# Screenshots of every step land in target/browser-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v firefox-esr >/dev/null 2>&1 || need_apt+=(firefox-esr)
[ -d /usr/share/fonts/opentype/noto ] || need_apt+=(fonts-noto-cjk)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# The postcards: the fonts they are set in, and poppler to read the PDF back.
[ -f /usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf ] || need_apt+=(fonts-ipaexfont-gothic)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ] || need_apt+=(fonts-dejavu-core)
command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi
if ! command -v geckodriver >/dev/null 2>&1; then
    cargo install geckodriver --locked
fi
# dkimpy: the independent DKIM verifier of tests/mail_audit.py.
python3 -c "import dkim" 2>/dev/null || python3 -m pip install --quiet dkimpy
if [ ! -f tests/browser/node_modules/axe-core/axe.min.js ]; then
    npm ci --prefix tests/browser --no-audit --no-fund
fi
chromium --version; chromedriver --version; firefox-esr --version; geckodriver --version | sed -n 1p
rm -rf target/browser-screenshots
cargo test --locked "$@"
echo "screenshots: $(find target/browser-screenshots -name '*.png' | wc -l) in target/browser-screenshots/"
