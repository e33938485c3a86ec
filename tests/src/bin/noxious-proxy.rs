//! `noxious-proxy`: one Toxiproxy-style proxy of the `noxious` library (a
//! Rust port of Toxiproxy), configured from the command line, for the
//! network-namespace tests.
//!
//! ```text
//! noxious-proxy --listen ADDR --upstream ADDR [--toxic JSON]...
//! ```
//!
//! Each `--toxic` is a toxic as Toxiproxy's REST API takes it, e.g.
//! `{"type":"latency","stream":"upstream","attributes":{"latency":20}}`.
//! The proxy, its links and the toxics are noxious's own (`ProxyRunner`);
//! this program only sets them up, and says on stdout `listening on ADDR`
//! once bound and `accepted PEER` as each client's connection is accepted,
//! so that a test can wait for it and time a connection from its accept.
//! It runs until it is killed.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use async_trait::async_trait;
use noxious::proxy::{ProxyConfig, ProxyRunner, Runner, Toxics};
use noxious::signal::{Close, Stop};
use noxious::socket::{SocketListener, TcpListener, TcpStream};
use noxious::toxic::{StreamDirection, Toxic};

/// noxious's listener, announcing each accepted connection on stdout.
struct AnnouncingListener(TcpListener);

#[async_trait]
impl SocketListener for AnnouncingListener {
    type Stream = TcpStream;

    async fn bind(addr: &str) -> std::io::Result<Self> {
        TcpListener::bind(addr).await.map(AnnouncingListener)
    }

    async fn accept(&self) -> std::io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        say(&format!("accepted {peer}"));
        Ok((stream, peer))
    }
}

/// One line on stdout, flushed at once: the tests time these lines.
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    // A test that stopped reading does not need the line.
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<(ProxyConfig, Toxics)> {
    let (mut listen, mut upstream, mut toxics) = (None, None, Toxics::empty());
    let mut args = args;
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = Some(value()?),
            "--upstream" => upstream = Some(value()?),
            "--toxic" => {
                let json = value()?;
                let mut toxic: Toxic = serde_json::from_str(&json)
                    .with_context(|| format!("--toxic {json}: not a Toxiproxy toxic"))?;
                if toxic.name.is_empty() {
                    toxic.name =
                        format!("toxic{}", toxics.upstream.len() + toxics.downstream.len());
                }
                match toxic.direction {
                    StreamDirection::Upstream => toxics.upstream.push(toxic),
                    StreamDirection::Downstream => toxics.downstream.push(toxic),
                }
            }
            other => bail!(
                "unknown argument {other:?}; usage: noxious-proxy --listen ADDR --upstream ADDR \
                 [--toxic JSON]..."
            ),
        }
    }
    let (Some(listen), Some(upstream)) = (listen, upstream) else {
        bail!("--listen and --upstream are required");
    };
    let config = ProxyConfig {
        name: "iris".to_owned(),
        listen,
        upstream,
        enabled: true,
        rand_seed: None,
    };
    config.validate().context("invalid proxy")?;
    Ok((config, toxics))
}

fn main() -> anyhow::Result<()> {
    let (config, toxics) = parse(std::env::args().skip(1))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listen = config.listen.clone();
        let (listener, info) = ProxyRunner::initialize_proxy::<AnnouncingListener>(config, toxics)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        say(&format!("listening on {listen}"));
        // Toxics are fixed for the proxy's life: the event channel's sender
        // is kept but never used, and nothing ever sends the stop signal.
        let (_events, receiver) = bmrng::channel(1);
        let (stop, _stopper) = Stop::new();
        let (_close, closer) = Close::new();
        ProxyRunner::run_proxy(listener, info, receiver, stop, closer)
            .await
            .context("the proxy failed")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|arg| (*arg).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn toxics_go_to_the_direction_they_name() {
        let (config, toxics) = parse(args(&[
            "--listen",
            "10.231.1.2:6000",
            "--upstream",
            "10.231.2.2:6000",
            "--toxic",
            r#"{"type":"latency","stream":"downstream","attributes":{"latency":40}}"#,
            "--toxic",
            r#"{"type":"slicer","stream":"upstream","attributes":{"average_size":48}}"#,
        ]))
        .expect("valid arguments");
        assert_eq!(config.listen, "10.231.1.2:6000");
        assert_eq!(config.upstream, "10.231.2.2:6000");
        assert_eq!(toxics.downstream.len(), 1);
        assert_eq!(toxics.upstream.len(), 1);
        // Unnamed toxics get distinct names, as noxious keys them by name.
        assert_ne!(toxics.downstream[0].name, toxics.upstream[0].name);
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let error = |list: &[&str]| format!("{:#}", parse(args(list)).expect_err("an error"));
        assert!(error(&["--listen", "a:1"]).contains("--listen and --upstream are required"));
        assert!(error(&["--listen"]).contains("--listen needs a value"));
        assert!(error(&["--toxic", r#"{"type":"teleport"}"#]).contains("not a Toxiproxy toxic"));
        assert!(error(&["--verbose"]).contains("usage: noxious-proxy"));
    }
}
