
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'mesh' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'mesh'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'mesh' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Install the mesh: start meshd (local platform: in the background, state in MESH_HOME)')
            [CompletionResult]::new('uninstall', 'uninstall', [CompletionResultType]::ParameterValue, 'Stop meshd. Running proxies keep routing with their last config')
            [CompletionResult]::new('verify-install', 'verify-install', [CompletionResultType]::ParameterValue, 'Check that the installation is complete and meshd is ready')
            [CompletionResult]::new('precheck', 'precheck', [CompletionResultType]::ParameterValue, 'Check that the mesh can be installed here (Kubernetes version, permissions, an existing Istio or mesh installation; on the local platform MESH_HOME and meshd''s port)')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Create or update resources from files (Istio and Kubernetes YAML)')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'List or show resources')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete resources by kind and name, or those in files')
            [CompletionResult]::new('proxy', 'proxy', [CompletionResultType]::ParameterValue, 'Run a sidecar proxy for a workload')
            [CompletionResult]::new('proxy-status', 'proxy-status', [CompletionResultType]::ParameterValue, 'Show whether each proxy has the config meshd would send it now')
            [CompletionResult]::new('ps', 'ps', [CompletionResultType]::ParameterValue, 'Show whether each proxy has the config meshd would send it now')
            [CompletionResult]::new('proxy-config', 'proxy-config', [CompletionResultType]::ParameterValue, 'Show what a proxy actually holds (read from its admin API), like istioctl proxy-config')
            [CompletionResult]::new('pc', 'pc', [CompletionResultType]::ParameterValue, 'Show what a proxy actually holds (read from its admin API), like istioctl proxy-config')
            [CompletionResult]::new('route', 'route', [CompletionResultType]::ParameterValue, 'Change how traffic is split between a service''s subsets')
            [CompletionResult]::new('cert', 'cert', [CompletionResultType]::ParameterValue, 'Workload certificates and the mesh CA: status, renewal, root rotation')
            [CompletionResult]::new('analyze', 'analyze', [CompletionResultType]::ParameterValue, 'Find problems in configuration: files offline, the running mesh, or files over it')
            [CompletionResult]::new('top', 'top', [CompletionResultType]::ParameterValue, 'Live traffic per service and workload: requests/s, success rate, latency, mTLS share')
            [CompletionResult]::new('version', 'version', [CompletionResultType]::ParameterValue, 'Print the versions of the CLI and the running control plane')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Print meshd''s log (local platform: MESH_HOME/meshd.log)')
            [CompletionResult]::new('wait', 'wait', [CompletionResultType]::ParameterValue, 'Wait until every connected proxy has acknowledged the config meshd holds now (exit 1, naming the proxies behind, on timeout)')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check the mesh''s health, like `linkerd check`: meshd, certificates and their expiry, proxies in sync; `--pre` checks this machine before an install')
            [CompletionResult]::new('bug-report', 'bug-report', [CompletionResultType]::ParameterValue, 'Collect what a bug report needs into one archive: meshd''s log, the config, every proxy''s sync state, config dump and certificates, the analysis; secrets redacted')
            [CompletionResult]::new('experimental', 'experimental', [CompletionResultType]::ParameterValue, 'Experimental commands, as istioctl''s `x`: `describe pod|service NAME`')
            [CompletionResult]::new('x', 'x', [CompletionResultType]::ParameterValue, 'Experimental commands, as istioctl''s `x`: `describe pod|service NAME`')
            [CompletionResult]::new('completion', 'completion', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('manifest', 'manifest', [CompletionResultType]::ParameterValue, 'Kubernetes manifests for the mesh (CRDs, meshd, webhooks, ingress gateway)')
            [CompletionResult]::new('inject', 'inject', [CompletionResultType]::ParameterValue, 'Add the sidecar (and its capture init container) to Kubernetes workloads in YAML, like `istioctl kube-inject`')
            [CompletionResult]::new('kube-inject', 'kube-inject', [CompletionResultType]::ParameterValue, 'Add the sidecar (and its capture init container) to Kubernetes workloads in YAML, like `istioctl kube-inject`')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Run a small bookinfo-like mesh and shift traffic between versions, live')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;install' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Install profile (shapes the Kubernetes manifests; recorded on the local platform)')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting, e.g. `meshd.listen=127.0.0.1:0` (repeatable)')
            [CompletionResult]::new('--wait-timeout', '--wait-timeout', [CompletionResultType]::ParameterName, 'Kube platform: how long to wait for meshd to be ready, in seconds')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be done, change nothing')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;uninstall' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('--purge', '--purge', [CompletionResultType]::ParameterName, 'Also delete MESH_HOME''s stored config, token and logs')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;verify-install' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'The profile that was installed (kube platform)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;precheck' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;apply' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'File, directory or `-` for stdin (repeatable)')
            [CompletionResult]::new('--filename', '--filename', [CompletionResultType]::ParameterName, 'File, directory or `-` for stdin (repeatable)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long --wait waits')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-R', '-R ', [CompletionResultType]::ParameterName, 'Recurse into directories')
            [CompletionResult]::new('--recursive', '--recursive', [CompletionResultType]::ParameterName, 'Recurse into directories')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Validate and report, store nothing')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Apply even when the analysis finds errors in what is applied (e.g. a route to a subset no DestinationRule defines), which would break traffic')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Then wait until every connected proxy has acknowledged the new config (see `mesh wait`)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;get' {
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Only resources whose labels match: `app=reviews`, `tier!=db`, `canary` (has the label), comma-separated, all must hold')
            [CompletionResult]::new('--selector', '--selector', [CompletionResultType]::ParameterName, 'Only resources whose labels match: `app=reviews`, `tier!=db`, `canary` (has the label), comma-separated, all must hold')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'o')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'output')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'All namespaces')
            [CompletionResult]::new('--all-namespaces', '--all-namespaces', [CompletionResultType]::ParameterName, 'All namespaces')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;delete' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Delete the resources in these files')
            [CompletionResult]::new('--filename', '--filename', [CompletionResultType]::ParameterName, 'Delete the resources in these files')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Succeed when a resource does not exist')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;proxy' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a sidecar proxy in the foreground')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Install the iptables rules that redirect this network namespace''s TCP through its proxy (istio-init''s job): outbound to 15001, inbound to 15006')
            [CompletionResult]::new('token', 'token', [CompletionResultType]::ParameterValue, 'Proxy credentials (local platform): tokens that register one workload only')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;proxy;run' {
            [CompletionResult]::new('--workload', '--workload', [CompletionResultType]::ParameterName, 'The workload''s name (unique in its namespace while connected)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'The workload''s namespace')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'The workload''s namespace')
            [CompletionResult]::new('--service-account', '--service-account', [CompletionResultType]::ParameterName, 'The workload''s service account (its identity)')
            [CompletionResult]::new('--labels', '--labels', [CompletionResultType]::ParameterName, 'The workload''s labels, `k=v,k2=v2` (Services and subsets select on these)')
            [CompletionResult]::new('--inbound', '--inbound', [CompletionResultType]::ParameterName, 'Forward mesh traffic for workload PORT to the app at APP_ADDR (repeatable)')
            [CompletionResult]::new('--outbound', '--outbound', [CompletionResultType]::ParameterName, 'The outbound listener the app sends its requests to (also usable as HTTP_PROXY)')
            [CompletionResult]::new('--capture-outbound', '--capture-outbound', [CompletionResultType]::ParameterName, 'Accept the app''s connections redirected by `proxy init` here (Istio''s 15001), e.g. `0.0.0.0:15001`; each goes where the app was connecting, through the mesh')
            [CompletionResult]::new('--capture-inbound', '--capture-inbound', [CompletionResultType]::ParameterName, 'Accept inbound connections redirected by `proxy init` here (Istio''s 15006), e.g. `0.0.0.0:15006`; peers are then told `--inbound-bind`:PORT for each `--inbound` port')
            [CompletionResult]::new('--inbound-bind', '--inbound-bind', [CompletionResultType]::ParameterName, 'The address inbound listeners bind (the pod IP on Kubernetes); peers reach the workload there')
            [CompletionResult]::new('--outbound-tcp', '--outbound-tcp', [CompletionResultType]::ParameterName, 'A local listener for a TCP service: connections to LISTEN_ADDR go to HOST:PORT through the mesh (repeatable), e.g. `tcp-echo:9000=127.0.0.1:0`')
            [CompletionResult]::new('--gateway-port', '--gateway-port', [CompletionResultType]::ParameterName, 'Serve a Gateway server port (as an ingress gateway): Gateways whose selector matches this workload''s labels are served on LISTEN_ADDR for their servers on PORT (repeatable), e.g. `80=127.0.0.1:8080`')
            [CompletionResult]::new('--admin', '--admin', [CompletionResultType]::ParameterName, 'The admin API (loopback)')
            [CompletionResult]::new('--metrics', '--metrics', [CompletionResultType]::ParameterName, 'Prometheus metrics at /stats/prometheus (Istio uses port 15020)')
            [CompletionResult]::new('--meshd', '--meshd', [CompletionResultType]::ParameterName, 'meshd''s address (`IP:PORT` or `HOST:PORT`); by default read from MESH_HOME/meshd.json')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'File holding this proxy''s credential, read again at each reconnection: a proxy token from `mesh proxy token create` (bound to this workload and service account), or on Kubernetes the pod''s projected service-account token. Without it (local development default) the proxy mints its own proxy token with the admin token in MESH_HOME')
            [CompletionResult]::new('--meshd-ca', '--meshd-ca', [CompletionResultType]::ParameterName, 'Talk TLS to `--meshd`, trusting the roots in FILE (on Kubernetes, the mesh root from the `mesh-ca-root-cert` ConfigMap)')
            [CompletionResult]::new('--meshd-server-name', '--meshd-server-name', [CompletionResultType]::ParameterName, 'The name meshd''s certificate must carry (default: the host of `--meshd`)')
            [CompletionResult]::new('--peer-protocol', '--peer-protocol', [CompletionResultType]::ParameterName, 'Protocol between proxies: `http1` keeps each request''s protocol (HTTP/1.1 over a keep-alive pool, HTTP/2 and gRPC over HTTP/2), as Istio does by default; `h2` carries every request over HTTP/2 (Istio''s h2UpgradePolicy UPGRADE). Negotiated by ALPN on mTLS')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Open connections per listener; beyond it new connections are closed at once (0: half the open-files limit, less a reserve)')
            [CompletionResult]::new('--max-requests', '--max-requests', [CompletionResultType]::ParameterName, 'Requests in flight per listener; beyond it requests get 503 (Envoy''s overload answer)')
            [CompletionResult]::new('--request-headers-timeout', '--request-headers-timeout', [CompletionResultType]::ParameterName, 'How long a request''s head may take to arrive once it has begun (and a new connection to bring its first request)')
            [CompletionResult]::new('--tls-handshake-timeout', '--tls-handshake-timeout', [CompletionResultType]::ParameterName, 'How long a TLS handshake on an inbound or gateway listener may take')
            [CompletionResult]::new('--stream-idle-timeout', '--stream-idle-timeout', [CompletionResultType]::ParameterName, 'How long a request in flight may go without a byte either way (Envoy''s 5 min default)')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'How long a downstream connection may stay open with no request in flight (HTTP) or no byte either way (TCP). Default: the mesh config''s `ISTIO_META_IDLE_TIMEOUT`, else 1h')
            [CompletionResult]::new('--workers', '--workers', [CompletionResultType]::ParameterName, 'Worker threads for the data path')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('--no-outbound', '--no-outbound', [CompletionResultType]::ParameterName, 'Do not open an outbound listener')
            [CompletionResult]::new('--access-log', '--access-log', [CompletionResultType]::ParameterName, 'Write a JSON access log line per request to standard output (also turned on mesh-wide by `mesh install --set meshConfig.accessLogFile=/dev/stdout`)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;proxy;init' {
            [CompletionResult]::new('--proxy-uid', '--proxy-uid', [CompletionResultType]::ParameterName, 'The proxy''s user id: its own connections are never captured')
            [CompletionResult]::new('--proxy-gid', '--proxy-gid', [CompletionResultType]::ParameterName, 'The proxy''s group id (default: the uid)')
            [CompletionResult]::new('--outbound-port', '--outbound-port', [CompletionResultType]::ParameterName, 'Where the app''s outbound TCP is redirected (the proxy''s `--capture-outbound` port)')
            [CompletionResult]::new('--inbound-port', '--inbound-port', [CompletionResultType]::ParameterName, 'Where inbound TCP is redirected')
            [CompletionResult]::new('--include-inbound-ports', '--include-inbound-ports', [CompletionResultType]::ParameterName, 'Inbound ports to capture: `*` for all, or a comma-separated list; empty for none')
            [CompletionResult]::new('--exclude-inbound-ports', '--exclude-inbound-ports', [CompletionResultType]::ParameterName, 'Inbound ports never captured (the proxy''s own: metrics, health, admin)')
            [CompletionResult]::new('--exclude-outbound-ports', '--exclude-outbound-ports', [CompletionResultType]::ParameterName, 'Outbound destination ports never captured')
            [CompletionResult]::new('--exclude-outbound-cidrs', '--exclude-outbound-cidrs', [CompletionResultType]::ParameterName, 'Outbound destination CIDRs never captured')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the rules instead of applying them')
            [CompletionResult]::new('--cleanup', '--cleanup', [CompletionResultType]::ParameterName, 'Remove the rules')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;proxy;token' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Mint a token that lets a proxy register WORKLOAD in the namespace (-n) as SERVICE_ACCOUNT, and nothing else; give it to `mesh proxy run --token-file`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;proxy;token;create' {
            [CompletionResult]::new('--workload', '--workload', [CompletionResultType]::ParameterName, 'The workload the token registers')
            [CompletionResult]::new('--service-account', '--service-account', [CompletionResultType]::ParameterName, 'The service account (identity) the workload runs as')
            [CompletionResult]::new('--valid-for', '--valid-for', [CompletionResultType]::ParameterName, 'How long the token is good for (e.g. 24h, 720h); default: until MESH_HOME''s token key is replaced')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Write the token to FILE (mode 0600) instead of standard output')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;proxy;token;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Mint a token that lets a proxy register WORKLOAD in the namespace (-n) as SERVICE_ACCOUNT, and nothing else; give it to `mesh proxy run --token-file`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;proxy;token;help;create' {
            break
        }
        'mesh;proxy;token;help;help' {
            break
        }
        'mesh;proxy;help' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a sidecar proxy in the foreground')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Install the iptables rules that redirect this network namespace''s TCP through its proxy (istio-init''s job): outbound to 15001, inbound to 15006')
            [CompletionResult]::new('token', 'token', [CompletionResultType]::ParameterValue, 'Proxy credentials (local platform): tokens that register one workload only')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;proxy;help;run' {
            break
        }
        'mesh;proxy;help;init' {
            break
        }
        'mesh;proxy;help;token' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Mint a token that lets a proxy register WORKLOAD in the namespace (-n) as SERVICE_ACCOUNT, and nothing else; give it to `mesh proxy run --token-file`')
            break
        }
        'mesh;proxy;help;token;create' {
            break
        }
        'mesh;proxy;help;help' {
            break
        }
        'mesh;proxy-status' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'o')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'output')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;ps' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'o')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'output')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;proxy-config' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'o')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'output')
            [CompletionResult]::new('--level', '--level', [CompletionResultType]::ParameterName, 'With `log`: the level to set (trace, debug, info, warn, error, off, or a filter such as `mesh_proxy=debug,info`)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;pc' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'o')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'output')
            [CompletionResult]::new('--level', '--level', [CompletionResultType]::ParameterName, 'With `log`: the level to set (trace, debug, info, warn, error, off, or a filter such as `mesh_proxy=debug,info`)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;route' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('split', 'split', [CompletionResultType]::ParameterValue, 'Split a service''s traffic between subsets: `mesh route split reviews v1=90 v2=10`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;route;split' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the resulting resources, change nothing')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;route;help' {
            [CompletionResult]::new('split', 'split', [CompletionResultType]::ParameterValue, 'Split a service''s traffic between subsets: `mesh route split reviews v1=90 v2=10`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;route;help;split' {
            break
        }
        'mesh;route;help;help' {
            break
        }
        'mesh;cert' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Each proxy''s identity, certificate serial, expiry and issuing root; the CA''s roots')
            [CompletionResult]::new('rotate', 'rotate', [CompletionResultType]::ParameterValue, 'Renew workload certificates now (all proxies, or one), without restarting anything')
            [CompletionResult]::new('rotate-root', 'rotate-root', [CompletionResultType]::ParameterValue, 'Replace the mesh''s root CA with no downtime: the new root joins the trust bundle, every proxy is re-issued under it, then the old root is retired')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;cert;status' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'o')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'output')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;cert;rotate' {
            [CompletionResult]::new('--workload', '--workload', [CompletionResultType]::ParameterName, 'Only this workload''s proxy (`NAME` in the current namespace, or `NAMESPACE/NAME`)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;cert;rotate-root' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;cert;help' {
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Each proxy''s identity, certificate serial, expiry and issuing root; the CA''s roots')
            [CompletionResult]::new('rotate', 'rotate', [CompletionResultType]::ParameterValue, 'Renew workload certificates now (all proxies, or one), without restarting anything')
            [CompletionResult]::new('rotate-root', 'rotate-root', [CompletionResultType]::ParameterValue, 'Replace the mesh''s root CA with no downtime: the new root joins the trust bundle, every proxy is re-issued under it, then the old root is retired')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;cert;help;status' {
            break
        }
        'mesh;cert;help;rotate' {
            break
        }
        'mesh;cert;help;rotate-root' {
            break
        }
        'mesh;cert;help;help' {
            break
        }
        'mesh;analyze' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'File, directory or `-` (repeatable); without files the running mesh is analyzed')
            [CompletionResult]::new('--filename', '--filename', [CompletionResultType]::ParameterName, 'File, directory or `-` (repeatable); without files the running mesh is analyzed')
            [CompletionResult]::new('--mesh-config', '--mesh-config', [CompletionResultType]::ParameterName, 'A MeshConfig fragment to analyze with (Istio''s `--meshConfigFile`)')
            [CompletionResult]::new('--mesh-networks', '--mesh-networks', [CompletionResultType]::ParameterName, 'A MeshNetworks file (Istio''s `meshNetworks`) to analyze')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'o')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'output')
            [CompletionResult]::new('--failure-threshold', '--failure-threshold', [CompletionResultType]::ParameterName, 'Exit 1 when a message at this level or above is found')
            [CompletionResult]::new('--output-threshold', '--output-threshold', [CompletionResultType]::ParameterName, 'Print only messages at this level or above')
            [CompletionResult]::new('-S', '-S ', [CompletionResultType]::ParameterName, 'Suppress messages: `CODE=Kind name[.namespace]`, `*` matches anything (repeatable)')
            [CompletionResult]::new('--suppress', '--suppress', [CompletionResultType]::ParameterName, 'Suppress messages: `CODE=Kind name[.namespace]`, `*` matches anything (repeatable)')
            [CompletionResult]::new('--analyzer', '--analyzer', [CompletionResultType]::ParameterName, 'Run only this analyzer (repeatable), e.g. virtualservice.DestinationHostAnalyzer')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-R', '-R ', [CompletionResultType]::ParameterName, 'Recurse into directories')
            [CompletionResult]::new('--recursive', '--recursive', [CompletionResultType]::ParameterName, 'Recurse into directories')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Analyze every namespace, not just -n')
            [CompletionResult]::new('--all-namespaces', '--all-namespaces', [CompletionResultType]::ParameterName, 'Analyze every namespace, not just -n')
            [CompletionResult]::new('--offline', '--offline', [CompletionResultType]::ParameterName, 'Do not add the running mesh''s resources, even if meshd is up')
            [CompletionResult]::new('--list-analyzers', '--list-analyzers', [CompletionResultType]::ParameterName, 'List the analyzers and exit')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;top' {
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'How long each measurement lasts (and how often a live view refreshes)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`table` refreshes live on a terminal; `json` and `yaml` print one measurement')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`table` refreshes live on a terminal; `json` and `yaml` print one measurement')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Proxies in every namespace, not just -n')
            [CompletionResult]::new('--all-namespaces', '--all-namespaces', [CompletionResultType]::ParameterName, 'Proxies in every namespace, not just -n')
            [CompletionResult]::new('--once', '--once', [CompletionResultType]::ParameterName, 'Print one measurement and exit, even on a terminal')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;version' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'o')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'output')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('--short', '--short', [CompletionResultType]::ParameterName, 'Only the client''s version')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;logs' {
            [CompletionResult]::new('--tail', '--tail', [CompletionResultType]::ParameterName, 'Only the last N lines')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Keep printing what meshd writes, until interrupted')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'Keep printing what meshd writes, until interrupted')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;wait' {
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait')
            [CompletionResult]::new('--proxies', '--proxies', [CompletionResultType]::ParameterName, 'Also wait until at least N proxies are connected (proxies just started in a script)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;check' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('--pre', '--pre', [CompletionResultType]::ParameterName, 'The checks to run before `mesh install` (as `mesh precheck`)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;bug-report' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Where to write the archive (a .tar.gz); default `mesh-bug-report-<time>.tar.gz` here')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Where to write the archive (a .tar.gz); default `mesh-bug-report-<time>.tar.gz` here')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;experimental' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('describe', 'describe', [CompletionResultType]::ParameterValue, 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;x' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('describe', 'describe', [CompletionResultType]::ParameterValue, 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;experimental;describe' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;x;describe' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;experimental;help' {
            [CompletionResult]::new('describe', 'describe', [CompletionResultType]::ParameterValue, 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;experimental;help;describe' {
            break
        }
        'mesh;experimental;help;help' {
            break
        }
        'mesh;x;help' {
            [CompletionResult]::new('describe', 'describe', [CompletionResultType]::ParameterValue, 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;x;help;describe' {
            break
        }
        'mesh;x;help;help' {
            break
        }
        'mesh;completion' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;manifest' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Print the manifests of a profile as one YAML stream')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;manifest;generate' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Install profile')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting, e.g. `values.global.hub=registry.example/mesh` (repeatable)')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'IstioOperator-style overlay files (`spec.meshConfig`, `spec.components`, `spec.values`)')
            [CompletionResult]::new('--filename', '--filename', [CompletionResultType]::ParameterName, 'IstioOperator-style overlay files (`spec.meshConfig`, `spec.components`, `spec.values`)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;manifest;help' {
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Print the manifests of a profile as one YAML stream')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;manifest;help;generate' {
            break
        }
        'mesh;manifest;help;help' {
            break
        }
        'mesh;inject' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'The YAML to inject (`-` for standard input)')
            [CompletionResult]::new('--filename', '--filename', [CompletionResultType]::ParameterName, 'The YAML to inject (`-` for standard input)')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Settings as for `mesh manifest generate` (hub, tag, namespace of meshd)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;kube-inject' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'The YAML to inject (`-` for standard input)')
            [CompletionResult]::new('--filename', '--filename', [CompletionResultType]::ParameterName, 'The YAML to inject (`-` for standard input)')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Settings as for `mesh manifest generate` (hub, tag, namespace of meshd)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;demo' {
            [CompletionResult]::new('--requests', '--requests', [CompletionResultType]::ParameterName, 'Requests sent at each step of the traffic shift')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace for commands and for resources without one')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Where the mesh runs')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Kubeconfig file (kube platform)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context (kube platform)')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the demo mesh running at the end until Ctrl-C')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and requested data')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'Never colour output (also NO_COLOR)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mesh;help' {
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Install the mesh: start meshd (local platform: in the background, state in MESH_HOME)')
            [CompletionResult]::new('uninstall', 'uninstall', [CompletionResultType]::ParameterValue, 'Stop meshd. Running proxies keep routing with their last config')
            [CompletionResult]::new('verify-install', 'verify-install', [CompletionResultType]::ParameterValue, 'Check that the installation is complete and meshd is ready')
            [CompletionResult]::new('precheck', 'precheck', [CompletionResultType]::ParameterValue, 'Check that the mesh can be installed here (Kubernetes version, permissions, an existing Istio or mesh installation; on the local platform MESH_HOME and meshd''s port)')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Create or update resources from files (Istio and Kubernetes YAML)')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'List or show resources')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete resources by kind and name, or those in files')
            [CompletionResult]::new('proxy', 'proxy', [CompletionResultType]::ParameterValue, 'Run a sidecar proxy for a workload')
            [CompletionResult]::new('proxy-status', 'proxy-status', [CompletionResultType]::ParameterValue, 'Show whether each proxy has the config meshd would send it now')
            [CompletionResult]::new('proxy-config', 'proxy-config', [CompletionResultType]::ParameterValue, 'Show what a proxy actually holds (read from its admin API), like istioctl proxy-config')
            [CompletionResult]::new('route', 'route', [CompletionResultType]::ParameterValue, 'Change how traffic is split between a service''s subsets')
            [CompletionResult]::new('cert', 'cert', [CompletionResultType]::ParameterValue, 'Workload certificates and the mesh CA: status, renewal, root rotation')
            [CompletionResult]::new('analyze', 'analyze', [CompletionResultType]::ParameterValue, 'Find problems in configuration: files offline, the running mesh, or files over it')
            [CompletionResult]::new('top', 'top', [CompletionResultType]::ParameterValue, 'Live traffic per service and workload: requests/s, success rate, latency, mTLS share')
            [CompletionResult]::new('version', 'version', [CompletionResultType]::ParameterValue, 'Print the versions of the CLI and the running control plane')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Print meshd''s log (local platform: MESH_HOME/meshd.log)')
            [CompletionResult]::new('wait', 'wait', [CompletionResultType]::ParameterValue, 'Wait until every connected proxy has acknowledged the config meshd holds now (exit 1, naming the proxies behind, on timeout)')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check the mesh''s health, like `linkerd check`: meshd, certificates and their expiry, proxies in sync; `--pre` checks this machine before an install')
            [CompletionResult]::new('bug-report', 'bug-report', [CompletionResultType]::ParameterValue, 'Collect what a bug report needs into one archive: meshd''s log, the config, every proxy''s sync state, config dump and certificates, the analysis; secrets redacted')
            [CompletionResult]::new('experimental', 'experimental', [CompletionResultType]::ParameterValue, 'Experimental commands, as istioctl''s `x`: `describe pod|service NAME`')
            [CompletionResult]::new('completion', 'completion', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('manifest', 'manifest', [CompletionResultType]::ParameterValue, 'Kubernetes manifests for the mesh (CRDs, meshd, webhooks, ingress gateway)')
            [CompletionResult]::new('inject', 'inject', [CompletionResultType]::ParameterValue, 'Add the sidecar (and its capture init container) to Kubernetes workloads in YAML, like `istioctl kube-inject`')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Run a small bookinfo-like mesh and shift traffic between versions, live')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mesh;help;install' {
            break
        }
        'mesh;help;uninstall' {
            break
        }
        'mesh;help;verify-install' {
            break
        }
        'mesh;help;precheck' {
            break
        }
        'mesh;help;apply' {
            break
        }
        'mesh;help;get' {
            break
        }
        'mesh;help;delete' {
            break
        }
        'mesh;help;proxy' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a sidecar proxy in the foreground')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Install the iptables rules that redirect this network namespace''s TCP through its proxy (istio-init''s job): outbound to 15001, inbound to 15006')
            [CompletionResult]::new('token', 'token', [CompletionResultType]::ParameterValue, 'Proxy credentials (local platform): tokens that register one workload only')
            break
        }
        'mesh;help;proxy;run' {
            break
        }
        'mesh;help;proxy;init' {
            break
        }
        'mesh;help;proxy;token' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Mint a token that lets a proxy register WORKLOAD in the namespace (-n) as SERVICE_ACCOUNT, and nothing else; give it to `mesh proxy run --token-file`')
            break
        }
        'mesh;help;proxy;token;create' {
            break
        }
        'mesh;help;proxy-status' {
            break
        }
        'mesh;help;proxy-config' {
            break
        }
        'mesh;help;route' {
            [CompletionResult]::new('split', 'split', [CompletionResultType]::ParameterValue, 'Split a service''s traffic between subsets: `mesh route split reviews v1=90 v2=10`')
            break
        }
        'mesh;help;route;split' {
            break
        }
        'mesh;help;cert' {
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Each proxy''s identity, certificate serial, expiry and issuing root; the CA''s roots')
            [CompletionResult]::new('rotate', 'rotate', [CompletionResultType]::ParameterValue, 'Renew workload certificates now (all proxies, or one), without restarting anything')
            [CompletionResult]::new('rotate-root', 'rotate-root', [CompletionResultType]::ParameterValue, 'Replace the mesh''s root CA with no downtime: the new root joins the trust bundle, every proxy is re-issued under it, then the old root is retired')
            break
        }
        'mesh;help;cert;status' {
            break
        }
        'mesh;help;cert;rotate' {
            break
        }
        'mesh;help;cert;rotate-root' {
            break
        }
        'mesh;help;analyze' {
            break
        }
        'mesh;help;top' {
            break
        }
        'mesh;help;version' {
            break
        }
        'mesh;help;logs' {
            break
        }
        'mesh;help;wait' {
            break
        }
        'mesh;help;check' {
            break
        }
        'mesh;help;bug-report' {
            break
        }
        'mesh;help;experimental' {
            [CompletionResult]::new('describe', 'describe', [CompletionResultType]::ParameterValue, 'What applies to a pod (a connected proxy) or a service: its Services and ports with their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService routes and their weights, authorization and JWT policies, as `istioctl x describe`')
            break
        }
        'mesh;help;experimental;describe' {
            break
        }
        'mesh;help;completion' {
            break
        }
        'mesh;help;manifest' {
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Print the manifests of a profile as one YAML stream')
            break
        }
        'mesh;help;manifest;generate' {
            break
        }
        'mesh;help;inject' {
            break
        }
        'mesh;help;demo' {
            break
        }
        'mesh;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
