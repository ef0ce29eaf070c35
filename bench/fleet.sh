#!/usr/bin/env bash
# meshd at fleet scale: for each (S services, N proxies) a fresh meshd on loopback, then the
# fleet simulator (meshd/examples/fleet.rs): N simulated proxies connecting at once, then one
# VirtualService changed, every VirtualService changed, one endpoint added; for each, the time
# until every proxy had it (p50/p99/max), what was pushed, and meshd's CPU seconds and RSS.
#
#   bench/fleet.sh                      (S,N) = 100,100 1000,100 1000,1000 1000,2000, and 1000,2000 in 1000 namespaces
#   bench/fleet.sh 100,100 1000,500     chosen sizes
#   bench/fleet.sh 1000,1000,1000       S,N,M: services spread over M namespaces (default 10)
#   MESHD=/path/to/old/mesh bench/fleet.sh 100,100     another build's meshd (A/B)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(100,100 1000,100 1000,1000 1000,2000 1000,2000,1000)
cargo build --release --bin mesh --bin meshd --example fleet -p meshd -p mesh-cli >&2
MESH=${MESHD:-$PWD/target/release/mesh}
FLEET=$PWD/target/release/examples/fleet
# Each simulated proxy holds one connection; meshd holds one per proxy.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
for size in "${SIZES[@]}"; do
  export MESH_HOME
  MESH_HOME=$(mktemp -d)
  trap '"$MESH" uninstall -y >/dev/null 2>&1 || true; rm -rf "$MESH_HOME"' EXIT
  "$MESH" install -y --set meshd.listen=127.0.0.1:0 >/dev/null
  echo "== S,N = $size"
  IFS=, read -r S N M <<<"$size"
  timeout 1800 "$FLEET" --home "$MESH_HOME" --services "$S" --proxies "$N" --namespaces "${M:-10}" || echo "(failed or timed out)"
  "$MESH" uninstall -y >/dev/null 2>&1 || true
  rm -rf "$MESH_HOME"
done
