#!/usr/bin/env bash
# Ingest benchmark: 1,000 simulated 8-GPU nodes sending reports in batches to a
# real `jazari serve` on loopback with a SQLite store; prints reports/s and
# batch latency percentiles (the client runs on the same machine and shares
# its CPUs).
#
#   bench/ingest.sh [jazari sim options; default: --nodes 1000 --gpus-per-node 8 --batch 20 --threads 16 --duration 20s]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p jazari
J=target/release/jazari
T=$(mktemp -d)
trap 'kill $SERVE 2>/dev/null || true; rm -rf "$T"' EXIT
CFG=config/jazari.example.toml
$J token add --node '*' --config $CFG --store "$T/store.sqlite" >"$T/node.token" 2>/dev/null
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
JAZARI_LOG=warn $J serve --config $CFG --store "$T/store.sqlite" --listen 127.0.0.1:$PORT &
SERVE=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
if [ $# = 0 ]; then set -- --nodes 1000 --gpus-per-node 8 --batch 20 --threads 16 --duration 20s; fi
$J sim --load --url http://127.0.0.1:$PORT --token-file "$T/node.token" "$@"
echo "store size        $(du -h "$T/store.sqlite" | cut -f1) (+ WAL $(du -h "$T/store.sqlite-wal" 2>/dev/null | cut -f1))"
