//! Hosts on one machine: Linux network namespaces joined by veth pairs, so
//! that tests cross real network links (with their own TCP stacks, routes
//! and links that can go down) instead of loopback.
//!
//! ```no_run
//! use iris_testkit::netns::Network;
//!
//! let Some(mut network) = Network::for_test("my test") else {
//!     return; // skipped, and it said why
//! };
//! let client = network.host("client");
//! let server = network.host("server");
//! let link = network.link(&client, &server);
//! // A program in the server's namespace, listening on the server's end.
//! let mut command = server.command("iris-listener");
//! command.args(["--address", &format!("{}:6000", link.b)]);
//! # let _ = command;
//! ```
//!
//! - Every namespace is named `iris-t-PID-N-HOST` (`PID` is the test
//!   process's, `N` counts networks within it), and veth ends are made
//!   directly inside their namespaces, so nothing of a test's network ever
//!   exists in the machine's own namespace, and all traffic stays between
//!   the test's hosts.
//! - Addresses are `10.231.L.1` and `10.231.L.2` on the `L`-th link of a
//!   network (`/24`). Each namespace has its own network stack, so two tests
//!   using the same addresses in their own namespaces never meet: parallel
//!   tests cannot collide, and fixed ports inside a test's hosts are safe.
//! - Dropping the [`Network`] deletes its namespaces (and the veth pairs
//!   with them) and its `/etc/netns` files, also when the test panics. A
//!   network made after a crashed run first deletes the namespaces of test
//!   processes that no longer exist.
//! - Making namespaces needs root (`CAP_NET_ADMIN` and `CAP_SYS_ADMIN`) and
//!   iproute2. Without them, [`Network::for_test`] skips the test saying
//!   why; under CI (`CI` set) or as root it fails the test instead, so CI
//!   can never pass by skipping.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The prefix of every namespace these tests make.
pub const PREFIX: &str = "iris-t-";

/// Where `ip netns exec` finds per-namespace files to mount over `/etc`.
const ETC_NETNS: &str = "/etc/netns";

/// A network of hosts, deleted with everything in it when dropped.
#[derive(Debug)]
pub struct Network {
    /// `iris-t-PID-N-`: this network's namespaces' common prefix.
    prefix: String,
    hosts: Vec<Host>,
    links: u8,
}

/// One host: a network namespace of a [`Network`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// The namespace's name, for `ip netns exec`.
    pub name: String,
}

/// A veth pair between two hosts: `a` is the first host's address on it,
/// `b` the second's; `interface` is the name of the link's end in both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The first host's address on this link.
    pub a: Ipv4Addr,
    /// The second host's address on this link.
    pub b: Ipv4Addr,
    /// The name of the link's veth end inside each of the two hosts.
    pub interface: String,
}

/// Why this machine cannot make the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

/// Whether a test that cannot make namespaces must fail rather than skip:
/// under CI (`CI` set), or when running as root, where namespaces work
/// unless something is broken.
pub fn required() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty()) || is_root()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Where `program` is: on the PATH, or in the sbin directories, where
/// Debian puts `ip` and `haproxy` (outside a non-root user's PATH).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// iproute2's `ip`.
fn ip_program() -> PathBuf {
    find_program("ip").unwrap_or_else(|| "ip".into())
}

/// Runs `ip ARGS`; its error output on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new(ip_program())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!("cannot run `ip` ({e}); install iproute2 (`apt-get install iproute2`)")
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Runs `ip ARGS` where it must work once the network exists: a failure is
/// a broken test machine, not a reason to skip.
fn ip_must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e}");
    }
}

impl Network {
    /// A new, empty network; `Err` says why this machine cannot make one.
    /// Deletes what crashed test processes left first.
    pub fn new() -> Result<Network, Unavailable> {
        static NETWORKS: AtomicUsize = AtomicUsize::new(0);
        remove_stale();
        let prefix = format!(
            "{PREFIX}{}-{}-",
            std::process::id(),
            NETWORKS.fetch_add(1, Ordering::Relaxed)
        );
        // A probe namespace, so that a machine without the rights fails here
        // with the reason rather than halfway through a topology.
        let probe = format!("{prefix}probe");
        ip(&["netns", "add", &probe]).map_err(|e| {
            Unavailable(format!(
                "cannot make network namespaces (they need root, or CAP_NET_ADMIN and \
                 CAP_SYS_ADMIN): {e}"
            ))
        })?;
        ip(&["netns", "del", &probe]).map_err(Unavailable)?;
        Ok(Network {
            prefix,
            hosts: Vec::new(),
            links: 0,
        })
    }

    /// [`Network::new`] for the test `test`: `None` when the machine cannot
    /// make namespaces, after saying so on stderr; panics instead when
    /// [`required`] (CI, or root).
    pub fn for_test(test: &str) -> Option<Network> {
        match Network::new() {
            Ok(network) => Some(network),
            Err(why) if required() => panic!(
                "{test}: network namespaces are required here (CI is set, or running as root) \
                 but {why}"
            ),
            Err(why) => {
                eprintln!("{test}: skipped: {why}");
                None
            }
        }
    }

    /// Adds a host named `name` (short: it is part of the namespace's
    /// name), with its loopback up.
    pub fn host(&mut self, name: &str) -> Host {
        let host = Host {
            name: format!("{}{name}", self.prefix),
        };
        ip_must(&["netns", "add", &host.name]);
        // Recorded before anything else can fail, so that drop deletes it.
        self.hosts.push(host.clone());
        ip_must(&["-n", &host.name, "link", "set", "lo", "up"]);
        host
    }

    /// Joins `a` and `b` with a veth pair, up, `10.231.L.1/24` in `a` and
    /// `10.231.L.2/24` in `b` for the `L`-th link.
    pub fn link(&mut self, a: &Host, b: &Host) -> Link {
        self.links = self
            .links
            .checked_add(1)
            .expect("at most 255 links in a network");
        let interface = format!("veth{}", self.links);
        let link = Link {
            a: Ipv4Addr::new(10, 231, self.links, 1),
            b: Ipv4Addr::new(10, 231, self.links, 2),
            interface: interface.clone(),
        };
        // Both ends are made inside their namespaces: none ever exists in
        // the machine's own.
        ip_must(&[
            "link", "add", &interface, "netns", &a.name, "type", "veth", "peer", "name",
            &interface, "netns", &b.name,
        ]);
        for (host, address) in [(a, link.a), (b, link.b)] {
            ip_must(&[
                "-n",
                &host.name,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                &interface,
            ]);
            ip_must(&["-n", &host.name, "link", "set", &interface, "up"]);
        }
        link
    }

    /// Makes `localhost` mean `address` for programs run in `host` (an
    /// `/etc/hosts` that `ip netns exec` mounts for them), so that a
    /// program with `localhost` written in it, such as the seed's, reaches
    /// another host unchanged.
    pub fn set_localhost(&self, host: &Host, address: Ipv4Addr) {
        let dir = PathBuf::from(ETC_NETNS).join(&host.name);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let hosts = dir.join("hosts");
        std::fs::write(&hosts, format!("{address}\tlocalhost\n"))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", hosts.display()));
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for host in &self.hosts {
            remove_namespace(&host.name);
        }
    }
}

impl Host {
    /// `ip netns exec HOST PROGRAM`: a command that runs `program` in this
    /// host (add its arguments and environment as usual).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(ip_program());
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// `command`, to be run in this host instead: the same program,
    /// arguments, environment changes and working directory.
    pub fn wrap(&self, command: &Command) -> Command {
        let mut wrapped = self.command(command.get_program());
        wrapped.args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }

    /// Sets this host's end of `link` down: its packets stop, and no FIN
    /// or RST is sent for the connections over it (the half-open case).
    pub fn link_down(&self, link: &Link) {
        ip_must(&["-n", &self.name, "link", "set", &link.interface, "down"]);
    }
}

/// Deletes a namespace and its `/etc/netns` files; a failure is reported,
/// not raised, since this runs while dropping.
fn remove_namespace(name: &str) {
    // A crashed run may have left only the /etc/netns files.
    let exists = ["/run/netns", "/var/run/netns"]
        .iter()
        .any(|dir| PathBuf::from(dir).join(name).exists());
    if exists {
        if let Err(e) = ip(&["netns", "del", name]) {
            eprintln!("warning: could not delete network namespace {name}: {e}");
        }
    }
    let dir = PathBuf::from(ETC_NETNS).join(name);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            eprintln!("warning: could not remove {}: {e}", dir.display());
        }
        _ => {}
    }
}

/// The test process that made namespace `name`, from `iris-t-PID-…`.
fn owner(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// Deletes the namespaces whose test process no longer runs (a run that
/// was killed before it could clean up).
fn remove_stale() {
    let Ok(output) = Command::new(ip_program())
        .args(["netns", "list"])
        .stdin(Stdio::null())
        .output()
    else {
        return;
    };
    // `NAME` or `NAME (id: N)` per line, and /etc/netns files a run may
    // have left without their namespace.
    let listed = String::from_utf8_lossy(&output.stdout);
    let names = listed
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned));
    let files = std::fs::read_dir(ETC_NETNS)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok());
    let mut done = std::collections::BTreeSet::new();
    for name in names.chain(files) {
        let Some(pid) = owner(&name) else { continue };
        if !PathBuf::from(format!("/proc/{pid}")).exists() && done.insert(name.clone()) {
            remove_namespace(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_comes_from_the_name() {
        assert_eq!(owner("iris-t-4242-3-client"), Some(4242));
        assert_eq!(owner("iris-t-x-3-client"), None);
        assert_eq!(owner("other-4242-3-client"), None);
    }

    #[test]
    fn what_a_crashed_run_left_is_removed() {
        if Network::for_test("what_a_crashed_run_left_is_removed").is_none() {
            return;
        }
        // No process has this id (above any pid_max).
        let stale = format!("{PREFIX}{}-0-stale", u32::MAX);
        ip_must(&["netns", "add", &stale]);
        let _network = Network::new().expect("a network, as above");
        let listed = Command::new(ip_program())
            .args(["netns", "list"])
            .output()
            .expect("ip netns list");
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(!listed.contains(&stale), "{stale} is left: {listed}");
    }

    #[test]
    fn a_network_is_made_and_removed() {
        let Some(mut network) = Network::for_test("a_network_is_made_and_removed") else {
            return;
        };
        let a = network.host("a");
        let b = network.host("b");
        let link = network.link(&a, &b);
        let shown = Command::new(ip_program())
            .args(["-n", &b.name, "-o", "addr", "show", "dev", &link.interface])
            .output()
            .expect("ip addr show");
        assert!(
            String::from_utf8_lossy(&shown.stdout).contains("10.231.1.2/24"),
            "{shown:?}"
        );
        let names = [a.name.clone(), b.name.clone()];
        drop(network);
        let listed = Command::new(ip_program())
            .args(["netns", "list"])
            .output()
            .expect("ip netns list");
        let listed = String::from_utf8_lossy(&listed.stdout);
        for name in names {
            assert!(!listed.contains(&name), "{name} is left: {listed}");
        }
    }
}
