#!/usr/bin/env bash
# Installs what weightwatch needs on a fresh Debian machine that has Rust:
# libpcap (build), and for the tests chromium + chromedriver (browser test),
# tcpdump, curl and iproute2 (live-capture test), tcpflow (benchmark only).
# Idempotent: installs only what is missing.
set -euo pipefail

want=(libpcap-dev pkg-config)
if [[ "${1:-}" == "--tests" ]]; then
  want+=(chromium chromium-driver tcpdump curl iproute2 python3)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$c" >/dev/null 2>&1 || echo "setup: cargo $c is missing and could not be installed" >&2
  fi
done
