
use builtin;
use str;

set edit:completion:arg-completer[mesh] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'mesh'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'mesh'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand install 'Install the mesh: start meshd (local platform: in the background, state in MESH_HOME)'
            cand uninstall 'Stop meshd. Running proxies keep routing with their last config'
            cand verify-install 'Check that the installation is complete and meshd is ready'
            cand precheck 'Check that the mesh can be installed here (Kubernetes version, permissions, an existing Istio or mesh installation; on the local platform MESH_HOME and meshd''s port)'
            cand apply 'Create or update resources from files (Istio and Kubernetes YAML)'
            cand get 'List or show resources'
            cand delete 'Delete resources by kind and name, or those in files'
            cand proxy 'Run a sidecar proxy for a workload'
            cand proxy-status 'Show whether each proxy has the config meshd would send it now'
            cand ps 'Show whether each proxy has the config meshd would send it now'
            cand proxy-config 'Show what a proxy actually holds (read from its admin API), like istioctl proxy-config'
            cand pc 'Show what a proxy actually holds (read from its admin API), like istioctl proxy-config'
            cand route 'Change how traffic is split between a service''s subsets'
            cand cert 'Workload certificates and the mesh CA: status, renewal, root rotation'
            cand analyze 'Find problems in configuration: files offline, the running mesh, or files over it'
            cand top 'Live traffic per service and workload: requests/s, success rate, latency, mTLS share'
            cand version 'Print the versions of the CLI and the running control plane'
            cand logs 'Print meshd''s log (local platform: MESH_HOME/meshd.log)'
            cand wait 'Wait until every connected proxy has acknowledged the config meshd holds now (exit 1, naming the proxies behind, on timeout)'
            cand check 'Check the mesh''s health, like `linkerd check`: meshd, certificates and their expiry, proxies in sync; `--pre` checks this machine before an install'
            cand bug-report 'Collect what a bug report needs into one archive: meshd''s log, the config, every proxy''s sync state, config dump and certificates, the analysis; secrets redacted'
            cand experimental 'Experimental commands, as istioctl''s `x`: `describe pod|service NAME`'
            cand x 'Experimental commands, as istioctl''s `x`: `describe pod|service NAME`'
            cand completion 'Print a shell completion script'
            cand manifest 'Kubernetes manifests for the mesh (CRDs, meshd, webhooks, ingress gateway)'
            cand inject 'Add the sidecar (and its capture init container) to Kubernetes workloads in YAML, like `istioctl kube-inject`'
            cand kube-inject 'Add the sidecar (and its capture init container) to Kubernetes workloads in YAML, like `istioctl kube-inject`'
            cand demo 'Run a small bookinfo-like mesh and shift traffic between versions, live'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;install'= {
            cand --profile 'Install profile (shapes the Kubernetes manifests; recorded on the local platform)'
            cand --set 'Override a setting, e.g. `meshd.listen=127.0.0.1:0` (repeatable)'
            cand --wait-timeout 'Kube platform: how long to wait for meshd to be ready, in seconds'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand --dry-run 'Show what would be done, change nothing'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;uninstall'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand --purge 'Also delete MESH_HOME''s stored config, token and logs'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;verify-install'= {
            cand --profile 'The profile that was installed (kube platform)'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;precheck'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;apply'= {
            cand -f 'File, directory or `-` for stdin (repeatable)'
            cand --filename 'File, directory or `-` for stdin (repeatable)'
            cand --timeout 'How long --wait waits'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -R 'Recurse into directories'
            cand --recursive 'Recurse into directories'
            cand --dry-run 'Validate and report, store nothing'
            cand --force 'Apply even when the analysis finds errors in what is applied (e.g. a route to a subset no DestinationRule defines), which would break traffic'
            cand --wait 'Then wait until every connected proxy has acknowledged the new config (see `mesh wait`)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;get'= {
            cand -l 'Only resources whose labels match: `app=reviews`, `tier!=db`, `canary` (has the label), comma-separated, all must hold'
            cand --selector 'Only resources whose labels match: `app=reviews`, `tier!=db`, `canary` (has the label), comma-separated, all must hold'
            cand -o 'o'
            cand --output 'output'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -A 'All namespaces'
            cand --all-namespaces 'All namespaces'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;delete'= {
            cand -f 'Delete the resources in these files'
            cand --filename 'Delete the resources in these files'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand --ignore-not-found 'Succeed when a resource does not exist'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;proxy'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand run 'Run a sidecar proxy in the foreground'
            cand init 'Install the iptables rules that redirect this network namespace''s TCP through its proxy (istio-init''s job): outbound to 15001, inbound to 15006'
            cand token 'Proxy credentials (local platform): tokens that register one workload only'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;proxy;run'= {
            cand --workload 'The workload''s name (unique in its namespace while connected)'
            cand -n 'The workload''s namespace'
            cand --namespace 'The workload''s namespace'
            cand --service-account 'The workload''s service account (its identity)'
            cand --labels 'The workload''s labels, `k=v,k2=v2` (Services and subsets select on these)'
            cand --inbound 'Forward mesh traffic for workload PORT to the app at APP_ADDR (repeatable)'
            cand --outbound 'The outbound listener the app sends its requests to (also usable as HTTP_PROXY)'
            cand --capture-outbound 'Accept the app''s connections redirected by `proxy init` here (Istio''s 15001), e.g. `0.0.0.0:15001`; each goes where the app was connecting, through the mesh'
            cand --capture-inbound 'Accept inbound connections redirected by `proxy init` here (Istio''s 15006), e.g. `0.0.0.0:15006`; peers are then told `--inbound-bind`:PORT for each `--inbound` port'
            cand --inbound-bind 'The address inbound listeners bind (the pod IP on Kubernetes); peers reach the workload there'
            cand --outbound-tcp 'A local listener for a TCP service: connections to LISTEN_ADDR go to HOST:PORT through the mesh (repeatable), e.g. `tcp-echo:9000=127.0.0.1:0`'
            cand --gateway-port 'Serve a Gateway server port (as an ingress gateway): Gateways whose selector matches this workload''s labels are served on LISTEN_ADDR for their servers on PORT (repeatable), e.g. `80=127.0.0.1:8080`'
            cand --admin 'The admin API (loopback)'
            cand --metrics 'Prometheus metrics at /stats/prometheus (Istio uses port 15020)'
            cand --meshd 'meshd''s address (`IP:PORT` or `HOST:PORT`); by default read from MESH_HOME/meshd.json'
            cand --token-file 'File holding this proxy''s credential, read again at each reconnection: a proxy token from `mesh proxy token create` (bound to this workload and service account), or on Kubernetes the pod''s projected service-account token. Without it (local development default) the proxy mints its own proxy token with the admin token in MESH_HOME'
            cand --meshd-ca 'Talk TLS to `--meshd`, trusting the roots in FILE (on Kubernetes, the mesh root from the `mesh-ca-root-cert` ConfigMap)'
            cand --meshd-server-name 'The name meshd''s certificate must carry (default: the host of `--meshd`)'
            cand --peer-protocol 'Protocol between proxies: `http1` keeps each request''s protocol (HTTP/1.1 over a keep-alive pool, HTTP/2 and gRPC over HTTP/2), as Istio does by default; `h2` carries every request over HTTP/2 (Istio''s h2UpgradePolicy UPGRADE). Negotiated by ALPN on mTLS'
            cand --max-connections 'Open connections per listener; beyond it new connections are closed at once (0: half the open-files limit, less a reserve)'
            cand --max-requests 'Requests in flight per listener; beyond it requests get 503 (Envoy''s overload answer)'
            cand --request-headers-timeout 'How long a request''s head may take to arrive once it has begun (and a new connection to bring its first request)'
            cand --tls-handshake-timeout 'How long a TLS handshake on an inbound or gateway listener may take'
            cand --stream-idle-timeout 'How long a request in flight may go without a byte either way (Envoy''s 5 min default)'
            cand --idle-timeout 'How long a downstream connection may stay open with no request in flight (HTTP) or no byte either way (TCP). Default: the mesh config''s `ISTIO_META_IDLE_TIMEOUT`, else 1h'
            cand --workers 'Worker threads for the data path'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand --no-outbound 'Do not open an outbound listener'
            cand --access-log 'Write a JSON access log line per request to standard output (also turned on mesh-wide by `mesh install --set meshConfig.accessLogFile=/dev/stdout`)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;proxy;init'= {
            cand --proxy-uid 'The proxy''s user id: its own connections are never captured'
            cand --proxy-gid 'The proxy''s group id (default: the uid)'
            cand --outbound-port 'Where the app''s outbound TCP is redirected (the proxy''s `--capture-outbound` port)'
            cand --inbound-port 'Where inbound TCP is redirected'
            cand --include-inbound-ports 'Inbound ports to capture: `*` for all, or a comma-separated list; empty for none'
            cand --exclude-inbound-ports 'Inbound ports never captured (the proxy''s own: metrics, health, admin)'
            cand --exclude-outbound-ports 'Outbound destination ports never captured'
            cand --exclude-outbound-cidrs 'Outbound destination CIDRs never captured'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand --dry-run 'Print the rules instead of applying them'
            cand --cleanup 'Remove the rules'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;proxy;token'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand create 'Mint a token that lets a proxy register WORKLOAD in the namespace (-n) as SERVICE_ACCOUNT, and nothing else; give it to `mesh proxy run --token-file`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;proxy;token;create'= {
            cand --workload 'The workload the token registers'
            cand --service-account 'The service account (identity) the workload runs as'
            cand --valid-for 'How long the token is good for (e.g. 24h, 720h); default: until MESH_HOME''s token key is replaced'
            cand --file 'Write the token to FILE (mode 0600) instead of standard output'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;proxy;token;help'= {
            cand create 'Mint a token that lets a proxy register WORKLOAD in the namespace (-n) as SERVICE_ACCOUNT, and nothing else; give it to `mesh proxy run --token-file`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;proxy;token;help;create'= {
        }
        &'mesh;proxy;token;help;help'= {
        }
        &'mesh;proxy;help'= {
            cand run 'Run a sidecar proxy in the foreground'
            cand init 'Install the iptables rules that redirect this network namespace''s TCP through its proxy (istio-init''s job): outbound to 15001, inbound to 15006'
            cand token 'Proxy credentials (local platform): tokens that register one workload only'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;proxy;help;run'= {
        }
        &'mesh;proxy;help;init'= {
        }
        &'mesh;proxy;help;token'= {
            cand create 'Mint a token that lets a proxy register WORKLOAD in the namespace (-n) as SERVICE_ACCOUNT, and nothing else; give it to `mesh proxy run --token-file`'
        }
        &'mesh;proxy;help;token;create'= {
        }
        &'mesh;proxy;help;help'= {
        }
        &'mesh;proxy-status'= {
            cand -o 'o'
            cand --output 'output'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;ps'= {
            cand -o 'o'
            cand --output 'output'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;proxy-config'= {
            cand -o 'o'
            cand --output 'output'
            cand --level 'With `log`: the level to set (trace, debug, info, warn, error, off, or a filter such as `mesh_proxy=debug,info`)'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;pc'= {
            cand -o 'o'
            cand --output 'output'
            cand --level 'With `log`: the level to set (trace, debug, info, warn, error, off, or a filter such as `mesh_proxy=debug,info`)'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;route'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand split 'Split a service''s traffic between subsets: `mesh route split reviews v1=90 v2=10`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;route;split'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand --dry-run 'Print the resulting resources, change nothing'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;route;help'= {
            cand split 'Split a service''s traffic between subsets: `mesh route split reviews v1=90 v2=10`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;route;help;split'= {
        }
        &'mesh;route;help;help'= {
        }
        &'mesh;cert'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand status 'Each proxy''s identity, certificate serial, expiry and issuing root; the CA''s roots'
            cand rotate 'Renew workload certificates now (all proxies, or one), without restarting anything'
            cand rotate-root 'Replace the mesh''s root CA with no downtime: the new root joins the trust bundle, every proxy is re-issued under it, then the old root is retired'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;cert;status'= {
            cand -o 'o'
            cand --output 'output'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;cert;rotate'= {
            cand --workload 'Only this workload''s proxy (`NAME` in the current namespace, or `NAMESPACE/NAME`)'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;cert;rotate-root'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;cert;help'= {
            cand status 'Each proxy''s identity, certificate serial, expiry and issuing root; the CA''s roots'
            cand rotate 'Renew workload certificates now (all proxies, or one), without restarting anything'
            cand rotate-root 'Replace the mesh''s root CA with no downtime: the new root joins the trust bundle, every proxy is re-issued under it, then the old root is retired'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;cert;help;status'= {
        }
        &'mesh;cert;help;rotate'= {
        }
        &'mesh;cert;help;rotate-root'= {
        }
        &'mesh;cert;help;help'= {
        }
        &'mesh;analyze'= {
            cand -f 'File, directory or `-` (repeatable); without files the running mesh is analyzed'
            cand --filename 'File, directory or `-` (repeatable); without files the running mesh is analyzed'
            cand --mesh-config 'A MeshConfig fragment to analyze with (Istio''s `--meshConfigFile`)'
            cand --mesh-networks 'A MeshNetworks file (Istio''s `meshNetworks`) to analyze'
            cand -o 'o'
            cand --output 'output'
            cand --failure-threshold 'Exit 1 when a message at this level or above is found'
            cand --output-threshold 'Print only messages at this level or above'
            cand -S 'Suppress messages: `CODE=Kind name[.namespace]`, `*` matches anything (repeatable)'
            cand --suppress 'Suppress messages: `CODE=Kind name[.namespace]`, `*` matches anything (repeatable)'
            cand --analyzer 'Run only this analyzer (repeatable), e.g. virtualservice.DestinationHostAnalyzer'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -R 'Recurse into directories'
            cand --recursive 'Recurse into directories'
            cand -A 'Analyze every namespace, not just -n'
            cand --all-namespaces 'Analyze every namespace, not just -n'
            cand --offline 'Do not add the running mesh''s resources, even if meshd is up'
            cand --list-analyzers 'List the analyzers and exit'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;top'= {
            cand --interval 'How long each measurement lasts (and how often a live view refreshes)'
            cand -o '`table` refreshes live on a terminal; `json` and `yaml` print one measurement'
            cand --output '`table` refreshes live on a terminal; `json` and `yaml` print one measurement'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -A 'Proxies in every namespace, not just -n'
            cand --all-namespaces 'Proxies in every namespace, not just -n'
            cand --once 'Print one measurement and exit, even on a terminal'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;version'= {
            cand -o 'o'
            cand --output 'output'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand --short 'Only the client''s version'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;logs'= {
            cand --tail 'Only the last N lines'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -f 'Keep printing what meshd writes, until interrupted'
            cand --follow 'Keep printing what meshd writes, until interrupted'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;wait'= {
            cand --timeout 'How long to wait'
            cand --proxies 'Also wait until at least N proxies are connected (proxies just started in a script)'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;check'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand --pre 'The checks to run before `mesh install` (as `mesh precheck`)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;bug-report'= {
            cand -o 'Where to write the archive (a .tar.gz); default `mesh-bug-report-<time>.tar.gz` here'
            cand --output 'Where to write the archive (a .tar.gz); default `mesh-bug-report-<time>.tar.gz` here'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;experimental'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand describe 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;x'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand describe 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;experimental;describe'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;x;describe'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;experimental;help'= {
            cand describe 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;experimental;help;describe'= {
        }
        &'mesh;experimental;help;help'= {
        }
        &'mesh;x;help'= {
            cand describe 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;x;help;describe'= {
        }
        &'mesh;x;help;help'= {
        }
        &'mesh;completion'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;manifest'= {
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand generate 'Print the manifests of a profile as one YAML stream'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;manifest;generate'= {
            cand --profile 'Install profile'
            cand --set 'Override a setting, e.g. `values.global.hub=registry.example/mesh` (repeatable)'
            cand -f 'IstioOperator-style overlay files (`spec.meshConfig`, `spec.components`, `spec.values`)'
            cand --filename 'IstioOperator-style overlay files (`spec.meshConfig`, `spec.components`, `spec.values`)'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;manifest;help'= {
            cand generate 'Print the manifests of a profile as one YAML stream'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;manifest;help;generate'= {
        }
        &'mesh;manifest;help;help'= {
        }
        &'mesh;inject'= {
            cand -f 'The YAML to inject (`-` for standard input)'
            cand --filename 'The YAML to inject (`-` for standard input)'
            cand --set 'Settings as for `mesh manifest generate` (hub, tag, namespace of meshd)'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;kube-inject'= {
            cand -f 'The YAML to inject (`-` for standard input)'
            cand --filename 'The YAML to inject (`-` for standard input)'
            cand --set 'Settings as for `mesh manifest generate` (hub, tag, namespace of meshd)'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;demo'= {
            cand --requests 'Requests sent at each step of the traffic shift'
            cand -n 'Namespace for commands and for resources without one'
            cand --namespace 'Namespace for commands and for resources without one'
            cand --platform 'Where the mesh runs'
            cand --kubeconfig 'Kubeconfig file (kube platform)'
            cand --context 'Kubeconfig context (kube platform)'
            cand --keep 'Keep the demo mesh running at the end until Ctrl-C'
            cand -q 'Print only errors and requested data'
            cand --quiet 'Print only errors and requested data'
            cand --no-color 'Never colour output (also NO_COLOR)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mesh;help'= {
            cand install 'Install the mesh: start meshd (local platform: in the background, state in MESH_HOME)'
            cand uninstall 'Stop meshd. Running proxies keep routing with their last config'
            cand verify-install 'Check that the installation is complete and meshd is ready'
            cand precheck 'Check that the mesh can be installed here (Kubernetes version, permissions, an existing Istio or mesh installation; on the local platform MESH_HOME and meshd''s port)'
            cand apply 'Create or update resources from files (Istio and Kubernetes YAML)'
            cand get 'List or show resources'
            cand delete 'Delete resources by kind and name, or those in files'
            cand proxy 'Run a sidecar proxy for a workload'
            cand proxy-status 'Show whether each proxy has the config meshd would send it now'
            cand proxy-config 'Show what a proxy actually holds (read from its admin API), like istioctl proxy-config'
            cand route 'Change how traffic is split between a service''s subsets'
            cand cert 'Workload certificates and the mesh CA: status, renewal, root rotation'
            cand analyze 'Find problems in configuration: files offline, the running mesh, or files over it'
            cand top 'Live traffic per service and workload: requests/s, success rate, latency, mTLS share'
            cand version 'Print the versions of the CLI and the running control plane'
            cand logs 'Print meshd''s log (local platform: MESH_HOME/meshd.log)'
            cand wait 'Wait until every connected proxy has acknowledged the config meshd holds now (exit 1, naming the proxies behind, on timeout)'
            cand check 'Check the mesh''s health, like `linkerd check`: meshd, certificates and their expiry, proxies in sync; `--pre` checks this machine before an install'
            cand bug-report 'Collect what a bug report needs into one archive: meshd''s log, the config, every proxy''s sync state, config dump and certificates, the analysis; secrets redacted'
            cand experimental 'Experimental commands, as istioctl''s `x`: `describe pod|service NAME`'
            cand completion 'Print a shell completion script'
            cand manifest 'Kubernetes manifests for the mesh (CRDs, meshd, webhooks, ingress gateway)'
            cand inject 'Add the sidecar (and its capture init container) to Kubernetes workloads in YAML, like `istioctl kube-inject`'
            cand demo 'Run a small bookinfo-like mesh and shift traffic between versions, live'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mesh;help;install'= {
        }
        &'mesh;help;uninstall'= {
        }
        &'mesh;help;verify-install'= {
        }
        &'mesh;help;precheck'= {
        }
        &'mesh;help;apply'= {
        }
        &'mesh;help;get'= {
        }
        &'mesh;help;delete'= {
        }
        &'mesh;help;proxy'= {
            cand run 'Run a sidecar proxy in the foreground'
            cand init 'Install the iptables rules that redirect this network namespace''s TCP through its proxy (istio-init''s job): outbound to 15001, inbound to 15006'
            cand token 'Proxy credentials (local platform): tokens that register one workload only'
        }
        &'mesh;help;proxy;run'= {
        }
        &'mesh;help;proxy;init'= {
        }
        &'mesh;help;proxy;token'= {
            cand create 'Mint a token that lets a proxy register WORKLOAD in the namespace (-n) as SERVICE_ACCOUNT, and nothing else; give it to `mesh proxy run --token-file`'
        }
        &'mesh;help;proxy;token;create'= {
        }
        &'mesh;help;proxy-status'= {
        }
        &'mesh;help;proxy-config'= {
        }
        &'mesh;help;route'= {
            cand split 'Split a service''s traffic between subsets: `mesh route split reviews v1=90 v2=10`'
        }
        &'mesh;help;route;split'= {
        }
        &'mesh;help;cert'= {
            cand status 'Each proxy''s identity, certificate serial, expiry and issuing root; the CA''s roots'
            cand rotate 'Renew workload certificates now (all proxies, or one), without restarting anything'
            cand rotate-root 'Replace the mesh''s root CA with no downtime: the new root joins the trust bundle, every proxy is re-issued under it, then the old root is retired'
        }
        &'mesh;help;cert;status'= {
        }
        &'mesh;help;cert;rotate'= {
        }
        &'mesh;help;cert;rotate-root'= {
        }
        &'mesh;help;analyze'= {
        }
        &'mesh;help;top'= {
        }
        &'mesh;help;version'= {
        }
        &'mesh;help;logs'= {
        }
        &'mesh;help;wait'= {
        }
        &'mesh;help;check'= {
        }
        &'mesh;help;bug-report'= {
        }
        &'mesh;help;experimental'= {
            cand describe 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`'
        }
        &'mesh;help;experimental;describe'= {
        }
        &'mesh;help;completion'= {
        }
        &'mesh;help;manifest'= {
            cand generate 'Print the manifests of a profile as one YAML stream'
        }
        &'mesh;help;manifest;generate'= {
        }
        &'mesh;help;inject'= {
        }
        &'mesh;help;demo'= {
        }
        &'mesh;help;help'= {
        }
    ]
    $completions[$command]
}
