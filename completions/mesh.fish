# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mesh_global_optspecs
    string join \n n/namespace= platform= kubeconfig= context= q/quiet no-color h/help
end

function __fish_mesh_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mesh_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mesh_using_subcommand
    set -l cmd (__fish_mesh_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mesh -n "__fish_mesh_needs_command" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_needs_command" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_needs_command" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_needs_command" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_needs_command" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_needs_command" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "install" -d 'Install the mesh: start meshd (local platform: in the background, state in MESH_HOME)'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "uninstall" -d 'Stop meshd. Running proxies keep routing with their last config'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "verify-install" -d 'Check that the installation is complete and meshd is ready'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "precheck" -d 'Check that the mesh can be installed here (Kubernetes version, permissions, an existing Istio or mesh installation; on the local platform MESH_HOME and meshd\'s port)'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "apply" -d 'Create or update resources from files (Istio and Kubernetes YAML)'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "get" -d 'List or show resources'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "delete" -d 'Delete resources by kind and name, or those in files'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "proxy" -d 'Run a sidecar proxy for a workload'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "proxy-status" -d 'Show whether each proxy has the config meshd would send it now'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "ps" -d 'Show whether each proxy has the config meshd would send it now'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "proxy-config" -d 'Show what a proxy actually holds (read from its admin API), like istioctl proxy-config'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "pc" -d 'Show what a proxy actually holds (read from its admin API), like istioctl proxy-config'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "route" -d 'Change how traffic is split between a service\'s subsets'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "cert" -d 'Workload certificates and the mesh CA: status, renewal, root rotation'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "analyze" -d 'Find problems in configuration: files offline, the running mesh, or files over it'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "top" -d 'Live traffic per service and workload: requests/s, success rate, latency, mTLS share'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "version" -d 'Print the versions of the CLI and the running control plane'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "logs" -d 'Print meshd\'s log (local platform: MESH_HOME/meshd.log)'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "wait" -d 'Wait until every connected proxy has acknowledged the config meshd holds now (exit 1, naming the proxies behind, on timeout)'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "check" -d 'Check the mesh\'s health, like `linkerd check`: meshd, certificates and their expiry, proxies in sync; `--pre` checks this machine before an install'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "bug-report" -d 'Collect what a bug report needs into one archive: meshd\'s log, the config, every proxy\'s sync state, config dump and certificates, the analysis; secrets redacted'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "experimental" -d 'Experimental commands, as istioctl\'s `x`: `describe pod|service NAME`'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "x" -d 'Experimental commands, as istioctl\'s `x`: `describe pod|service NAME`'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "completion" -d 'Print a shell completion script'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "manifest" -d 'Kubernetes manifests for the mesh (CRDs, meshd, webhooks, ingress gateway)'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "inject" -d 'Add the sidecar (and its capture init container) to Kubernetes workloads in YAML, like `istioctl kube-inject`'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "kube-inject" -d 'Add the sidecar (and its capture init container) to Kubernetes workloads in YAML, like `istioctl kube-inject`'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "demo" -d 'Run a small bookinfo-like mesh and shift traffic between versions, live'
complete -c mesh -n "__fish_mesh_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand install" -l profile -d 'Install profile (shapes the Kubernetes manifests; recorded on the local platform)' -r -f -a "default\t''
demo\t''
minimal\t''
empty\t''"
complete -c mesh -n "__fish_mesh_using_subcommand install" -l set -d 'Override a setting, e.g. `meshd.listen=127.0.0.1:0` (repeatable)' -r
complete -c mesh -n "__fish_mesh_using_subcommand install" -l wait-timeout -d 'Kube platform: how long to wait for meshd to be ready, in seconds' -r
complete -c mesh -n "__fish_mesh_using_subcommand install" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand install" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand install" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand install" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand install" -l dry-run -d 'Show what would be done, change nothing'
complete -c mesh -n "__fish_mesh_using_subcommand install" -s y -l yes -d 'Do not ask for confirmation'
complete -c mesh -n "__fish_mesh_using_subcommand install" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand install" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand uninstall" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand uninstall" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand uninstall" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand uninstall" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand uninstall" -l purge -d 'Also delete MESH_HOME\'s stored config, token and logs'
complete -c mesh -n "__fish_mesh_using_subcommand uninstall" -s y -l yes -d 'Do not ask for confirmation'
complete -c mesh -n "__fish_mesh_using_subcommand uninstall" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand uninstall" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand uninstall" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand verify-install" -l profile -d 'The profile that was installed (kube platform)' -r -f -a "default\t''
demo\t''
minimal\t''
empty\t''"
complete -c mesh -n "__fish_mesh_using_subcommand verify-install" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand verify-install" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand verify-install" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand verify-install" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand verify-install" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand verify-install" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand verify-install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand precheck" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand precheck" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand precheck" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand precheck" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand precheck" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand precheck" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand precheck" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand apply" -s f -l filename -d 'File, directory or `-` for stdin (repeatable)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand apply" -l timeout -d 'How long --wait waits' -r
complete -c mesh -n "__fish_mesh_using_subcommand apply" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand apply" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand apply" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand apply" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand apply" -s R -l recursive -d 'Recurse into directories'
complete -c mesh -n "__fish_mesh_using_subcommand apply" -l dry-run -d 'Validate and report, store nothing'
complete -c mesh -n "__fish_mesh_using_subcommand apply" -l force -d 'Apply even when the analysis finds errors in what is applied (e.g. a route to a subset no DestinationRule defines), which would break traffic'
complete -c mesh -n "__fish_mesh_using_subcommand apply" -l wait -d 'Then wait until every connected proxy has acknowledged the new config (see `mesh wait`)'
complete -c mesh -n "__fish_mesh_using_subcommand apply" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand apply" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand get" -s l -l selector -d 'Only resources whose labels match: `app=reviews`, `tier!=db`, `canary` (has the label), comma-separated, all must hold' -r
complete -c mesh -n "__fish_mesh_using_subcommand get" -s o -l output -r -f -a "table\t''
wide\t'The table with the resources\' labels'
name\t'`kind.group/name`, one a line'
yaml\t''
json\t''"
complete -c mesh -n "__fish_mesh_using_subcommand get" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand get" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand get" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand get" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand get" -s A -l all-namespaces -d 'All namespaces'
complete -c mesh -n "__fish_mesh_using_subcommand get" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand get" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand delete" -s f -l filename -d 'Delete the resources in these files' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand delete" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand delete" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand delete" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand delete" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand delete" -l ignore-not-found -d 'Succeed when a resource does not exist'
complete -c mesh -n "__fish_mesh_using_subcommand delete" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand delete" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and not __fish_seen_subcommand_from run init token help" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and not __fish_seen_subcommand_from run init token help" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and not __fish_seen_subcommand_from run init token help" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and not __fish_seen_subcommand_from run init token help" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and not __fish_seen_subcommand_from run init token help" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and not __fish_seen_subcommand_from run init token help" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and not __fish_seen_subcommand_from run init token help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and not __fish_seen_subcommand_from run init token help" -f -a "run" -d 'Run a sidecar proxy in the foreground'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and not __fish_seen_subcommand_from run init token help" -f -a "init" -d 'Install the iptables rules that redirect this network namespace\'s TCP through its proxy (istio-init\'s job): outbound to 15001, inbound to 15006'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and not __fish_seen_subcommand_from run init token help" -f -a "token" -d 'Proxy credentials (local platform): tokens that register one workload only'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and not __fish_seen_subcommand_from run init token help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l workload -d 'The workload\'s name (unique in its namespace while connected)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -s n -l namespace -d 'The workload\'s namespace' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l service-account -d 'The workload\'s service account (its identity)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l labels -d 'The workload\'s labels, `k=v,k2=v2` (Services and subsets select on these)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l inbound -d 'Forward mesh traffic for workload PORT to the app at APP_ADDR (repeatable)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l outbound -d 'The outbound listener the app sends its requests to (also usable as HTTP_PROXY)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l capture-outbound -d 'Accept the app\'s connections redirected by `proxy init` here (Istio\'s 15001), e.g. `0.0.0.0:15001`; each goes where the app was connecting, through the mesh' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l capture-inbound -d 'Accept inbound connections redirected by `proxy init` here (Istio\'s 15006), e.g. `0.0.0.0:15006`; peers are then told `--inbound-bind`:PORT for each `--inbound` port' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l inbound-bind -d 'The address inbound listeners bind (the pod IP on Kubernetes); peers reach the workload there' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l outbound-tcp -d 'A local listener for a TCP service: connections to LISTEN_ADDR go to HOST:PORT through the mesh (repeatable), e.g. `tcp-echo:9000=127.0.0.1:0`' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l gateway-port -d 'Serve a Gateway server port (as an ingress gateway): Gateways whose selector matches this workload\'s labels are served on LISTEN_ADDR for their servers on PORT (repeatable), e.g. `80=127.0.0.1:8080`' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l admin -d 'The admin API (loopback)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l metrics -d 'Prometheus metrics at /stats/prometheus (Istio uses port 15020)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l meshd -d 'meshd\'s address (`IP:PORT` or `HOST:PORT`); by default read from MESH_HOME/meshd.json' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l token-file -d 'File holding this proxy\'s credential, read again at each reconnection: a proxy token from `mesh proxy token create` (bound to this workload and service account), or on Kubernetes the pod\'s projected service-account token. Without it (local development default) the proxy mints its own proxy token with the admin token in MESH_HOME' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l meshd-ca -d 'Talk TLS to `--meshd`, trusting the roots in FILE (on Kubernetes, the mesh root from the `mesh-ca-root-cert` ConfigMap)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l meshd-server-name -d 'The name meshd\'s certificate must carry (default: the host of `--meshd`)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l peer-protocol -d 'Protocol between proxies: `http1` keeps each request\'s protocol (HTTP/1.1 over a keep-alive pool, HTTP/2 and gRPC over HTTP/2), as Istio does by default; `h2` carries every request over HTTP/2 (Istio\'s h2UpgradePolicy UPGRADE). Negotiated by ALPN on mTLS' -r -f -a "h2\t''
http1\t''"
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l max-connections -d 'Open connections per listener; beyond it new connections are closed at once (0: half the open-files limit, less a reserve)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l max-requests -d 'Requests in flight per listener; beyond it requests get 503 (Envoy\'s overload answer)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l request-headers-timeout -d 'How long a request\'s head may take to arrive once it has begun (and a new connection to bring its first request)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l tls-handshake-timeout -d 'How long a TLS handshake on an inbound or gateway listener may take' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l stream-idle-timeout -d 'How long a request in flight may go without a byte either way (Envoy\'s 5 min default)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l idle-timeout -d 'How long a downstream connection may stay open with no request in flight (HTTP) or no byte either way (TCP). Default: the mesh config\'s `ISTIO_META_IDLE_TIMEOUT`, else 1h' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l workers -d 'Worker threads for the data path' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l no-outbound -d 'Do not open an outbound listener'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l access-log -d 'Write a JSON access log line per request to standard output (also turned on mesh-wide by `mesh install --set meshConfig.accessLogFile=/dev/stdout`)'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l proxy-uid -d 'The proxy\'s user id: its own connections are never captured' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l proxy-gid -d 'The proxy\'s group id (default: the uid)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l outbound-port -d 'Where the app\'s outbound TCP is redirected (the proxy\'s `--capture-outbound` port)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l inbound-port -d 'Where inbound TCP is redirected' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l include-inbound-ports -d 'Inbound ports to capture: `*` for all, or a comma-separated list; empty for none' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l exclude-inbound-ports -d 'Inbound ports never captured (the proxy\'s own: metrics, health, admin)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l exclude-outbound-ports -d 'Outbound destination ports never captured' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l exclude-outbound-cidrs -d 'Outbound destination CIDRs never captured' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l dry-run -d 'Print the rules instead of applying them'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l cleanup -d 'Remove the rules'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from token" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from token" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from token" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from token" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from token" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from token" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from token" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from token" -f -a "create" -d 'Mint a token that lets a proxy register WORKLOAD in the namespace (-n) as SERVICE_ACCOUNT, and nothing else; give it to `mesh proxy run --token-file`'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from token" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "run" -d 'Run a sidecar proxy in the foreground'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "init" -d 'Install the iptables rules that redirect this network namespace\'s TCP through its proxy (istio-init\'s job): outbound to 15001, inbound to 15006'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "token" -d 'Proxy credentials (local platform): tokens that register one workload only'
complete -c mesh -n "__fish_mesh_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand proxy-status" -s o -l output -r -f -a "table\t''
yaml\t''
json\t''"
complete -c mesh -n "__fish_mesh_using_subcommand proxy-status" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy-status" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand proxy-status" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand proxy-status" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy-status" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand proxy-status" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand proxy-status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand ps" -s o -l output -r -f -a "table\t''
yaml\t''
json\t''"
complete -c mesh -n "__fish_mesh_using_subcommand ps" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand ps" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand ps" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand ps" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand ps" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand ps" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand ps" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand proxy-config" -s o -l output -r -f -a "table\t''
yaml\t''
json\t''"
complete -c mesh -n "__fish_mesh_using_subcommand proxy-config" -l level -d 'With `log`: the level to set (trace, debug, info, warn, error, off, or a filter such as `mesh_proxy=debug,info`)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy-config" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy-config" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand proxy-config" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand proxy-config" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand proxy-config" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand proxy-config" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand proxy-config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand pc" -s o -l output -r -f -a "table\t''
yaml\t''
json\t''"
complete -c mesh -n "__fish_mesh_using_subcommand pc" -l level -d 'With `log`: the level to set (trace, debug, info, warn, error, off, or a filter such as `mesh_proxy=debug,info`)' -r
complete -c mesh -n "__fish_mesh_using_subcommand pc" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand pc" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand pc" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand pc" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand pc" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand pc" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand pc" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand route; and not __fish_seen_subcommand_from split help" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand route; and not __fish_seen_subcommand_from split help" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand route; and not __fish_seen_subcommand_from split help" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand route; and not __fish_seen_subcommand_from split help" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand route; and not __fish_seen_subcommand_from split help" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand route; and not __fish_seen_subcommand_from split help" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand route; and not __fish_seen_subcommand_from split help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand route; and not __fish_seen_subcommand_from split help" -f -a "split" -d 'Split a service\'s traffic between subsets: `mesh route split reviews v1=90 v2=10`'
complete -c mesh -n "__fish_mesh_using_subcommand route; and not __fish_seen_subcommand_from split help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand route; and __fish_seen_subcommand_from split" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand route; and __fish_seen_subcommand_from split" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand route; and __fish_seen_subcommand_from split" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand route; and __fish_seen_subcommand_from split" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand route; and __fish_seen_subcommand_from split" -l dry-run -d 'Print the resulting resources, change nothing'
complete -c mesh -n "__fish_mesh_using_subcommand route; and __fish_seen_subcommand_from split" -s y -l yes -d 'Do not ask for confirmation'
complete -c mesh -n "__fish_mesh_using_subcommand route; and __fish_seen_subcommand_from split" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand route; and __fish_seen_subcommand_from split" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand route; and __fish_seen_subcommand_from split" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "split" -d 'Split a service\'s traffic between subsets: `mesh route split reviews v1=90 v2=10`'
complete -c mesh -n "__fish_mesh_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and not __fish_seen_subcommand_from status rotate rotate-root help" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand cert; and not __fish_seen_subcommand_from status rotate rotate-root help" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand cert; and not __fish_seen_subcommand_from status rotate rotate-root help" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand cert; and not __fish_seen_subcommand_from status rotate rotate-root help" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand cert; and not __fish_seen_subcommand_from status rotate rotate-root help" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and not __fish_seen_subcommand_from status rotate rotate-root help" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and not __fish_seen_subcommand_from status rotate rotate-root help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and not __fish_seen_subcommand_from status rotate rotate-root help" -f -a "status" -d 'Each proxy\'s identity, certificate serial, expiry and issuing root; the CA\'s roots'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and not __fish_seen_subcommand_from status rotate rotate-root help" -f -a "rotate" -d 'Renew workload certificates now (all proxies, or one), without restarting anything'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and not __fish_seen_subcommand_from status rotate rotate-root help" -f -a "rotate-root" -d 'Replace the mesh\'s root CA with no downtime: the new root joins the trust bundle, every proxy is re-issued under it, then the old root is retired'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and not __fish_seen_subcommand_from status rotate rotate-root help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from status" -s o -l output -r -f -a "table\t''
yaml\t''
json\t''"
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from status" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from status" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from status" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from status" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from status" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate" -l workload -d 'Only this workload\'s proxy (`NAME` in the current namespace, or `NAMESPACE/NAME`)' -r
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate-root" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate-root" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate-root" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate-root" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate-root" -s y -l yes -d 'Do not ask for confirmation'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate-root" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate-root" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from rotate-root" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "status" -d 'Each proxy\'s identity, certificate serial, expiry and issuing root; the CA\'s roots'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "rotate" -d 'Renew workload certificates now (all proxies, or one), without restarting anything'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "rotate-root" -d 'Replace the mesh\'s root CA with no downtime: the new root joins the trust bundle, every proxy is re-issued under it, then the old root is retired'
complete -c mesh -n "__fish_mesh_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -s f -l filename -d 'File, directory or `-` (repeatable); without files the running mesh is analyzed' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -l mesh-config -d 'A MeshConfig fragment to analyze with (Istio\'s `--meshConfigFile`)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -l mesh-networks -d 'A MeshNetworks file (Istio\'s `meshNetworks`) to analyze' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -s o -l output -r -f -a "text\t''
json\t''
yaml\t''"
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -l failure-threshold -d 'Exit 1 when a message at this level or above is found' -r -f -a "info\t''
warning\t''
error\t''"
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -l output-threshold -d 'Print only messages at this level or above' -r -f -a "info\t''
warning\t''
error\t''"
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -s S -l suppress -d 'Suppress messages: `CODE=Kind name[.namespace]`, `*` matches anything (repeatable)' -r
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -l analyzer -d 'Run only this analyzer (repeatable), e.g. virtualservice.DestinationHostAnalyzer' -r
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -s R -l recursive -d 'Recurse into directories'
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -s A -l all-namespaces -d 'Analyze every namespace, not just -n'
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -l offline -d 'Do not add the running mesh\'s resources, even if meshd is up'
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -l list-analyzers -d 'List the analyzers and exit'
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand analyze" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand top" -l interval -d 'How long each measurement lasts (and how often a live view refreshes)' -r
complete -c mesh -n "__fish_mesh_using_subcommand top" -s o -l output -d '`table` refreshes live on a terminal; `json` and `yaml` print one measurement' -r -f -a "table\t''
yaml\t''
json\t''"
complete -c mesh -n "__fish_mesh_using_subcommand top" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand top" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand top" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand top" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand top" -s A -l all-namespaces -d 'Proxies in every namespace, not just -n'
complete -c mesh -n "__fish_mesh_using_subcommand top" -l once -d 'Print one measurement and exit, even on a terminal'
complete -c mesh -n "__fish_mesh_using_subcommand top" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand top" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand top" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand version" -s o -l output -r -f -a "table\t''
yaml\t''
json\t''"
complete -c mesh -n "__fish_mesh_using_subcommand version" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand version" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand version" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand version" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand version" -l short -d 'Only the client\'s version'
complete -c mesh -n "__fish_mesh_using_subcommand version" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand version" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand version" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand logs" -l tail -d 'Only the last N lines' -r
complete -c mesh -n "__fish_mesh_using_subcommand logs" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand logs" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand logs" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand logs" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand logs" -s f -l follow -d 'Keep printing what meshd writes, until interrupted'
complete -c mesh -n "__fish_mesh_using_subcommand logs" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand logs" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand wait" -l timeout -d 'How long to wait' -r
complete -c mesh -n "__fish_mesh_using_subcommand wait" -l proxies -d 'Also wait until at least N proxies are connected (proxies just started in a script)' -r
complete -c mesh -n "__fish_mesh_using_subcommand wait" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand wait" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand wait" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand wait" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand wait" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand wait" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand wait" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand check" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand check" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand check" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand check" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand check" -l pre -d 'The checks to run before `mesh install` (as `mesh precheck`)'
complete -c mesh -n "__fish_mesh_using_subcommand check" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand check" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand bug-report" -s o -l output -d 'Where to write the archive (a .tar.gz); default `mesh-bug-report-<time>.tar.gz` here' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand bug-report" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand bug-report" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand bug-report" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand bug-report" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand bug-report" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand bug-report" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand bug-report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and not __fish_seen_subcommand_from describe help" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and not __fish_seen_subcommand_from describe help" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and not __fish_seen_subcommand_from describe help" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and not __fish_seen_subcommand_from describe help" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and not __fish_seen_subcommand_from describe help" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and not __fish_seen_subcommand_from describe help" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and not __fish_seen_subcommand_from describe help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and not __fish_seen_subcommand_from describe help" -f -a "describe" -d 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`'
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and not __fish_seen_subcommand_from describe help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and __fish_seen_subcommand_from describe" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and __fish_seen_subcommand_from describe" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and __fish_seen_subcommand_from describe" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and __fish_seen_subcommand_from describe" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and __fish_seen_subcommand_from describe" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and __fish_seen_subcommand_from describe" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and __fish_seen_subcommand_from describe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and __fish_seen_subcommand_from help" -f -a "describe" -d 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`'
complete -c mesh -n "__fish_mesh_using_subcommand experimental; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand x; and not __fish_seen_subcommand_from describe help" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand x; and not __fish_seen_subcommand_from describe help" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand x; and not __fish_seen_subcommand_from describe help" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand x; and not __fish_seen_subcommand_from describe help" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand x; and not __fish_seen_subcommand_from describe help" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand x; and not __fish_seen_subcommand_from describe help" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand x; and not __fish_seen_subcommand_from describe help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand x; and not __fish_seen_subcommand_from describe help" -f -a "describe" -d 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`'
complete -c mesh -n "__fish_mesh_using_subcommand x; and not __fish_seen_subcommand_from describe help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand x; and __fish_seen_subcommand_from describe" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand x; and __fish_seen_subcommand_from describe" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand x; and __fish_seen_subcommand_from describe" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand x; and __fish_seen_subcommand_from describe" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand x; and __fish_seen_subcommand_from describe" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand x; and __fish_seen_subcommand_from describe" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand x; and __fish_seen_subcommand_from describe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand x; and __fish_seen_subcommand_from help" -f -a "describe" -d 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`'
complete -c mesh -n "__fish_mesh_using_subcommand x; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand completion" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand completion" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand completion" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand completion" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand completion" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand completion" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand completion" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and not __fish_seen_subcommand_from generate help" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and not __fish_seen_subcommand_from generate help" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and not __fish_seen_subcommand_from generate help" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and not __fish_seen_subcommand_from generate help" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and not __fish_seen_subcommand_from generate help" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and not __fish_seen_subcommand_from generate help" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and not __fish_seen_subcommand_from generate help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and not __fish_seen_subcommand_from generate help" -f -a "generate" -d 'Print the manifests of a profile as one YAML stream'
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and not __fish_seen_subcommand_from generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and __fish_seen_subcommand_from generate" -l profile -d 'Install profile' -r -f -a "default\t''
demo\t''
minimal\t''
empty\t''"
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and __fish_seen_subcommand_from generate" -l set -d 'Override a setting, e.g. `values.global.hub=registry.example/mesh` (repeatable)' -r
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and __fish_seen_subcommand_from generate" -s f -l filename -d 'IstioOperator-style overlay files (`spec.meshConfig`, `spec.components`, `spec.values`)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and __fish_seen_subcommand_from generate" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and __fish_seen_subcommand_from generate" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and __fish_seen_subcommand_from generate" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and __fish_seen_subcommand_from generate" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and __fish_seen_subcommand_from generate" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and __fish_seen_subcommand_from generate" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and __fish_seen_subcommand_from generate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and __fish_seen_subcommand_from help" -f -a "generate" -d 'Print the manifests of a profile as one YAML stream'
complete -c mesh -n "__fish_mesh_using_subcommand manifest; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand inject" -s f -l filename -d 'The YAML to inject (`-` for standard input)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand inject" -l set -d 'Settings as for `mesh manifest generate` (hub, tag, namespace of meshd)' -r
complete -c mesh -n "__fish_mesh_using_subcommand inject" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand inject" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand inject" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand inject" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand inject" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand inject" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand inject" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand kube-inject" -s f -l filename -d 'The YAML to inject (`-` for standard input)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand kube-inject" -l set -d 'Settings as for `mesh manifest generate` (hub, tag, namespace of meshd)' -r
complete -c mesh -n "__fish_mesh_using_subcommand kube-inject" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand kube-inject" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand kube-inject" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand kube-inject" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand kube-inject" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand kube-inject" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand kube-inject" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand demo" -l requests -d 'Requests sent at each step of the traffic shift' -r
complete -c mesh -n "__fish_mesh_using_subcommand demo" -s n -l namespace -d 'Namespace for commands and for resources without one' -r
complete -c mesh -n "__fish_mesh_using_subcommand demo" -l platform -d 'Where the mesh runs' -r -f -a "local\t'meshd and proxies as processes on this machine, state in MESH_HOME'
kube\t'meshd in a Kubernetes cluster'"
complete -c mesh -n "__fish_mesh_using_subcommand demo" -l kubeconfig -d 'Kubeconfig file (kube platform)' -r -F
complete -c mesh -n "__fish_mesh_using_subcommand demo" -l context -d 'Kubeconfig context (kube platform)' -r
complete -c mesh -n "__fish_mesh_using_subcommand demo" -l keep -d 'Keep the demo mesh running at the end until Ctrl-C'
complete -c mesh -n "__fish_mesh_using_subcommand demo" -s q -l quiet -d 'Print only errors and requested data'
complete -c mesh -n "__fish_mesh_using_subcommand demo" -l no-color -d 'Never colour output (also NO_COLOR)'
complete -c mesh -n "__fish_mesh_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "install" -d 'Install the mesh: start meshd (local platform: in the background, state in MESH_HOME)'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "uninstall" -d 'Stop meshd. Running proxies keep routing with their last config'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "verify-install" -d 'Check that the installation is complete and meshd is ready'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "precheck" -d 'Check that the mesh can be installed here (Kubernetes version, permissions, an existing Istio or mesh installation; on the local platform MESH_HOME and meshd\'s port)'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "apply" -d 'Create or update resources from files (Istio and Kubernetes YAML)'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "get" -d 'List or show resources'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "delete" -d 'Delete resources by kind and name, or those in files'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "proxy" -d 'Run a sidecar proxy for a workload'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "proxy-status" -d 'Show whether each proxy has the config meshd would send it now'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "proxy-config" -d 'Show what a proxy actually holds (read from its admin API), like istioctl proxy-config'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "route" -d 'Change how traffic is split between a service\'s subsets'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "cert" -d 'Workload certificates and the mesh CA: status, renewal, root rotation'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "analyze" -d 'Find problems in configuration: files offline, the running mesh, or files over it'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "top" -d 'Live traffic per service and workload: requests/s, success rate, latency, mTLS share'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "version" -d 'Print the versions of the CLI and the running control plane'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "logs" -d 'Print meshd\'s log (local platform: MESH_HOME/meshd.log)'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "wait" -d 'Wait until every connected proxy has acknowledged the config meshd holds now (exit 1, naming the proxies behind, on timeout)'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "check" -d 'Check the mesh\'s health, like `linkerd check`: meshd, certificates and their expiry, proxies in sync; `--pre` checks this machine before an install'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "bug-report" -d 'Collect what a bug report needs into one archive: meshd\'s log, the config, every proxy\'s sync state, config dump and certificates, the analysis; secrets redacted'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "experimental" -d 'Experimental commands, as istioctl\'s `x`: `describe pod|service NAME`'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "completion" -d 'Print a shell completion script'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "manifest" -d 'Kubernetes manifests for the mesh (CRDs, meshd, webhooks, ingress gateway)'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "inject" -d 'Add the sidecar (and its capture init container) to Kubernetes workloads in YAML, like `istioctl kube-inject`'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "demo" -d 'Run a small bookinfo-like mesh and shift traffic between versions, live'
complete -c mesh -n "__fish_mesh_using_subcommand help; and not __fish_seen_subcommand_from install uninstall verify-install precheck apply get delete proxy proxy-status proxy-config route cert analyze top version logs wait check bug-report experimental completion manifest inject demo help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mesh -n "__fish_mesh_using_subcommand help; and __fish_seen_subcommand_from proxy" -f -a "run" -d 'Run a sidecar proxy in the foreground'
complete -c mesh -n "__fish_mesh_using_subcommand help; and __fish_seen_subcommand_from proxy" -f -a "init" -d 'Install the iptables rules that redirect this network namespace\'s TCP through its proxy (istio-init\'s job): outbound to 15001, inbound to 15006'
complete -c mesh -n "__fish_mesh_using_subcommand help; and __fish_seen_subcommand_from proxy" -f -a "token" -d 'Proxy credentials (local platform): tokens that register one workload only'
complete -c mesh -n "__fish_mesh_using_subcommand help; and __fish_seen_subcommand_from route" -f -a "split" -d 'Split a service\'s traffic between subsets: `mesh route split reviews v1=90 v2=10`'
complete -c mesh -n "__fish_mesh_using_subcommand help; and __fish_seen_subcommand_from cert" -f -a "status" -d 'Each proxy\'s identity, certificate serial, expiry and issuing root; the CA\'s roots'
complete -c mesh -n "__fish_mesh_using_subcommand help; and __fish_seen_subcommand_from cert" -f -a "rotate" -d 'Renew workload certificates now (all proxies, or one), without restarting anything'
complete -c mesh -n "__fish_mesh_using_subcommand help; and __fish_seen_subcommand_from cert" -f -a "rotate-root" -d 'Replace the mesh\'s root CA with no downtime: the new root joins the trust bundle, every proxy is re-issued under it, then the old root is retired'
complete -c mesh -n "__fish_mesh_using_subcommand help; and __fish_seen_subcommand_from experimental" -f -a "describe" -d 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`'
complete -c mesh -n "__fish_mesh_using_subcommand help; and __fish_seen_subcommand_from manifest" -f -a "generate" -d 'Print the manifests of a profile as one YAML stream'
