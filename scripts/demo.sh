#!/usr/bin/env bash
# The main job, from a fresh Debian machine with Rust:
#   ./scripts/demo.sh
# Installs what is missing, builds weightwatch (profile `demo`: optimised but
# quick to build), replays the bundled fixtures through the sensor and the
# analyzer into a fresh embedded database, and serves the dashboard.
# Extra arguments go to `weightwatch demo` (e.g. --listen 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --profile demo --locked --bin weightwatch
exec ./target/demo/weightwatch demo "$@"
