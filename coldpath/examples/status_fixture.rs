//! **A fixture server, not the engine.** Serves the real control-plane HTTP server and owner
//! dashboard over [`coldpath::fixture::FixtureEngine`], an in-memory stand-in for PolicyGuard
//! state, so the dashboard's browser test can switch the mode through the real
//! `POST /api/v1/emergency/reduce_only` until `stoic run` serves the same endpoints.
//!
//! Usage: `status_fixture --addr 127.0.0.1:0 --token-file PATH [--addr-file PATH]`.
//! Prints `listening on http://ADDR` and, with `--addr-file`, writes `http://ADDR` there.
//! Runs until killed (or until stdin closes when `--exit-on-stdin-eof` is given).

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use coldpath::fixture::FixtureEngine;
use coldpath::metrics::MetricsRegistry;
use coldpath::server::{start, ServerConfig};

fn main() -> Result<(), String> {
    let mut cfg =
        ServerConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..ServerConfig::default() };
    let mut addr_file: Option<PathBuf> = None;
    let mut exit_on_eof = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => {
                cfg.addr = args
                    .next()
                    .ok_or("--addr needs a value")?
                    .parse()
                    .map_err(|e| format!("--addr: {e}"))?;
            }
            "--token-file" => {
                cfg.token_file = Some(args.next().ok_or("--token-file needs a value")?.into());
            }
            "--addr-file" => {
                addr_file = Some(args.next().ok_or("--addr-file needs a value")?.into());
            }
            "--exit-on-stdin-eof" => exit_on_eof = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !cfg.addr.ip().is_loopback() {
        return Err("the fixture serves loopback addresses only".into());
    }
    let engine = Arc::new(FixtureEngine::new_active("fixture-build"));
    let metrics = Arc::new(MetricsRegistry::new("fixture"));
    let server = start(cfg, engine.clone(), engine, metrics).map_err(|e| format!("bind: {e}"))?;
    let url = format!("http://{}", server.local_addr());
    println!("listening on {url}");
    if let Some(p) = addr_file {
        std::fs::write(&p, &url).map_err(|e| format!("write {}: {e}", p.display()))?;
    }
    if exit_on_eof {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    } else {
        // Serves until the process is killed; the accept loop runs on its own thread.
        loop {
            std::thread::park();
        }
    }
    server.shutdown();
    Ok(())
}
