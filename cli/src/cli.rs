//! The command line: every subcommand and flag, with help from doc comments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "mesh", version = mesh_api::VERSION, about = "A service mesh that speaks Istio's configuration API", propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Namespace for commands and for resources without one.
    #[arg(short = 'n', long, global = true, env = "MESH_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Where the mesh runs.
    #[arg(long, global = true, env = "MESH_PLATFORM", value_enum, default_value_t = Platform::Local)]
    pub platform: Platform,
    /// Kubeconfig file (kube platform).
    #[arg(long, global = true, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (kube platform).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Print only errors and requested data.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Never colour output (also NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Whether -n (or MESH_NAMESPACE) was given, rather than the default: listings across
    /// namespaces (`proxy-status`) then show that namespace only.
    #[arg(skip)]
    pub namespace_given: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Platform {
    /// meshd and proxies as processes on this machine, state in MESH_HOME.
    Local,
    /// meshd in a Kubernetes cluster.
    Kube,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Table,
    Yaml,
    Json,
}

// Parsed once at start; boxing the big variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install the mesh: start meshd (local platform: in the background, state in MESH_HOME).
    Install(InstallArgs),
    /// Stop meshd. Running proxies keep routing with their last config.
    Uninstall(UninstallArgs),
    /// Check that the installation is complete and meshd is ready.
    VerifyInstall(VerifyInstallArgs),
    /// Check that the mesh can be installed here (Kubernetes version, permissions, an existing
    /// Istio or mesh installation; on the local platform MESH_HOME and meshd's port).
    Precheck,
    /// Create or update resources from files (Istio and Kubernetes YAML).
    Apply(ApplyArgs),
    /// List or show resources.
    Get(GetArgs),
    /// Delete resources by kind and name, or those in files.
    Delete(DeleteArgs),
    /// Run a sidecar proxy for a workload.
    #[command(subcommand)]
    Proxy(ProxyCommand),
    /// Show whether each proxy has the config meshd would send it now.
    #[command(visible_alias = "ps")]
    ProxyStatus(ProxyStatusArgs),
    /// Show what a proxy actually holds (read from its admin API), like istioctl proxy-config.
    #[command(visible_alias = "pc")]
    ProxyConfig(ProxyConfigArgs),
    /// Change how traffic is split between a service's subsets.
    #[command(subcommand)]
    Route(RouteCommand),
    /// Progressive delivery: move traffic to a canary step by step, judged by its metrics,
    /// rolled back on failure.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Workload certificates and the mesh CA: status, renewal, root rotation.
    #[command(subcommand)]
    Cert(CertCommand),
    /// TLS credentials for gateways and TLS origination (`credentialName`), kept by meshd.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Find problems in configuration: files offline, the running mesh, or files over it.
    Analyze(AnalyzeArgs),
    /// Live traffic per service and workload: requests/s, success rate, latency, mTLS share.
    Top(TopArgs),
    /// The service graph and per-service figures in a browser, live (a page on loopback).
    Dashboard(DashboardArgs),
    /// Print the versions of the CLI and the running control plane.
    Version(VersionArgs),
    /// Print meshd's log (local platform: MESH_HOME/meshd.log).
    Logs(LogsArgs),
    /// Wait until every connected proxy has acknowledged the config meshd holds now (exit 1,
    /// naming the proxies behind, on timeout).
    Wait(WaitArgs),
    /// Check the mesh's health, like `linkerd check`: meshd, certificates and their expiry,
    /// proxies in sync; `--pre` checks this machine before an install.
    Check(CheckArgs),
    /// Collect what a bug report needs into one archive: meshd's log, the config, every
    /// proxy's sync state, config dump and certificates, the analysis; secrets redacted.
    BugReport(BugReportArgs),
    /// Experimental commands, as istioctl's `x`: `describe pod|service NAME`.
    #[command(subcommand, visible_alias = "x")]
    Experimental(ExperimentalCommand),
    /// Print a shell completion script.
    Completion(CompletionArgs),
    /// Kubernetes manifests for the mesh (CRDs, meshd, webhooks, ingress gateway).
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Add the sidecar (and its capture init container) to Kubernetes workloads in YAML, like
    /// `istioctl kube-inject`.
    #[command(visible_alias = "kube-inject")]
    Inject(InjectArgs),
    /// Run a small bookinfo-like mesh and shift traffic between versions, live.
    Demo(DemoArgs),
    #[command(name = "__meshd", hide = true)]
    Meshd(MeshdArgs),
    #[command(name = "__demo-app", hide = true)]
    DemoApp(DemoAppArgs),
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Install profile (shapes the Kubernetes manifests; recorded on the local platform).
    #[arg(long, default_value = "default", value_parser = ["default", "demo", "minimal", "empty"])]
    pub profile: String,
    /// Override a setting, e.g. `meshd.listen=127.0.0.1:0` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Show what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Kube platform: how long to wait for meshd to be ready, in seconds.
    #[arg(long, default_value_t = 300)]
    pub wait_timeout: u64,
    /// Kube platform: replace CRDs that mesh did not create (Istio's). Without it they are
    /// kept as they are and used, or the install is refused if they lack a version mesh needs.
    #[arg(long)]
    pub replace_crds: bool,
}

#[derive(Debug, Args)]
pub struct VerifyInstallArgs {
    /// The profile that was installed (kube platform).
    #[arg(long, default_value = "default", value_parser = meshd::manifest::PROFILES)]
    pub profile: String,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Also delete MESH_HOME's stored config, token and logs (kube platform: the CRDs mesh
    /// created and the namespace; CRDs it did not create stay).
    #[arg(long)]
    pub purge: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// File, directory or `-` for stdin (repeatable).
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Recurse into directories.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Validate and report, store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply even when the analysis finds errors in what is applied (e.g. a route to a subset
    /// no DestinationRule defines), which would break traffic.
    #[arg(long)]
    pub force: bool,
    /// Then wait until every connected proxy has acknowledged the new config (see `mesh wait`).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The checks to run before `mesh install` (as `mesh precheck`).
    #[arg(long)]
    pub pre: bool,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// How long to wait.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Also wait until at least N proxies are connected (proxies just started in a script).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub proxies: usize,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// services (svc), virtualservices (vs), destinationrules (dr), serviceentries (se), gateways (gw),
    /// peerauthentications (pa), authorizationpolicies (ap), requestauthentications (ra),
    /// localratelimits (rl), telemetries, or workloads.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::kinds))]
    pub kind: String,
    /// One resource by name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::get_name))]
    pub name: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Only resources whose labels match: `app=reviews`, `tier!=db`, `canary` (has the label),
    /// comma-separated, all must hold.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    #[arg(short, long, value_enum, default_value_t = GetOutput::Table)]
    pub output: GetOutput,
}

/// `mesh get`'s output formats, as kubectl's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum GetOutput {
    #[default]
    Table,
    /// The table with the resources' labels.
    Wide,
    /// `kind.group/name`, one a line.
    Name,
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kind, then names (omit when using -f).
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::delete_args))]
    pub args: Vec<String>,
    /// Delete the resources in these files.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// Succeed when a resource does not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
}

/// `mesh proxy run`: the proxy's own flags, and joining a WorkloadGroup.
#[derive(Debug, clap::Args)]
pub struct ProxyRunArgs {
    #[command(flatten)]
    pub proxy: mesh_proxy::args::ProxyArgs,
    /// Join the WorkloadGroup NAME (in `-n`): the workload takes the group template's labels
    /// and service account (a VM or process outside the platform joining the mesh); labels
    /// given with --labels are added to them.
    #[arg(long, value_name = "NAME")]
    pub workload_group: Option<String>,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum ProxyCommand {
    /// Run a sidecar proxy in the foreground.
    Run(ProxyRunArgs),
    /// Install the iptables rules that redirect this network namespace's TCP through its proxy
    /// (istio-init's job): outbound to 15001, inbound to 15006.
    Init(mesh_proxy::init::InitArgs),
    /// Proxy credentials (local platform): tokens that register one workload only.
    #[command(subcommand)]
    Token(ProxyTokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum ProxyTokenCommand {
    /// Mint a token that lets a proxy register WORKLOAD in the namespace (-n) as SERVICE_ACCOUNT,
    /// and nothing else; give it to `mesh proxy run --token-file`.
    Create(ProxyTokenCreateArgs),
}

#[derive(Debug, Args)]
pub struct ProxyTokenCreateArgs {
    /// The workload the token registers.
    #[arg(long)]
    pub workload: String,
    /// The service account (identity) the workload runs as.
    #[arg(long, default_value = "default")]
    pub service_account: String,
    /// How long the token is good for (e.g. 24h, 720h); default: until MESH_HOME's token key
    /// is replaced.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub valid_for: Option<std::time::Duration>,
    /// Write the token to FILE (mode 0600) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProxyStatusArgs {
    /// One proxy (workload name, or namespace/name) for details.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::proxy_names))]
    pub name: Option<String>,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProxyConfigKind {
    #[value(alias = "route")]
    Routes,
    #[value(alias = "cluster")]
    Clusters,
    #[value(alias = "listener")]
    Listeners,
    #[value(alias = "endpoint")]
    Endpoints,
    #[value(alias = "secret")]
    Secrets,
    All,
    /// The proxy's log level; with --level, change it.
    #[value(alias = "logging")]
    Log,
}

#[derive(Debug, Args)]
pub struct ProxyConfigArgs {
    /// What to show.
    #[arg(value_enum)]
    pub kind: ProxyConfigKind,
    /// The proxy: workload name in the current namespace, `namespace/name` or `name.namespace`.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::proxy_names))]
    pub name: String,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// With `log`: the level to set (trace, debug, info, warn, error, off, or a filter such as
    /// `mesh_proxy=debug,info`).
    #[arg(long)]
    pub level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Split a service's traffic between subsets: `mesh route split reviews v1=90 v2=10`.
    Split(SplitArgs),
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Start a canary rollout: `mesh rollout start reviews --canary v2 --steps 10,25,50,100`.
    Start(RolloutStartArgs),
    /// Where the rollouts are: step, weights, each check's figures against its threshold.
    Status(RolloutStatusArgs),
    /// Hold a rollout at its current step.
    Pause(RolloutActionArgs),
    /// Go on from where a rollout was paused.
    Resume(RolloutActionArgs),
    /// Skip the remaining steps: all traffic to the canary now.
    Promote(RolloutActionArgs),
    /// Stop: all traffic back to stable now.
    Abort(RolloutActionArgs),
}

#[derive(Debug, Args)]
pub struct RolloutStartArgs {
    /// The service (`reviews`, or an FQDN).
    pub host: String,
    /// The subset traffic moves to.
    #[arg(long)]
    pub canary: String,
    /// The subset serving now (default: the canary of the host's last promoted rollout, the
    /// one the host's routes send everything to, or the DestinationRule's other subset).
    #[arg(long)]
    pub stable: Option<String>,
    /// Canary weights, in percent, ending at 100.
    #[arg(long, value_delimiter = ',', default_value = "10,25,50,100")]
    pub steps: Vec<u32>,
    /// How long each step holds and how often the canary is judged.
    #[arg(long, default_value = "30s")]
    pub interval: String,
    /// Failed checks that roll it back.
    #[arg(long, default_value_t = 2)]
    pub max_failures: u32,
    /// The least share of non-5xx answers, in percent.
    #[arg(long, default_value_t = 99.0)]
    pub success_rate: f64,
    /// The most the canary's p99 latency may be (e.g. 500ms); not judged when left out.
    #[arg(long)]
    pub p99: Option<String>,
    /// Requests the canary must get in an interval before it is judged.
    #[arg(long, default_value_t = 20)]
    pub min_requests: u64,
    /// A route (by name) of the VirtualService routing the host whose traffic moves; repeat
    /// for more (default: every route sending only to the stable and canary subsets). Other
    /// routes are never changed.
    #[arg(long = "route", value_name = "NAME")]
    pub routes: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RolloutStatusArgs {
    /// A rollout's host or name (default: every rollout in the namespace).
    pub host: Option<String>,
    /// Follow it live until it ends.
    #[arg(short = 'w', long)]
    pub watch: bool,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct RolloutActionArgs {
    /// The rollout's host or name.
    pub host: String,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create a credential (`--overwrite` replaces one: proxies pick it up without a restart).
    #[command(subcommand)]
    Create(SecretCreateCommand),
    /// List credentials: names, DNS names, expiry (never keys).
    #[command(visible_alias = "ls")]
    List(SecretListArgs),
    /// Delete a credential.
    Delete(SecretDeleteArgs),
}

#[derive(Debug, Subcommand)]
pub enum SecretCreateCommand {
    /// A certificate chain and its key, and optionally a CA bundle for client certificates
    /// (like `kubectl create secret tls`; the CA as Istio's `ca.crt`).
    Tls(SecretCreateTlsArgs),
}

#[derive(Debug, Args)]
pub struct SecretCreateTlsArgs {
    /// The name a Gateway's or DestinationRule's `credentialName` uses.
    pub name: String,
    /// The certificate chain (PEM), leaf first.
    #[arg(long)]
    pub cert: PathBuf,
    /// The private key (PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// The CA bundle (PEM) clients' certificates are checked against (MUTUAL).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Revoked client certificates (PEM `X509 CRL`, a Secret's `ca.crl`).
    #[arg(long, requires = "ca")]
    pub crl: Option<PathBuf>,
    /// Replace a credential of the same name.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct SecretListArgs {
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct SecretDeleteArgs {
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Each proxy's identity, certificate serial, expiry and issuing root; the CA's roots.
    Status(CertStatusArgs),
    /// Renew workload certificates now (all proxies, or one), without restarting anything.
    Rotate(CertRotateArgs),
    /// Replace the mesh's root CA with no downtime: the new root joins the trust bundle, every
    /// proxy is re-issued under it, then the old root is retired.
    RotateRoot(CertRotateRootArgs),
}

#[derive(Debug, Args)]
pub struct CertStatusArgs {
    /// Only this proxy (`NAME` in the current namespace, or `NAMESPACE/NAME`).
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::proxy_names))]
    pub name: Option<String>,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct CertRotateArgs {
    /// Only this workload's proxy (`NAME` in the current namespace, or `NAMESPACE/NAME`).
    #[arg(long, add = clap_complete::ArgValueCompleter::new(crate::complete::proxy_names))]
    pub workload: Option<String>,
}

#[derive(Debug, Args)]
pub struct CertRotateRootArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// The service host (`reviews`, or `reviews.prod.svc.cluster.local`).
    pub host: String,
    /// SUBSET=WEIGHT pairs adding up to 100.
    #[arg(required = true, value_name = "SUBSET=WEIGHT")]
    pub weights: Vec<String>,
    /// Print the resulting resources, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// File, directory or `-` (repeatable); without files the running mesh is analyzed.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// Files to analyze, as istioctl takes them (`mesh analyze a.yaml b.yaml`).
    #[arg(value_name = "FILE")]
    pub paths: Vec<PathBuf>,
    /// Recurse into directories.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Analyze every namespace, not just -n.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// A MeshConfig fragment to analyze with (Istio's `--meshConfigFile`).
    #[arg(long, value_name = "FILE")]
    pub mesh_config: Option<PathBuf>,
    /// A MeshNetworks file (Istio's `meshNetworks`) to analyze.
    #[arg(long, value_name = "FILE")]
    pub mesh_networks: Option<PathBuf>,
    /// Do not add the running mesh's resources, even if meshd is up.
    #[arg(long)]
    pub offline: bool,
    #[arg(short, long, value_enum, default_value_t = AnalyzeOutput::Text)]
    pub output: AnalyzeOutput,
    /// Exit 1 when a message at this level or above is found.
    #[arg(long, value_enum, ignore_case = true, default_value_t = crate::analyze::Level::Error)]
    pub failure_threshold: crate::analyze::Level,
    /// Print only messages at this level or above.
    #[arg(long, value_enum, ignore_case = true, default_value_t = crate::analyze::Level::Info)]
    pub output_threshold: crate::analyze::Level,
    /// Suppress messages: `CODE=Kind name[.namespace]`, `*` matches anything (repeatable).
    #[arg(short = 'S', long = "suppress")]
    pub suppress: Vec<String>,
    /// List the analyzers and exit.
    #[arg(long)]
    pub list_analyzers: bool,
    /// Run only this analyzer (repeatable), e.g. virtualservice.DestinationHostAnalyzer.
    #[arg(long = "analyzer")]
    pub analyzers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalyzeOutput {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Only the client's version.
    #[arg(long)]
    pub short: bool,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Print the manifests of a profile as one YAML stream.
    Generate(ManifestArgs),
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// Install profile.
    #[arg(long, default_value = "default", value_parser = meshd::manifest::PROFILES)]
    pub profile: String,
    /// Override a setting, e.g. `values.global.hub=registry.example/mesh` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// IstioOperator-style overlay files (`spec.meshConfig`, `spec.components`, `spec.values`).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InjectArgs {
    /// The YAML to inject (`-` for standard input).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// Settings as for `mesh manifest generate` (hub, tag, namespace of meshd).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Where the page is served (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:20001", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Proxies in every namespace, not just -n.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// How often the figures are measured (each covers the last interval).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub interval: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Proxies in every namespace, not just -n.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// How long each measurement lasts (and how often a live view refreshes).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub interval: std::time::Duration,
    /// Print one measurement and exit, even on a terminal.
    #[arg(long)]
    pub once: bool,
    /// `table` refreshes live on a terminal; `json` and `yaml` print one measurement.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Args)]
#[command(after_help = "Install it:
  bash        mesh completion bash > ~/.local/share/bash-completion/completions/mesh
  zsh         echo 'source <(mesh completion zsh)' >> ~/.zshrc
  fish        mesh completion fish > ~/.config/fish/completions/mesh.fish
  powershell  mesh completion powershell >> $PROFILE
  elvish      mesh completion elvish >> ~/.config/elvish/rc.elv
The script asks `mesh` (on PATH) for each completion, so kinds, resource names and proxy
names come from the running mesh. Copies are in the repository's completions/ folder.")]
pub struct CompletionArgs {
    pub shell: clap_complete::Shell,
}

/// The command line as completion scripts offer it: without the hidden internal commands
/// (`__meshd`, `__demo-app`), which nobody types.
pub fn for_completion() -> clap::Command {
    use clap::CommandFactory;
    let full = Cli::command();
    let mut shown = clap::Command::new("mesh").about(full.get_about().cloned().unwrap_or_default());
    for a in full.get_arguments() {
        shown = shown.arg(a.clone());
    }
    for s in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        shown = shown.subcommand(s.clone());
    }
    shown
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Keep printing what meshd writes, until interrupted.
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Requests sent at each step of the traffic shift.
    #[arg(long, default_value_t = 200)]
    pub requests: u32,
    /// Keep the demo mesh running at the end until Ctrl-C.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct MeshdArgs {
    #[arg(long, default_value = meshd::DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// Metrics and `/debug/syncz` (default: the listen IP, port 15014; port 0 when --listen is
    /// on port 0).
    #[arg(long)]
    pub monitoring: Option<std::net::SocketAddr>,
    /// Lifetime of workload certificates (Go duration).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub cert_ttl: std::time::Duration,
    /// What proxies do with requests for hosts the mesh does not know.
    #[arg(long, default_value = "ALLOW_ANY", value_parser = ["ALLOW_ANY", "REGISTRY_ONLY"])]
    pub outbound_traffic_policy: String,
    /// Every proxy writes an access log line per request to its standard output.
    #[arg(long)]
    pub access_log: bool,
    /// Send spans to this Zipkin collector (HOST:PORT; Zipkin v2 JSON).
    #[arg(long, value_name = "HOST:PORT")]
    pub zipkin: Option<String>,
    /// Send spans to this OpenTelemetry collector (HOST:PORT; OTLP/HTTP JSON).
    #[arg(long, value_name = "HOST:PORT")]
    pub otlp: Option<String>,
    /// Percentage of new traces sampled.
    #[arg(long, default_value_t = meshd::translate::DEFAULT_TRACE_SAMPLING)]
    pub trace_sampling: f64,
    /// How proxies normalize request paths before routing and policy.
    #[arg(long, default_value = "BASE", value_parser = parse_normalization)]
    pub path_normalization: mesh_api::proxy_config::Normalization,
    /// What proxies do with `%2F` and `%5C` in paths.
    #[arg(long, default_value = "KEEP_UNCHANGED", value_parser = parse_escaped_slashes)]
    pub escaped_slashes: mesh_api::proxy_config::EscapedSlashes,
    /// How long proxies keep an idle downstream connection (default: 1h).
    #[arg(long, value_parser = parse_duration)]
    pub idle_timeout: Option<std::time::Duration>,
    /// HTTP/1.1 requests cross between proxies over HTTP/2 (`meshConfig.h2UpgradePolicy: UPGRADE`).
    #[arg(long)]
    pub h2_upgrade: bool,
    /// Kubernetes (MESH_PLATFORM=kube): discovery over TLS for proxies with a
    /// service-account token.
    #[arg(long, default_value = meshd::DISCOVERY_TLS_LISTEN)]
    pub discovery_tls: std::net::SocketAddr,
    /// Kubernetes (MESH_PLATFORM=kube): the admission webhooks over TLS.
    #[arg(long, default_value = meshd::WEBHOOK_LISTEN)]
    pub webhooks: std::net::SocketAddr,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    mesh_api::duration::parse(s)
}

fn parse_normalization(s: &str) -> Result<mesh_api::proxy_config::Normalization, String> {
    mesh_api::proxy_config::Normalization::parse(s)
        .ok_or_else(|| format!("use one of {}", mesh_api::proxy_config::Normalization::NAMES.join(", ")))
}

fn parse_escaped_slashes(s: &str) -> Result<mesh_api::proxy_config::EscapedSlashes, String> {
    mesh_api::proxy_config::EscapedSlashes::parse(s)
        .ok_or_else(|| format!("use one of {}", mesh_api::proxy_config::EscapedSlashes::NAMES.join(", ")))
}

#[derive(Debug, Args)]
pub struct DemoAppArgs {
    /// The name this app answers with.
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub listen: std::net::SocketAddr,
    /// Call this URL through HTTP proxy `--via` and include its answer.
    #[arg(long)]
    pub call: Option<String>,
    #[arg(long)]
    pub via: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum ExperimentalCommand {
    /// What applies to a pod (a connected proxy) or a service: its Services and ports with
    /// their mTLS mode, the DestinationRule and the subsets it matches, the VirtualService
    /// routes and their weights, authorization and JWT policies, as `istioctl x describe`.
    Describe(DescribeArgs),
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// `pod` (`po`) or `service` (`svc`).
    #[arg(value_parser = ["pod", "po", "service", "svc"])]
    pub kind: String,
    /// NAME, NAME.NAMESPACE or NAMESPACE/NAME.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::describe_name))]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct BugReportArgs {
    /// Where to write the archive (a .tar.gz); default `mesh-bug-report-<time>.tar.gz` here.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}
