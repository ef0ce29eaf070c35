//! `proxy init`: the iptables rules that send a pod's TCP traffic through its proxy, as
//! istio-init (`istio-iptables`) sets them up. Applied in one `iptables-restore --noflush` so
//! the nat table never holds half the rules; running it again replaces them (idempotent), and
//! `--cleanup` removes them.
//!
//! Inbound: TCP arriving for the workload goes to the proxy's inbound capture port (15006),
//! except excluded ports. Outbound: TCP the app opens goes to the outbound capture port (15001),
//! except the proxy's own traffic (by uid/gid), loopback traffic, excluded ports and CIDRs.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// Set up (or remove) transparent capture for this network namespace.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// The proxy's user id: its own connections are never captured.
    #[arg(long, default_value_t = 1337)]
    pub proxy_uid: u32,
    /// The proxy's group id (default: the uid).
    #[arg(long)]
    pub proxy_gid: Option<u32>,
    /// Where the app's outbound TCP is redirected (the proxy's `--capture-outbound` port).
    #[arg(long, default_value_t = 15001)]
    pub outbound_port: u16,
    /// Where inbound TCP is redirected.
    #[arg(long, default_value_t = 15006)]
    pub inbound_port: u16,
    /// Inbound ports to capture: `*` for all, or a comma-separated list; empty for none.
    #[arg(long, default_value = "*")]
    pub include_inbound_ports: String,
    /// Inbound ports never captured (the proxy's own: metrics, health, admin).
    #[arg(long, value_delimiter = ',', default_values_t = [15020u16, 15021, 15090])]
    pub exclude_inbound_ports: Vec<u16>,
    /// Outbound destination ports never captured.
    #[arg(long, value_delimiter = ',')]
    pub exclude_outbound_ports: Vec<u16>,
    /// Outbound destination CIDRs never captured.
    #[arg(long, value_delimiter = ',')]
    pub exclude_outbound_cidrs: Vec<ipnet::Ipv4Net>,
    /// Print the rules instead of applying them.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove the rules.
    #[arg(long)]
    pub cleanup: bool,
}

const CHAINS: [&str; 4] = ["MESH_INBOUND", "MESH_IN_REDIRECT", "MESH_OUTPUT", "MESH_REDIRECT"];

impl InitArgs {
    fn inbound_ports(&self) -> anyhow::Result<Option<Vec<u16>>> {
        let v = self.include_inbound_ports.trim();
        if v == "*" {
            return Ok(None);
        }
        v.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                p.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .with_context(|| format!("--include-inbound-ports: {p:?} is not a port"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some)
    }

    /// The nat table rules, in `iptables-restore` form.
    pub fn rules(&self) -> anyhow::Result<String> {
        let uid = self.proxy_uid;
        let gid = self.proxy_gid.unwrap_or(uid);
        let mut r = String::from("*nat\n");
        for c in CHAINS {
            r.push_str(&format!(":{c} - [0:0]\n"));
        }
        r.push_str(&format!("-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports {}\n", self.inbound_port));
        r.push_str(&format!("-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports {}\n", self.outbound_port));
        // Inbound.
        r.push_str("-A PREROUTING -p tcp -j MESH_INBOUND\n");
        match self.inbound_ports()? {
            None => {
                for p in &self.exclude_inbound_ports {
                    r.push_str(&format!("-A MESH_INBOUND -p tcp --dport {p} -j RETURN\n"));
                }
                r.push_str("-A MESH_INBOUND -p tcp -j MESH_IN_REDIRECT\n");
            }
            Some(ports) => {
                for p in ports.iter().filter(|p| !self.exclude_inbound_ports.contains(p)) {
                    r.push_str(&format!("-A MESH_INBOUND -p tcp --dport {p} -j MESH_IN_REDIRECT\n"));
                }
            }
        }
        // Outbound.
        r.push_str("-A OUTPUT -p tcp -j MESH_OUTPUT\n");
        // The proxy's connections to the app over loopback, from the inbound passthrough address.
        r.push_str("-A MESH_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN\n");
        // The app calling itself through its pod IP: that is inbound traffic for it.
        r.push_str(&format!("-A MESH_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner {uid} -j MESH_IN_REDIRECT\n"));
        r.push_str(&format!("-A MESH_OUTPUT -o lo -m owner ! --uid-owner {uid} -j RETURN\n"));
        r.push_str(&format!("-A MESH_OUTPUT -m owner --uid-owner {uid} -j RETURN\n"));
        r.push_str(&format!("-A MESH_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --gid-owner {gid} -j MESH_IN_REDIRECT\n"));
        r.push_str(&format!("-A MESH_OUTPUT -o lo -m owner ! --gid-owner {gid} -j RETURN\n"));
        r.push_str(&format!("-A MESH_OUTPUT -m owner --gid-owner {gid} -j RETURN\n"));
        r.push_str("-A MESH_OUTPUT -d 127.0.0.1/32 -j RETURN\n");
        for p in &self.exclude_outbound_ports {
            r.push_str(&format!("-A MESH_OUTPUT -p tcp --dport {p} -j RETURN\n"));
        }
        for c in &self.exclude_outbound_cidrs {
            r.push_str(&format!("-A MESH_OUTPUT -d {c} -j RETURN\n"));
        }
        r.push_str("-A MESH_OUTPUT -j MESH_REDIRECT\nCOMMIT\n");
        Ok(r)
    }

    /// Apply (or remove) the rules; errors name the command that failed and why.
    pub fn run(&self) -> anyhow::Result<()> {
        let rules = self.rules()?;
        if self.dry_run {
            print!("{rules}");
            return Ok(());
        }
        cleanup();
        if self.cleanup {
            return Ok(());
        }
        let mut child = Command::new("iptables-restore")
            .arg("--noflush")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run iptables-restore (is iptables installed, and are we allowed to change this network namespace?)")?;
        child
            .stdin
            .take()
            .context("iptables-restore has no stdin")?
            .write_all(rules.as_bytes())
            .context("cannot write the rules to iptables-restore")?;
        let out = child.wait_with_output().context("iptables-restore did not finish")?;
        if !out.status.success() {
            bail!(
                "iptables-restore refused the rules ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// Remove our jumps and chains; what is not there is skipped.
fn cleanup() {
    let ipt = |args: &[&str]| {
        let _ = Command::new("iptables")
            .args(["-t", "nat"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    ipt(&["-D", "PREROUTING", "-p", "tcp", "-j", "MESH_INBOUND"]);
    ipt(&["-D", "OUTPUT", "-p", "tcp", "-j", "MESH_OUTPUT"]);
    for c in CHAINS {
        ipt(&["-F", c]);
    }
    for c in CHAINS {
        ipt(&["-X", c]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: InitArgs,
    }

    fn rules(args: &[&str]) -> String {
        let cli = Cli::try_parse_from(std::iter::once("init").chain(args.iter().copied())).expect("args");
        cli.args.rules().expect("rules")
    }

    #[test]
    fn default_rules_capture_both_ways_and_spare_the_proxy() {
        let r = rules(&[]);
        assert!(r.contains("-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n"), "{r}");
        assert!(r.contains("-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006\n"), "{r}");
        assert!(r.contains("-A MESH_OUTPUT -m owner --uid-owner 1337 -j RETURN\n"), "{r}");
        assert!(r.contains("-A MESH_INBOUND -p tcp --dport 15090 -j RETURN\n"), "{r}");
        assert!(r.ends_with("-A MESH_OUTPUT -j MESH_REDIRECT\nCOMMIT\n"), "{r}");
    }

    #[test]
    fn exclusions_and_port_lists() {
        let r = rules(&[
            "--proxy-uid",
            "0",
            "--include-inbound-ports",
            "9080,15020",
            "--exclude-outbound-ports",
            "5432",
            "--exclude-outbound-cidrs",
            "10.0.0.0/8",
        ]);
        assert!(r.contains("-A MESH_INBOUND -p tcp --dport 9080 -j MESH_IN_REDIRECT\n"), "{r}");
        assert!(!r.contains("--dport 15020 -j MESH_IN_REDIRECT"), "excluded stays excluded: {r}");
        assert!(r.contains("-A MESH_OUTPUT -p tcp --dport 5432 -j RETURN\n"), "{r}");
        assert!(r.contains("-A MESH_OUTPUT -d 10.0.0.0/8 -j RETURN\n"), "{r}");
        assert!(Cli::try_parse_from(["init", "--include-inbound-ports", "x"]).expect("parses").args.rules().is_err());
        assert!(Cli::try_parse_from(["init", "--exclude-outbound-cidrs", "nope"]).is_err());
    }
}
