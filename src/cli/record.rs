//! `stoic record`: capture a venue session's raw frames with receive timestamps.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotpath::clock::SystemClock;
use hotpath::venue::auth::{AuthGrant, Credentials};
use hotpath::venue::conn::{ConnConfig, Connection};

/// Arguments of `stoic record`.
///
/// Connects to a Deribit-protocol WebSocket endpoint, optionally authenticates, subscribes
/// to the given channels and writes every inbound frame to FILE as one JSON line:
/// `{"recv_ns": <ns since Unix epoch>, "frame": "<frame text>"}`. Heartbeat `test_request`s
/// are answered so the session stays up. Replay the file with `stoic replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Venue WebSocket URL, e.g. ws://127.0.0.1:8080/ws/api/v2 or
    /// wss://test.deribit.com/ws/api/v2.
    #[arg(long)]
    pub url: String,
    /// Channel to subscribe to (repeatable), e.g. book.BTC-PERPETUAL.100ms.
    #[arg(long = "subscribe", value_name = "CHANNEL")]
    pub subscribe: Vec<String>,
    /// Output file (JSON lines); created or truncated.
    #[arg(long)]
    pub out: PathBuf,
    /// Stop after this many seconds (default: until the venue closes the connection).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Credentials file `{"client_id": "...", "client_secret": "..."}` to authenticate
    /// (needed for `raw` channels and private channels). Never printed.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Heartbeat interval to request, seconds (venue minimum 10; 0 = none).
    #[arg(long, default_value_t = 30)]
    pub heartbeat: u32,
}

/// Runs `stoic record`.
///
/// # Errors
/// Connection, authentication, subscription or file errors.
// The CLI dispatcher fixes this signature (every subcommand takes its Args by value).
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::create(&args.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.out.display()))?;
    let out = Arc::new(Mutex::new(std::io::BufWriter::new(file)));
    let write_err = Arc::new(Mutex::new(None::<std::io::Error>));
    let t = Duration::from_secs(10);
    let mut conn = Connection::connect(&ConnConfig::new(&args.url), Arc::new(SystemClock))?;
    {
        let out = Arc::clone(&out);
        let write_err = Arc::clone(&write_err);
        conn.set_raw_tap(Some(Box::new(move |frame: &str, recv_ns: u128| {
            let line = serde_json::json!({"recv_ns": recv_ns, "frame": frame});
            if let Ok(mut w) = out.lock() {
                if let Err(e) = writeln!(w, "{line}") {
                    if let Ok(mut slot) = write_err.lock() {
                        slot.get_or_insert(e);
                    }
                }
            }
        })));
    }
    if let Some(path) = &args.credentials {
        let creds = Credentials::from_file(path)?;
        conn.authenticate(&creds, AuthGrant::ClientSignature, None, t)?;
    }
    if args.heartbeat > 0 {
        conn.set_heartbeat(args.heartbeat, t)?;
    }
    if !args.subscribe.is_empty() {
        let chans: Vec<&str> = args.subscribe.iter().map(String::as_str).collect();
        let n = conn.subscribe(&chans, t, &mut |_| {})?;
        if n < chans.len() {
            eprintln!("warning: venue confirmed {n} of {} channels", chans.len());
        }
    }
    let deadline = args.seconds.map(|s| Instant::now() + Duration::from_secs(s));
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        match conn.poll(Duration::from_millis(200), &mut |_| {}) {
            Ok(_) => {}
            Err(hotpath::venue::conn::ConnError::Closed) => break,
            Err(e) => return Err(e.into()),
        }
        if let Some(e) = write_err.lock().ok().and_then(|mut s| s.take()) {
            return Err(anyhow::anyhow!("writing {}: {e}", args.out.display()));
        }
    }
    conn.close();
    out.lock().map_err(|_| anyhow::anyhow!("writer poisoned"))?.flush()?;
    let s = conn.stats();
    eprintln!("recorded {} frames to {}", s.frames_in, args.out.display());
    Ok(ExitCode::SUCCESS)
}
