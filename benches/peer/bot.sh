#!/usr/bin/env bash
# The bot command for the shared harness (BOT_CMD): madoguchi `serve` with
# benches/peer/config.toml (emulator mode on 127.0.0.1:3978, typing
# indicators off, the peer's dialog) on a fresh durable SQLite file.
# `exec` keeps the PID the harness measures (CPU, RSS) that of madoguchi.
#   MADOGUCHI_BIN   the binary (default: target/release/madoguchi)
#   PEER_DB_DIR     where the database goes (default: a new temp folder)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${MADOGUCHI_BIN:-$here/../../target/release/madoguchi}"
dir="${PEER_DB_DIR:-$(mktemp -d /tmp/madoguchi-peer.XXXXXX)}"
export MADOGUCHI__STORAGE__DATABASE="${MADOGUCHI__STORAGE__DATABASE:-$dir/peer.db}"
export RUST_LOG="${RUST_LOG:-warn}"
exec "$bin" --config "$here/config.toml" serve
