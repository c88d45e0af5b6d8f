#!/usr/bin/env bash
# Ingest on each store, same load: SQLite (one collector), PostgreSQL (one
# collector), PostgreSQL shared by two collectors (the load's connections
# spread over both, as behind a load balancer). Per row: reports/s, batch
# latency p50/p99, CPU of the collectors and of PostgreSQL's processes per
# report, and the collectors' peak RSS. The load generator runs on the same
# machine and shares its CPUs. Needs Debian's postgresql (scripts/postgres-up).
#
#   bench/ingest-stores.sh [jazari sim options; default: --nodes 1000 --gpus-per-node 8 --batch 20 --threads 16 --duration 20s]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p jazari
J=$PWD/target/release/jazari
T=$(mktemp -d); chmod 755 "$T"
export STATE=$T/pg
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; scripts/postgres-up --stop; rm -rf "$T"' EXIT
eval "$(scripts/postgres-up)"
BASE=$JAZARI_TEST_POSTGRES
CFG=config/jazari.example.toml
[ $# = 0 ] && set -- --nodes 1000 --gpus-per-node 8 --batch 20 --threads 16 --duration 20s
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
ticks() { # CPU ticks (user + system) of the given pids, children included
  local t=0; for p in "$@"; do [ -r /proc/$p/stat ] && t=$((t + $(awk '{print $14+$15+$16+$17}' /proc/$p/stat))); done; echo $t; }
pg_pids() { pgrep -u "$(stat -c %U "$STATE/data")" -f "postgres" || true; }
HZ=$(getconf CLK_TCK)
printf '%-22s %10s %9s %9s %16s %16s %12s\n' store reports/s p50_ms p99_ms collector_cpu_us pg_cpu_us rss_peak_mib
row() { # name store collectors
  local name=$1 store=$2 n=$3 urls=() pids=(); shift 3
  $J token add --node '*' --config $CFG --store "$store" >"$T/node.token" 2>/dev/null
  for _ in $(seq "$n"); do
    local port; port=$(free_port)
    JAZARI_LOG=warn $J serve --config $CFG --store "$store" --listen 127.0.0.1:$port 2>>"$T/serve.log" & pids+=($!); PIDS+=($!)
    urls+=("http://127.0.0.1:$port")
  done
  for u in "${urls[@]}"; do for _ in $(seq 100); do curl -sf "$u/healthz" >/dev/null && break; sleep 0.1; done; done
  local also=(); for u in "${urls[@]:1}"; do also+=(--also-url "$u"); done
  local c0 p0; c0=$(ticks "${pids[@]}"); p0=$(ticks $(pg_pids))
  $J sim --load --url "${urls[0]}" "${also[@]}" --token-file "$T/node.token" "$@" >"$T/out" 2>/dev/null || true
  local c1 p1; c1=$(ticks "${pids[@]}"); p1=$(ticks $(pg_pids))
  local sent rate p50 p99 rss=0
  sent=$(awk '/^reports accepted/{print $3}' "$T/out"); rate=$(awk '/^reports\/s/{print $2}' "$T/out")
  p50=$(awk '/^batch latency/{print $5}' "$T/out"); p99=$(awk '/^batch latency/{print $7}' "$T/out")
  for p in "${pids[@]}"; do rss=$((rss + $(awk '/VmHWM/{print $2}' /proc/$p/status))); done
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  grep -q failed "$T/out" && grep -v '(0 failed)' "$T/out" | grep -q failed && echo "  ($(grep failed "$T/out"))"
  printf '%-22s %10s %9s %9s %16s %16s %12s\n' "$name" "$rate" "$p50" "$p99" \
    "$(( (c1 - c0) * 1000000 / HZ / (sent > 0 ? sent : 1) ))" "$(( (p1 - p0) * 1000000 / HZ / (sent > 0 ? sent : 1) ))" "$((rss / 1024))"
}
row sqlite "$T/store.sqlite" 1 "$@"
psql() { "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/psql" "$@"; }
psql -q "$BASE/postgres" -c 'CREATE DATABASE bench1' && row postgres "$BASE/bench1" 1 "$@"
psql -q "$BASE/postgres" -c 'CREATE DATABASE bench2' && row "postgres, 2 collectors" "$BASE/bench2" 2 "$@"
echo "(CPU per report accepted, in microseconds; rss_peak: the collectors' VmHWM summed)"
if grep -q ERROR "$T/serve.log"; then echo "collector errors:"; grep ERROR "$T/serve.log" | sort | uniq -c | sort -rn | head -5; fi
