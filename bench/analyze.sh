#!/usr/bin/env bash
# How long `mesh analyze` takes over N resources (default 10,000): a quarter each Services,
# VirtualServices (with a route and a gateway), DestinationRules (with subsets) and Pods, spread
# over 20 namespaces. Baseline in the same run: `mesh analyze --list-analyzers` (start-up only).
# Usage: bench/analyze.sh [N]
set -euo pipefail
N=${1:-10000}
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
cargo build --profile "$PROFILE" --bin mesh >&2
DIR=$PROFILE; [ "$PROFILE" = dev ] && DIR=debug
MESH=$PWD/target/$DIR/mesh
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$N" > "$WORK/big.yaml" <<'PY'
import sys
n = int(sys.argv[1]) // 4
for i in range(n):
    ns = f"ns{i % 20}"
    print(f"""---
apiVersion: v1
kind: Service
metadata: {{name: svc{i}, namespace: {ns}}}
spec:
  selector: {{app: app{i}}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: pod{i}, namespace: {ns}, labels: {{app: app{i}, version: v1}}}}
spec: {{containers: [{{name: app, image: app}}]}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: dr{i}, namespace: {ns}}}
spec:
  host: svc{i}
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: vs{i}, namespace: {ns}}}
spec:
  hosts: [svc{i}]
  http:
  - route:
    - {{destination: {{host: svc{i}, subset: v1}}, weight: 90}}
    - {{destination: {{host: svc{(i + 1) % n}, subset: v2}}, weight: 10}}""")
PY
# Exit 0 (clean) and 1 (findings) are both fine; 2 means analyze could not run.
time_it() {
  local s e rc=0
  s=$(date +%s.%N)
  "$@" > /dev/null 2> "$WORK/err" || rc=$?
  e=$(date +%s.%N)
  if [ "$rc" -gt 1 ]; then echo "bench: $* failed: $(cat "$WORK/err")" >&2; exit 2; fi
  awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }'
}
base=$(time_it "$MESH" analyze --list-analyzers)
runs=()
for _ in 1 2 3; do runs+=("$(time_it "$MESH" analyze --offline -A -f "$WORK/big.yaml")"); done
median=$(printf '%s\n' "${runs[@]}" | sort -g | sed -n 2p)
msgs=$( ("$MESH" analyze --offline -A -f "$WORK/big.yaml" -o json 2>/dev/null || true) | grep -c "\"code\"" || true)
echo "analyze over $N resources: median ${median}s of 3 runs (${runs[*]}); process start-up alone ${base}s; $msgs messages"
