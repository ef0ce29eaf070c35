#!/usr/bin/env bash
# Direct vs through the mesh, side by side in the same run, on loopback.
#
#   client --> nginx                                       (direct, the baseline)
#   client --> outbound proxy --> inbound proxy --> nginx  (through the mesh: two hops)
#
# Backend: nginx, one worker, a 1024-byte file, access log off. Load: wrk, alternating direct
# and mesh runs, three of each; medians reported with the ratio to direct. Also the proxies'
# CPU seconds per 1000 requests (utime+stime from /proc) and their RSS at the end. Then latency
# at a fixed 1000 req/s over 4 connections (open loop, latency-corrected), and the proxies' CPU
# at that rate.
#
# Usage: bench/run.sh [SECONDS] [CONNECTIONS]    (defaults 10 and 16; one wrk thread)
# Needs wrk and nginx (`apt-get install -y wrk nginx`); builds `mesh` and `proxy` in release mode.
# Environment: ROUNDS (3), MESH_PROXY_WORKERS (1), PROFILE (release), PEER_PROTOCOL (the proxies'
# --peer-protocol: http1 or h2, offered by ALPN on the mTLS hop), PEER_MTLS (1; 0 applies a
# DestinationRule with tls.mode DISABLE, for the plaintext baseline).
set -euo pipefail
SECS=${1:-10}
CONNS=${2:-16}
ROUNDS=${ROUNDS:-3}
WORKERS=${MESH_PROXY_WORKERS:-1}
cd "$(dirname "$0")/.."

for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing: apt-get install -y wrk nginx" >&2; exit 2; }
done
PROFILE=${PROFILE:-release}   # PROFILE=profiling builds faster, with symbols for perf
cargo build --profile "$PROFILE" --bin mesh >&2
cargo build --profile "$PROFILE" --bin proxy >&2
cargo build --profile "$PROFILE" -p mesh-proxy --example loadgen >&2
MESH=$PWD/target/$PROFILE/mesh
# The sidecars are the `proxy` binary, as the image ships it (`mesh proxy run` is the same code
# in a larger binary: more text pages resident).
PROXY=${PROXY:-$PWD/target/$PROFILE/proxy}   # PROXY=/path/to/proxy compares another build
LOADGEN=$PWD/target/$PROFILE/examples/loadgen

WORK=$(mktemp -d)
export MESH_HOME=$WORK/home
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  "$MESH" uninstall -y >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# nginx backend
NGINX_PORT=$(free_port)
mkdir -p "$WORK/www"
head -c 1024 /dev/zero | tr '\0' 'x' > "$WORK/www/1k.bin"
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK; uwsgi_temp_path $WORK; scgi_temp_path $WORK;
  server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; }
}
CONF
nginx -c "$WORK/nginx.conf" -p "$WORK"

# the mesh
"$MESH" install -y --set meshd.listen=127.0.0.1:0 >/dev/null
cat > "$WORK/svc.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: backend}
spec:
  selector: {app: backend}
  ports: [{name: http, port: 80, targetPort: 8080}]
YAML
if [ "${PEER_MTLS:-1}" = 0 ]; then
  cat >> "$WORK/svc.yaml" <<YAML
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: backend}
spec:
  host: backend
  trafficPolicy: {tls: {mode: DISABLE}}
YAML
fi
"$MESH" apply -f "$WORK/svc.yaml" >/dev/null
# Each proxy presents its own token (meshd refuses the admin token on discovery); `--meshd`
# with `--token-file` works for older proxy builds too (PROXY=...).
MESHD_ADDR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["address"])' "$MESH_HOME/meshd.json")
"$MESH" proxy token create --workload backend --file "$WORK/backend.token" >/dev/null
"$MESH" proxy token create --workload client --file "$WORK/client.token" >/dev/null
RUST_LOG=error MESH_PROXY_WORKERS=$WORKERS "$PROXY" --workload backend --labels app=backend \
  --meshd "$MESHD_ADDR" --token-file "$WORK/backend.token" \
  --inbound "8080=127.0.0.1:$NGINX_PORT" --no-outbound ${PEER_PROTOCOL:+--peer-protocol $PEER_PROTOCOL} > "$WORK/server.out" &
PIDS+=($!); SERVER_PID=$!
RUST_LOG=error MESH_PROXY_WORKERS=$WORKERS "$PROXY" --workload client \
  --meshd "$MESHD_ADDR" --token-file "$WORK/client.token" \
  ${PEER_PROTOCOL:+--peer-protocol $PEER_PROTOCOL} > "$WORK/client.out" &
PIDS+=($!); CLIENT_PID=$!
for _ in $(seq 200); do
  OUT=$(sed -n 's/^outbound listening on \([0-9.:]*\).*/\1/p' "$WORK/client.out")
  [ -n "$OUT" ] && [ "$("$MESH" proxy-status | grep -c 'SYNCED  *SYNCED  *SYNCED')" = 2 ] && break
  sleep 0.05
done
[ -n "$OUT" ] || { echo "bench: the client proxy did not start" >&2; exit 2; }

DIRECT_URL="http://127.0.0.1:$NGINX_PORT/1k.bin"
MESH_URL="http://$OUT/1k.bin"
# Check both paths answer before measuring.
curl -sf -o /dev/null "$DIRECT_URL"
curl -sf -o /dev/null -H 'Host: backend' "$MESH_URL"

to_ms() { awk '{ v=$1; if (v ~ /us$/) { sub(/us/,"",v); v/=1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v*=1000 }; printf "%.3f", v }'; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
run_wrk() { # url [host header] -> "rps p50ms p99ms"
  local out
  if [ -n "${2:-}" ]; then out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -H "Host: $2" "$1"); else out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1"); fi
  local errs; errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}')
  [ -z "$errs" ] || echo "bench: wrk reported: $errs" >&2
  echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "$out" | awk '$1=="50%" {print $2}' | to_ms) $(echo "$out" | awk '$1=="99%" {print $2}' | to_ms)"
}
median() { sort -g | awk '{ a[NR]=$1 } END { print a[int((NR+1)/2)] }'; }

declare -a D_RPS D_P50 D_P99 M_RPS M_P50 M_P99
TICKS=$(getconf CLK_TCK)
CPU_SECONDS=0; MESH_REQS=0
for i in $(seq "$ROUNDS"); do
  read -r rps p50 p99 < <(run_wrk "$DIRECT_URL")
  D_RPS+=("$rps"); D_P50+=("$p50"); D_P99+=("$p99")
  c0=$(( $(cpu_ticks $SERVER_PID) + $(cpu_ticks $CLIENT_PID) ))
  read -r rps p50 p99 < <(run_wrk "$MESH_URL" backend)
  c1=$(( $(cpu_ticks $SERVER_PID) + $(cpu_ticks $CLIENT_PID) ))
  M_RPS+=("$rps"); M_P50+=("$p50"); M_P99+=("$p99")
  CPU_SECONDS=$(awk -v a="$CPU_SECONDS" -v t=$((c1 - c0)) -v hz="$TICKS" 'BEGIN { print a + t/hz }')
  MESH_REQS=$(awk -v a="$MESH_REQS" -v r="$rps" -v s="$SECS" 'BEGIN { print a + r*s }')
  echo "round $i: direct ${D_RPS[-1]} req/s, mesh ${M_RPS[-1]} req/s" >&2
done
# Fixed rate: 1000 req/s over 4 connections, open loop; p50/p99 added over direct.
LAT_SECS=${LAT_SECS:-10}
declare -a LD50 LD99 LM50 LM99
FIXED_CPU=0
for i in $(seq "$ROUNDS"); do
  read -r p50 p99 < <("$LOADGEN" "$DIRECT_URL" --rate 1000 --conns 4 --secs "$LAT_SECS" | awk '{print $8, $11}')
  LD50+=("$p50"); LD99+=("$p99")
  c0=$(( $(cpu_ticks $SERVER_PID) + $(cpu_ticks $CLIENT_PID) ))
  read -r p50 p99 < <("$LOADGEN" "$MESH_URL" --host backend --rate 1000 --conns 4 --secs "$LAT_SECS" | awk '{print $8, $11}')
  c1=$(( $(cpu_ticks $SERVER_PID) + $(cpu_ticks $CLIENT_PID) ))
  LM50+=("$p50"); LM99+=("$p99")
  FIXED_CPU=$(awk -v a="$FIXED_CPU" -v t=$((c1 - c0)) -v hz="$TICKS" 'BEGIN { print a + t/hz }')
done
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
RSS=$(( $(rss_kib $SERVER_PID) + $(rss_kib $CLIENT_PID) ))

d_rps=$(printf '%s\n' "${D_RPS[@]}" | median); m_rps=$(printf '%s\n' "${M_RPS[@]}" | median)
d_p50=$(printf '%s\n' "${D_P50[@]}" | median); m_p50=$(printf '%s\n' "${M_P50[@]}" | median)
d_p99=$(printf '%s\n' "${D_P99[@]}" | median); m_p99=$(printf '%s\n' "${M_P99[@]}" | median)
echo
echo "wrk -t1 -c$CONNS -d${SECS}s, $ROUNDS rounds alternating, medians; proxies with $WORKERS worker(s)"
printf '%-28s %12s %10s %10s\n' "path" "req/s" "p50 ms" "p99 ms"
printf '%-28s %12.0f %10.3f %10.3f\n' "direct (client -> nginx)" "$d_rps" "$d_p50" "$d_p99"
printf '%-28s %12.0f %10.3f %10.3f\n' "mesh (2 proxies, HTTP)" "$m_rps" "$m_p50" "$m_p99"
awk -v d="$d_rps" -v m="$m_rps" -v dp="$d_p50" -v mp="$m_p50" -v d9="$d_p99" -v m9="$m_p99" \
  'BEGIN { printf "mesh / direct throughput: %.2fx; added latency p50 +%.3f ms, p99 +%.3f ms\n", m/d, mp-dp, m9-d9 }'
awk -v c="$CPU_SECONDS" -v r="$MESH_REQS" 'BEGIN { printf "proxy CPU, both hops: %.3f vCPU-seconds per 1000 requests (= vCPU per 1000 req/s)\n", c/r*1000 }'
echo "proxy RSS, both hops: $((RSS / 1024)) MiB"
ld50=$(printf '%s\n' "${LD50[@]}" | median); ld99=$(printf '%s\n' "${LD99[@]}" | median)
lm50=$(printf '%s\n' "${LM50[@]}" | median); lm99=$(printf '%s\n' "${LM99[@]}" | median)
echo
echo "fixed rate 1000 req/s, 4 connections, ${LAT_SECS}s, $ROUNDS rounds alternating, medians (open loop)"
printf '%-28s %10s %10s\n' "path" "p50 ms" "p99 ms"
printf '%-28s %10.3f %10.3f\n' "direct" "$ld50" "$ld99"
printf '%-28s %10.3f %10.3f\n' "mesh" "$lm50" "$lm99"
awk -v a="$ld50" -v b="$lm50" -v c="$ld99" -v d="$lm99" 'BEGIN { printf "added by the mesh: p50 +%.3f ms, p99 +%.3f ms\n", b-a, d-c }'
awk -v c="$FIXED_CPU" -v n="$ROUNDS" -v s="$LAT_SECS" 'BEGIN { printf "proxy CPU at 1000 req/s, both hops: %.3f vCPU\n", c/(n*s) }'
