#!/usr/bin/env bash
# Runs every test of care against a real local Kafka broker:
# fetch (Kafka jars + crates) → build → start broker → cargo test → stop.
# Prints how long each phase took. The broker is stopped on exit only if
# this script started it. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

[[ -f "$HOME/.cargo/env" ]] && source "$HOME/.cargo/env"
command -v cargo >/dev/null || { echo "test.sh: cargo not found; install Rust from rustup" >&2; exit 1; }

phase_start=$SECONDS
phase() { echo "test.sh: $1 took $((SECONDS - phase_start))s" >&2; phase_start=$SECONDS; }

bash deploy/local/kafka.sh fetch
cargo fetch --locked
phase "fetch (Kafka jars, crates)"

cargo test --locked --workspace --no-run
phase "build"

started_here=0
if ! bash deploy/local/kafka.sh status >/dev/null 2>&1; then
  started_here=1
fi
trap '[[ $started_here == 1 ]] && bash deploy/local/kafka.sh stop' EXIT
CARE_TEST_BROKERS="$(bash deploy/local/kafka.sh start)"
export CARE_TEST_BROKERS
phase "broker start"

status=0
cargo test --locked --workspace "$@" || status=$?
phase "tests"
exit $status
