//! `stoic keys probe`: proves each configured API key has no more scope than its role (P0-C).
//!
//! For every key in `config/keys.json` the probe
//! 1. authenticates over the venue [`Connection`] (client signature: the secret never leaves
//!    the process) without narrowing the scope, so the venue grants the key's **maximum**;
//! 2. reads the granted scopes from the auth result and compares them, group by group, with
//!    the role's `required` and `max` scopes (a key above `max` fails; below `required` fails);
//! 3. for every access level the role must NOT have and that a request exercises, sends that
//!    request for real and requires the venue's scope refusal (13021 `forbidden`); for the
//!    levels the role needs, sends the harmless read/settings request and requires success.
//!
//! What each out-of-scope request proves (see `keys/actions.rs` for how replies are judged):
//! - `trade:read` — `private/get_positions` refused.
//! - `trade:read_write` — a real `private/buy` refused: the instrument's minimum amount,
//!   post-only with `reject_post_only`, at half the lower of best bid and mark (so it can
//!   neither fill nor cross); sent through `hotpath::dispatch::scope_probe` (orders leave only
//!   through dispatch). If it is wrongly accepted it is cancelled at once and the key fails.
//! - `account:read` — `private/get_account_summary` refused.
//! - `account:read_write` — `private/enable_cancel_on_disconnect` (connection scope) refused.
//! - `wallet:read` — `private/get_withdrawals` refused.
//! - `wallet:read_write` — a real `private/withdraw` (0.0001 BTC to an address that is not an
//!   address, so no address book holds it) refused.
//! - `block_trade`, `custody` — no request is sent; the granted scope string is the proof.
//!
//! A scope refusal is the only pass for an out-of-scope request. Acceptance, or a refusal only
//! a request past the scope check can get (funds, address book, price), fails the key and is
//! named in `wrongly_accepted`. Transport failures and venue errors that say nothing about the
//! scope (auth, rate limit, maintenance, unknown codes) are probe errors, never a pass.
//!
//! Exit codes: 0 every key passes; 1 a key fails; 2 usage (clap); 3 venue unreachable or the
//! key file is invalid; 4 no key failed but some probe was inconclusive (probe error).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hotpath::clock::{Clock, SystemClock};
use hotpath::venue::auth::{self, AuthGrant, Credentials};
use hotpath::venue::conn::{ConnConfig, ConnError, Connection};
use hotpath::venue::messages::ResultPayload;
use hotpath::venue::{methods, Message};
use serde::Deserialize;

mod actions;
use actions::{Action, Verdict};

/// Exit code: a key failed the probe.
pub const EXIT_PROBE_FAILED: u8 = 1;
/// Exit code: the venue could not be reached or the key file is invalid.
pub const EXIT_SETUP: u8 = 3;
/// Exit code: no key failed, but a probe proved nothing (transport, inconclusive reply).
pub const EXIT_PROBE_ERROR: u8 = 4;
/// Per-request deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys one probe run handles.
const KEYS_MAX: usize = 32;

/// `stoic keys`: API key tooling.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Authenticate each configured key, read its granted scopes, try actions outside its
    /// role (expecting refusal) and write the P0-C evidence JSON. Exits 1 if any key has more
    /// scope than its role.
    Probe(ProbeArgs),
}

#[derive(Debug, clap::Args)]
struct ProbeArgs {
    /// Venue WebSocket URL (e.g. wss://test.deribit.com/ws/api/v2). Default: an embedded
    /// simulator on 127.0.0.1 with the built-in simulator accounts.
    #[arg(long, value_name = "URL")]
    venue_url: Option<String>,
    /// Key roles and credential sources.
    #[arg(long, default_value = "config/keys.json", value_name = "PATH")]
    keys: PathBuf,
    /// Where to write the evidence JSON.
    #[arg(long, default_value = "evidence/phase0/keys/key_scope_probe.json", value_name = "PATH")]
    out: PathBuf,
    /// Operator running the probe (overrides the key file's `operator`).
    #[arg(long)]
    operator: Option<String>,
    /// Instrument of the order-entry probe (a real post-only buy far below the market).
    #[arg(long, default_value = "BTC-PERPETUAL", value_name = "NAME")]
    order_instrument: String,
    /// Accounts file of the embedded simulator (default: its built-in accounts). Ignored
    /// with --venue-url.
    #[arg(long, value_name = "PATH", conflicts_with = "venue_url")]
    sim_accounts: Option<PathBuf>,
}

/// Access levels, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Access {
    None,
    Read,
    ReadWrite,
}

impl Access {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Self::None),
            "read" => Some(Self::Read),
            "read_write" => Some(Self::ReadWrite),
            _ => None,
        }
    }
    const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Read => "read",
            Self::ReadWrite => "read_write",
        }
    }
}

/// Scope groups the probe judges (Deribit's API key scope groups).
const GROUPS: [&str; 5] = ["account", "block_trade", "custody", "trade", "wallet"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(rename = "_comment", default)]
    _comment: Option<String>,
    env: String,
    exchange: String,
    operator: String,
    roles: BTreeMap<String, Role>,
    keys: Vec<KeyEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Role {
    /// Access the role needs (group → level).
    required: BTreeMap<String, Access>,
    /// Access the role may have at most; a group not listed must be `none`.
    max: BTreeMap<String, Access>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    role: String,
    client_id: String,
    secret: SecretSource,
}

/// Where a key's secret comes from (never the key file itself).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum SecretSource {
    /// The simulator's throw-away accounts file (dev only).
    SimAccounts(PathBuf),
    /// A `{"client_id","client_secret"}` file (mode 0600/0640).
    File(PathBuf),
    /// An environment variable holding the secret.
    Env(String),
}

/// One probe request and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct ProbeResult {
    method: &'static str,
    scope_tested: String,
    expect: &'static str,
    got: String,
    verdict: Verdict,
    proves: &'static str,
    pass: bool,
    /// What was done about a wrongly accepted order.
    #[serde(skip_serializing_if = "Option::is_none")]
    cleanup: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct KeyReport {
    role: String,
    key_id: String,
    scopes: Vec<String>,
    withdraw_enabled: bool,
    excess_scopes: Vec<String>,
    missing_scopes: Vec<String>,
    not_probed: Vec<String>,
    probes: Vec<ProbeResult>,
    /// Out-of-scope requests the venue did not refuse by scope (`method (group:level): got`).
    wrongly_accepted: Vec<String>,
    /// Probes that proved nothing.
    probe_errors: Vec<String>,
    pass: bool,
}

/// Redacts a client id: first 4 and last 3 characters.
fn redact(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "***".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}***{tail}")
}

/// Parses the granted scope string into `group → access` (other tokens ignored).
fn parse_granted(scope: &str) -> BTreeMap<String, Access> {
    scope
        .split(' ')
        .filter_map(|t| t.split_once(':'))
        .filter(|(g, _)| GROUPS.contains(g))
        .filter_map(|(g, a)| Access::parse(a).map(|a| (g.to_string(), a)))
        .collect()
}

fn load_secret(source: &SecretSource, client_id: &str, base: &Path) -> anyhow::Result<String> {
    match source {
        SecretSource::SimAccounts(path) => {
            let path = base.join(path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)?;
            v["accounts"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|a| a["keys"].as_array().into_iter().flatten())
                .find(|k| k["client_id"] == client_id)
                .and_then(|k| k["client_secret"].as_str())
                .map(str::to_owned)
                .with_context(|| format!("{client_id} not in {}", path.display()))
        }
        SecretSource::File(path) => {
            let creds = Credentials::from_file(&base.join(path))
                .map_err(|e| anyhow::anyhow!("secret file {}: {e:?}", path.display()))?;
            anyhow::ensure!(creds.client_id == client_id, "secret file is for another client id");
            Ok(creds.client_secret.expose().to_owned())
        }
        SecretSource::Env(var) => {
            std::env::var(var).with_context(|| format!("environment variable {var} not set"))
        }
    }
}

/// Authenticates `creds` on a fresh connection and returns it with the granted scope string.
fn authenticate(url: &str, creds: &Credentials) -> Result<(Connection, String), ConnError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut conn = Connection::connect(&ConnConfig::new(url), Arc::clone(&clock))?;
    let now_ms = clock.now_ms();
    let nonce = auth::make_nonce(u128::try_from(now_ms).unwrap_or(0) * 1_000_000, 1);
    let scope = conn.call(
        methods::AUTH,
        |b| auth::write_auth_params(b, creds, AuthGrant::ClientSignature, now_ms, &nonce, None),
        CALL_TIMEOUT,
        |m| match m {
            Message::Response(r) => match &r.result {
                ResultPayload::Auth(a) => Ok(a.scope.to_owned()),
                _ => Err(ConnError::UnexpectedReply),
            },
            _ => Err(ConnError::UnexpectedReply),
        },
        &mut |_| {},
    )?;
    Ok((conn, scope))
}

fn probe_key(
    url: &str,
    entry: &KeyEntry,
    role: &Role,
    secret: String,
    order_instrument: &str,
) -> anyhow::Result<KeyReport> {
    let creds = Credentials {
        client_id: entry.client_id.clone(),
        client_secret: auth::Secret::new(secret),
    };
    let (mut conn, scope) = authenticate(url, &creds)
        .map_err(|e| anyhow::anyhow!("authenticate {}: {e}", redact(&entry.client_id)))?;
    let granted = parse_granted(&scope);
    let level = |g: &str| granted.get(g).copied().unwrap_or(Access::None);
    let max = |g: &str| role.max.get(g).copied().unwrap_or(Access::None);
    let mut report = KeyReport {
        role: entry.role.clone(),
        key_id: redact(&entry.client_id),
        scopes: granted.iter().map(|(g, a)| format!("{g}:{}", a.as_str())).collect(),
        withdraw_enabled: level("wallet") == Access::ReadWrite,
        excess_scopes: Vec::new(),
        missing_scopes: Vec::new(),
        not_probed: Vec::new(),
        probes: Vec::new(),
        wrongly_accepted: Vec::new(),
        probe_errors: Vec::new(),
        pass: false,
    };
    for g in GROUPS {
        if level(g) > max(g) {
            report.excess_scopes.push(format!(
                "{g}:{} > role max {g}:{}",
                level(g).as_str(),
                max(g).as_str()
            ));
        }
    }
    for (g, need) in &role.required {
        if level(g) < *need {
            report.missing_scopes.push(format!("{g}:{}", need.as_str()));
        }
    }
    // The order probe's instrument and price come from public data, read once per key
    // (only when the role must not trade).
    let mut market = None;
    for g in GROUPS {
        for lvl in [Access::Read, Access::ReadWrite] {
            let outside = lvl > max(g);
            let inside = role.required.get(g).is_some_and(|need| lvl <= *need);
            if !outside && !inside {
                continue;
            }
            let scope_tested = format!("{g}:{}", lvl.as_str());
            let Some((action, proves)) = actions::action_for(g, lvl) else {
                if outside {
                    report.not_probed.push(format!(
                        "{scope_tested} (no request exercises it; proven by the granted scope only)"
                    ));
                }
                continue;
            };
            if !outside && !action.safe_when_permitted() {
                continue;
            }
            if action == Action::OrderEntry && market.is_none() {
                market = Some(
                    actions::market_order(&mut conn, order_instrument)
                        .map_err(|e| format!("{order_instrument}: {e}")),
                );
            }
            let (got, cleanup) = actions::run(&mut conn, url, &creds, action, market.as_ref());
            let verdict = actions::verdict(&got, outside);
            let (expect, proves) = if outside {
                ("refused_13021", proves)
            } else {
                ("accepted", "the key can do what its role needs")
            };
            let line = format!("{} ({scope_tested}): {}", action.method(), got.label());
            match verdict {
                Verdict::Fail if outside => report.wrongly_accepted.push(line),
                Verdict::Error => report.probe_errors.push(line),
                _ => {}
            }
            report.probes.push(ProbeResult {
                method: action.method(),
                scope_tested,
                expect,
                got: got.label(),
                verdict,
                proves,
                pass: verdict == Verdict::Pass,
                cleanup,
            });
        }
    }
    conn.close();
    report.pass = report.excess_scopes.is_empty()
        && report.missing_scopes.is_empty()
        && !report.withdraw_enabled
        && report.probes.iter().all(|p| p.verdict == Verdict::Pass);
    Ok(report)
}

impl KeyReport {
    /// A key fails on excess or missing scope, a wrong acceptance or a missing permission;
    /// a probe that only proved nothing is an error, not a failure.
    fn failed(&self) -> bool {
        !self.excess_scopes.is_empty()
            || !self.missing_scopes.is_empty()
            || self.withdraw_enabled
            || self.probes.iter().any(|p| p.verdict == Verdict::Fail)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` from the system clock (run metadata only).
fn timestamp_utc() -> String {
    let secs = SystemClock.now_ms().div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (H. Hinnant), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Runs `stoic keys`.
///
/// # Errors
/// Writing the evidence file; everything else maps to an exit code.
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let KeysCommand::Probe(p) = args.command;
    match probe(&p) {
        Ok(Verdict::Pass) => Ok(ExitCode::SUCCESS),
        Ok(Verdict::Fail) => Ok(ExitCode::from(EXIT_PROBE_FAILED)),
        Ok(Verdict::Error) => Ok(ExitCode::from(EXIT_PROBE_ERROR)),
        Err(e) => {
            eprintln!("keys probe: {e:#}");
            Ok(ExitCode::from(EXIT_SETUP))
        }
    }
}

fn probe(p: &ProbeArgs) -> anyhow::Result<Verdict> {
    let text = std::fs::read_to_string(&p.keys)
        .with_context(|| format!("reading {}", p.keys.display()))?;
    let file: KeysFile =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.keys.display()))?;
    anyhow::ensure!(!file.keys.is_empty() && file.keys.len() <= KEYS_MAX, "1..={KEYS_MAX} keys");
    for (name, role) in &file.roles {
        for g in role.required.keys().chain(role.max.keys()) {
            anyhow::ensure!(GROUPS.contains(&g.as_str()), "role {name}: unknown scope group {g}");
        }
        for (g, need) in &role.required {
            let max = role.max.get(g).copied().unwrap_or(Access::None);
            anyhow::ensure!(*need <= max, "role {name}: requires {g} above its max");
        }
    }
    // Secret paths are relative to the directory holding the key file's `config/`.
    let base = p
        .keys
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };

    let (sim, url, venue) = match &p.venue_url {
        Some(url) => (None, url.clone(), url.clone()),
        None => {
            let accounts = match &p.sim_accounts {
                Some(path) => Some(
                    simulator::AccountsFile::load(path)
                        .map_err(|e| anyhow::anyhow!("simulator accounts: {e}"))?,
                ),
                None => None,
            };
            let cfg = simulator::SimConfig { accounts, ..simulator::SimConfig::default() };
            let sim = simulator::Simulator::start(cfg)
                .map_err(|e| anyhow::anyhow!("embedded simulator: {e}"))?;
            let url = sim.ws_url();
            (Some(sim), url, "embedded-simulator".to_string())
        }
    };
    let mut reports = Vec::with_capacity(file.keys.len());
    let mut failure = None;
    for entry in &file.keys {
        let Some(role) = file.roles.get(&entry.role) else {
            failure = Some(anyhow::anyhow!(
                "key {}: unknown role {}",
                redact(&entry.client_id),
                entry.role
            ));
            break;
        };
        let report = load_secret(&entry.secret, &entry.client_id, &base)
            .and_then(|secret| probe_key(&url, entry, role, secret, &p.order_instrument));
        match report {
            Ok(r) => reports.push(r),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if let Some(sim) = sim {
        sim.shutdown();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let pass = reports.iter().all(|r| r.pass);
    let outcome = if reports.iter().any(KeyReport::failed) {
        Verdict::Fail
    } else if pass {
        Verdict::Pass
    } else {
        Verdict::Error
    };
    let wrongly_accepted: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.wrongly_accepted.iter().map(move |w| format!("{} key {}: {w}", r.role, r.key_id))
        })
        .collect();
    let operator = p.operator.clone().unwrap_or_else(|| file.operator.clone());
    // `timestamp_utc` is a P0-C field (when the probe ran); every other field is deterministic.
    let evidence = serde_json::json!({
        "item": "P0-C",
        "env": file.env,
        "exchange": file.exchange,
        "venue": venue,
        "operator": operator,
        "withdraw_enabled": reports.iter().any(|r| r.withdraw_enabled),
        "outcome": outcome,
        "pass": pass,
        "wrongly_accepted": wrongly_accepted,
        "keys": reports,
        "timestamp_utc": timestamp_utc(),
    });
    if let Some(folder) = p.out.parent().filter(|f| !f.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)?;
    }
    let mut body = serde_json::to_string_pretty(&evidence)?;
    body.push('\n');
    std::fs::write(&p.out, body).with_context(|| format!("writing {}", p.out.display()))?;
    let mut out = std::io::stdout().lock();
    for r in &reports {
        writeln!(
            out,
            "{} {} role={} scopes=[{}] withdraw_enabled={}{}",
            if r.pass { "PASS" } else { "FAIL" },
            r.key_id,
            r.role,
            r.scopes.join(" "),
            r.withdraw_enabled,
            if r.excess_scopes.is_empty() {
                String::new()
            } else {
                format!(" excess=[{}]", r.excess_scopes.join("; "))
            },
        )?;
        for probe in r.probes.iter().filter(|p| !p.pass) {
            writeln!(
                out,
                "  {:?}: probe {} ({}) expected {} got {}{}",
                probe.verdict,
                probe.method,
                probe.scope_tested,
                probe.expect,
                probe.got,
                probe.cleanup.as_deref().map(|c| format!("; {c}")).unwrap_or_default()
            )?;
        }
    }
    writeln!(out, "wrote {}", p.out.display())?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granted_scope_parsing_keeps_groups_only() {
        let g = parse_granted(
            "account:read trade:read_write wallet:none connection mainaccount name:dev-read",
        );
        assert_eq!(g.len(), 3);
        assert_eq!(g["trade"], Access::ReadWrite);
        assert_eq!(g["wallet"], Access::None);
        assert_eq!(redact("sim-dev-trade"), "sim-***ade");
    }
}
