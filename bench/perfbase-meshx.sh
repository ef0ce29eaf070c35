# A second build of the proxy (MESHX_BIN) beside `mesh`, same meshd: client2 :18051 -> backend2 proxy -> backend :18080.
MESHX_BIN=${MESHX_BIN:-$MESH_BIN}
URL[meshx]=http://127.0.0.1:18051$P; HDR[meshx]="Host: backend2"; INST[meshx]="meshx-a meshx-b"
START[meshx-b]="env MESH_HOME=$MH RUST_LOG=error $MESHX_BIN/proxy --workload backend2 --labels app=backend2 --inbound 8081=127.0.0.1:18080 --no-outbound --workers 1"
START[meshx-a]="env MESH_HOME=$MH RUST_LOG=error $MESHX_BIN/proxy --workload client2 --labels app=client2 --outbound 127.0.0.1:18051 --workers 1"
DEFAULT_SETUPS="$DEFAULT_SETUPS meshx"
case "${1:-all}" in all|start)
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: backend2, namespace: default}\nspec: {selector: {app: backend2}, ports: [{name: http, port: 80, targetPort: 8081}]}\n' >"$MH/backend2.yaml"
    for _ in $(seq 50); do MESH_HOME=$MH "$MESH_BIN/mesh" apply -f "$MH/backend2.yaml" >/dev/null 2>&1 && break; sleep 0.2; done ;;
esac
