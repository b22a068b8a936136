#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with Rust:
#   ./scripts/test.sh
# Installs what is missing, then runs every test of every crate (debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
cargo test --workspace --locked "$@"
