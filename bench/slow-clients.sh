#!/usr/bin/env bash
# A sidecar's inbound listener under a slow-client flood: N connections that each send one byte
# of a request and then nothing. Reports the proxy's RSS and open descriptors idle, during the
# flood and after, whether a real request is answered during the flood, and how many flood
# connections the proxy closed by itself. Run it for two builds in one go to compare:
#
#   bench/slow-clients.sh [N] [NOFILE]            (defaults 5000 and the shell's limit)
#   PROXIES="old=/path/to/old/proxy new=target/release/proxy" bench/slow-clients.sh 1100 1024
#
# NOFILE is the proxy's open-files limit (soft and hard). Needs nginx and python3.
set -euo pipefail
N=${1:-5000}
NOFILE=${2:-$(ulimit -Hn)}
cd "$(dirname "$0")/.."
command -v nginx >/dev/null || { echo "bench: nginx is missing: apt-get install -y nginx" >&2; exit 2; }
cargo build --release --bin mesh --bin proxy >&2
MESH=$PWD/target/release/mesh
PROXIES=${PROXIES:-"new=$PWD/target/release/proxy"}

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

NGINX_PORT=$(free_port)
mkdir -p "$WORK/www" && echo ok > "$WORK/www/index.html"
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK; uwsgi_temp_path $WORK; scgi_temp_path $WORK;
       server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; } }
CONF
nginx -c "$WORK/nginx.conf" -p "$WORK"
"$MESH" install -y --set meshd.listen=127.0.0.1:0 >/dev/null
MESHD_ADDR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["address"])' "$MESH_HOME/meshd.json")
cat > "$WORK/svc.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: backend}
spec:
  selector: {app: backend}
  ports: [{name: http, port: 80, targetPort: 8080}]
YAML
"$MESH" apply -f "$WORK/svc.yaml" >/dev/null

cat > "$WORK/flood.py" <<'PY'
import socket, sys, time, os, resource
host, port, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 512, n + 512))
def rss(): return int(next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")))
def fds(): return len(os.listdir(f"/proc/{pid}/fd"))
def real_request():
    t = time.time()
    try:
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n")
        ok = s.recv(64).startswith(b"HTTP/1.1 200")
        s.close()
        return ("ok" if ok else "bad answer") + " in %.0f ms" % ((time.time() - t) * 1000)
    except OSError as e:
        return "failed (%s) after %.0f ms" % (e.__class__.__name__, (time.time() - t) * 1000)
idle = (rss(), fds())
conns = []
for _ in range(n):
    try:
        s = socket.create_connection((host, port), timeout=2)
        s.sendall(b"G")
        s.setblocking(False)
        conns.append(s)
    except OSError:
        pass
time.sleep(2)
during = (rss(), fds(), real_request())
time.sleep(13)
closed = 0
for s in conns:
    try:
        if s.recv(1) == b"":
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
after = (rss(), fds(), real_request())
print(f"idle {idle[0]//1024} MiB {idle[1]} fds | {len(conns)} slow connections, 2 s in: {during[0]//1024} MiB {during[1]} fds, real request {during[2]} | 15 s in: {closed} closed by the proxy, {after[0]//1024} MiB {after[1]} fds, real request {after[2]}")
PY

for entry in $PROXIES; do
  name=${entry%%=*}; bin=${entry#*=}
  "$MESH" proxy token create --workload "backend-$name" --file "$WORK/$name.token" >/dev/null
  ( ulimit -n "$NOFILE"; RUST_LOG=error exec "$bin" --workload "backend-$name" --labels app=backend \
      --meshd "$MESHD_ADDR" --token-file "$WORK/$name.token" --inbound "8080=127.0.0.1:$NGINX_PORT" --no-outbound \
      > "$WORK/$name.out" ) &
  pid=$!; PIDS+=("$pid")
  for _ in $(seq 200); do grep -q '^admin listening' "$WORK/$name.out" 2>/dev/null && break; sleep 0.05; done
  inbound=$(sed -n 's/^inbound port 8080 listening on \([0-9.:]*\).*/\1/p' "$WORK/$name.out")
  sleep 1
  echo "$name (open-files limit $NOFILE): $(python3 "$WORK/flood.py" "${inbound%:*}" "${inbound##*:}" "$N" "$pid")"
  kill "$pid"
done
