//! `stoic drill break-glass` (P0-D): runs `docs/break_glass_runbook.md` against the simulator.
//!
//! 1. starts `stoic run` (embedded simulator) with the `runaway` strategy, which keeps adding
//!    post-only opens and never closes;
//! 2. waits until the simulator's order journal shows opens and the engine holds a position;
//! 3. throws the kill switch with the runbook's command (`stoic mode kill …`);
//! 4. watches: no open may reach the simulator after the Kill was acknowledged, and
//!    `stoic status` must say Kill / not allowed;
//! 5. automatic containment (contract A §2.2.3.6, AT-338): with a position held, the engine
//!    closes it by itself in Kill — the journal must show reduce-only IOC orders after the Kill
//!    and before the operator's command, and the engine flat (bounded wait);
//! 6. runs the runbook's emergency close (`stoic emergency close …`) anyway, as the runbook
//!    says: it must succeed (with nothing left it sends nothing); over the whole drill only
//!    reduce-only IOC orders after the Kill, at least one of them filled, the engine flat;
//!    drill.md says which orders came from automatic containment and which from the command;
//! 7. the journal oracle (`simulator::journal::Summary`): no duplicate, no illegal order;
//! 8. relaxes with the runbook's command (`stoic mode relax --to active …`).
//!
//! The simulator's journal is the independent witness: the drill reads it, never the engine's
//! own counters, to decide steps 2, 4 and 5. Evidence: `drill.md` (timestamps, commands,
//! journal excerpts, pass/fail per step), `log_excerpt.txt`, and `runbook_snapshot.md` (the
//! runbook the drill followed). Exit 0 only if every step passed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use coldpath::client;
use coldpath::status::{format_rfc3339_ms, now_ms, StatusSnapshot};
use serde_json::Value;
use simulator::journal::{Entry, Summary};

use super::drill::BreakGlassArgs;

/// Opens the journal must show before the Kill (the runaway is really running).
const OPENS_BEFORE_KILL_MIN: usize = 3;
/// Lines of the engine's log kept in `log_excerpt.txt`.
const LOG_EXCERPT_LINES_MAX: usize = 60;
/// Longest wait for automatic containment to leave the engine flat after the Kill.
const CONTAINMENT_WAIT: Duration = Duration::from_secs(30);

/// One step's verdict.
#[derive(Debug)]
struct Step {
    name: &'static str,
    at_ms: i64,
    ok: bool,
    detail: String,
}

/// A command the drill ran, as an operator would type it.
#[derive(Debug)]
struct Ran {
    at_ms: i64,
    line: String,
    exit: i32,
    stdout: String,
    stderr: String,
}

#[derive(Debug, Default)]
struct Record {
    steps: Vec<Step>,
    commands: Vec<Ran>,
    kill_sent_ms: i64,
    kill_ack_ms: i64,
    last_open_before_ack: Option<Entry>,
    opens_before: Vec<Entry>,
    after_kill: Vec<Entry>,
    /// When the operator's `stoic emergency close` started (orders before it, after the
    /// Kill, are automatic containment's).
    close_cmd_ms: i64,
    /// Kill acknowledged → engine flat, as the drill observed it (status polls).
    kill_to_flat_ms: Option<i64>,
    summary: Option<Summary>,
    observed: Vec<String>,
}

impl Record {
    fn step(&mut self, name: &'static str, ok: bool, detail: impl Into<String>) -> bool {
        let detail = detail.into();
        println!("drill: [{}] {name}: {detail}", if ok { "PASS" } else { "FAIL" });
        self.steps.push(Step { name, at_ms: now_ms(), ok, detail });
        ok
    }

    fn passed(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.ok)
    }
}

/// The engine under drill and where its files are.
struct Setup {
    exe: PathBuf,
    work: PathBuf,
    url: String,
    token_file: PathBuf,
    socket: PathBuf,
    journal: PathBuf,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
}

fn repo_file(rel: &str) -> PathBuf {
    let here = PathBuf::from(rel);
    if here.exists() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(l.local_addr()?.port())
}

/// Runs the drill.
///
/// # Errors
/// Set-up failures (engine cannot start, evidence cannot be written).
pub fn run(args: &BreakGlassArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("locate the stoic binary")?;
    let work = args.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("stoic-drill-{}-{}", std::process::id(), now_ms()))
    });
    std::fs::create_dir_all(&work).with_context(|| format!("create {}", work.display()))?;
    let wal = work.join("wal");
    let port = free_port()?;
    let setup = Setup {
        exe: exe.clone(),
        url: format!("http://127.0.0.1:{port}"),
        token_file: wal.join("control_token"),
        socket: wal.join(crate::engine::operator_socket::SOCKET_FILE),
        journal: work.join("sim_journal.jsonl"),
        stdout_log: work.join("run.stdout.log"),
        stderr_log: work.join("run.stderr.log"),
        work: work.clone(),
    };
    let policy = repo_file("config/policy_churn.json");
    let mut rec = Record::default();
    let engine_line = format!(
        "stoic run --wal-dir {} --strategy runaway --seed 1 --policy {} --status-addr 127.0.0.1:{port}",
        wal.display(),
        policy.display()
    );
    println!("drill: work dir {}; starting: {engine_line}", work.display());
    let mut child = Command::new(&exe)
        .args(["run", "--wal-dir"])
        .arg(&wal)
        .args(["--strategy", "runaway", "--seed", "1", "--policy"])
        .arg(&policy)
        .args(["--status-addr", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(File::create(&setup.stdout_log)?)
        .stderr(File::create(&setup.stderr_log)?)
        .spawn()
        .context("start `stoic run`")?;
    rec.commands.push(Ran {
        at_ms: now_ms(),
        line: engine_line,
        exit: -1,
        stdout: String::new(),
        stderr: String::new(),
    });
    steps(&setup, args, &mut rec);
    stop(&mut child);
    rec.observed.push(format!(
        "engine stopped with SIGTERM; exit status {:?}",
        child.try_wait().ok().flatten()
    ));
    write_evidence(&setup, &args.out_dir, &rec)?;
    println!(
        "drill: {} — evidence in {}",
        if rec.passed() { "PASS" } else { "FAIL" },
        args.out_dir.display()
    );
    Ok(if rec.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn steps(s: &Setup, args: &BreakGlassArgs, rec: &mut Record) {
    // 1. Engine up and trading.
    let up = wait_for(Duration::from_secs(60), || {
        status(&s.url)
            .filter(|st| st.trading_mode == hotpath::domain::reason_codes::TradingMode::Active)
    });
    if !rec.step(
        "engine up, Active",
        up.is_some(),
        match &up {
            Some(st) => format!(
                "status server {} answers; trading_mode=Active, is_trading_allowed={}",
                s.url, st.is_trading_allowed
            ),
            None => format!(
                "no Active status from {} within 60 s (see {})",
                s.url,
                s.stdout_log.display()
            ),
        },
    ) {
        return;
    }

    // 2. The runaway's opens reach the venue and build a position. Its post-only opens rest
    // at the touch and fill only when someone trades with them; if none has filled after a
    // few seconds, a counterparty account takes them at their price, so the drill does not
    // hang on a quiet simulated market.
    let mut nudged = false;
    let nudge_after = Instant::now() + Duration::from_secs(5);
    let built = wait_for(Duration::from_secs(args.position_wait_s), || {
        let entries = journal(&s.journal);
        let opens = entries.iter().filter(|e| is_open(e)).count();
        let exposed = status(&s.url).is_some_and(|st| st.positions.iter().any(|p| p.size != 0.0));
        if opens >= OPENS_BEFORE_KILL_MIN && !exposed && !nudged && Instant::now() >= nudge_after {
            nudged = counterparty_takes_opens(&s.stdout_log, &entries);
        }
        (opens >= OPENS_BEFORE_KILL_MIN && exposed).then_some(opens)
    });
    let positions = status(&s.url).map(|st| positions_text(&st)).unwrap_or_default();
    if !rec.step(
        "runaway opens reach the venue",
        built.is_some(),
        match built {
            Some(n) => format!(
                "simulator journal shows {n} opens; engine positions: {positions}{}",
                if nudged { " (filled by a counterparty: the simulator's bench account took the resting opens at their price)" } else { "" }
            ),
            None => format!(
                "fewer than {OPENS_BEFORE_KILL_MIN} opens or no position within {} s",
                args.position_wait_s
            ),
        },
    ) {
        return;
    }

    // 3. Kill switch, exactly as the runbook says.
    let reason_kill = "break-glass drill: runaway strategy";
    rec.kill_sent_ms = now_ms();
    let kill = run_cli(
        s,
        rec,
        &[
            "mode",
            "kill",
            "--url",
            &s.url,
            "--token-file",
            &path(&s.token_file),
            "--reason",
            reason_kill,
            "--requested-by",
            "drill-operator",
        ],
    );
    rec.kill_ack_ms = now_ms();
    let kill_ok = kill.is_some_and(|code| code == 0);
    if !rec.step(
        "kill acknowledged",
        kill_ok,
        format!(
            "`stoic mode kill` exit {}; sent→acknowledged {} ms",
            kill.unwrap_or(-1),
            rec.kill_ack_ms - rec.kill_sent_ms
        ),
    ) {
        return;
    }

    // 4. No opens after the acknowledgement; status says Kill.
    std::thread::sleep(Duration::from_secs(args.watch_s));
    let entries = journal(&s.journal);
    rec.opens_before =
        entries.iter().filter(|e| is_open(e) && e.ts_ms <= rec.kill_ack_ms).cloned().collect();
    rec.last_open_before_ack = rec.opens_before.last().cloned();
    let opens_after: Vec<&Entry> =
        entries.iter().filter(|e| is_open(e) && e.ts_ms > rec.kill_ack_ms).collect();
    rec.step(
        "no opens after the Kill",
        opens_after.is_empty(),
        format!(
        "watched {} s: {} open(s) reached the simulator after the acknowledgement ({} before it)",
        args.watch_s,
        opens_after.len(),
        rec.opens_before.len()
    ),
    );
    let st_code = run_cli(s, rec, &["status", "--url", &s.url]);
    let st = status(&s.url);
    let killed = st.as_ref().is_some_and(|st| {
        st.trading_mode == hotpath::domain::reason_codes::TradingMode::Kill
            && !st.is_trading_allowed
    });
    rec.step("status shows Kill", killed && st_code == Some(0), match &st {
        Some(st) => format!(
            "`stoic status` exit {}; trading_mode={:?} is_trading_allowed={} mode_reasons={:?}; positions: {}",
            st_code.unwrap_or(-1), st.trading_mode, st.is_trading_allowed,
            st.mode_reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(), positions_text(st)
        ),
        None => "no status".into(),
    });
    if let Some(line) = last_progress(&s.stdout_log) {
        rec.observed.push(format!(
            "engine progress while killed (the runaway keeps asking, the gates refuse): {line}"
        ));
    }

    // 5. Automatic containment (AT-338): Kill with a position ⇒ the engine closes it by
    // itself, reduce-only IOC, bounded. Nobody has run `stoic emergency close` yet.
    let flat_at = wait_for(CONTAINMENT_WAIT, || {
        status(&s.url).filter(|st| st.positions.iter().all(|p| p.size == 0.0)).map(|_| now_ms())
    });
    let entries = journal(&s.journal);
    // The runaway never sends reduce-only orders: every one after the Kill was sent is
    // containment's (it may land before the CLI process that sent the Kill has exited).
    let auto: Vec<&Entry> = entries
        .iter()
        .filter(|e| is_new_order(e) && flag(e, "reduce_only") && e.ts_ms > rec.kill_sent_ms)
        .collect();
    let auto_ok = auto.iter().all(|e| flag(e, "reduce_only") && is_ioc(e));
    let auto_filled = auto.iter().filter(|e| is_filled(e)).count();
    // Venue time of the last containment order, from the Kill request (the journal's clock).
    rec.kill_to_flat_ms =
        flat_at.and(auto.iter().map(|e| e.ts_ms).max()).map(|t| t - rec.kill_sent_ms);
    rec.step(
        "automatic containment",
        flat_at.is_some() && !auto.is_empty() && auto_ok && auto_filled > 0,
        format!(
            "without any operator command, {} order(s) reached the simulator after the Kill, all reduce-only IOC: {auto_ok}, filled: {auto_filled}; engine flat {}",
            auto.len(),
            match rec.kill_to_flat_ms {
                Some(ms) => format!("(the venue handled the last containment order {ms} ms after the Kill request was sent)"),
                None => format!("NOT within {} s", CONTAINMENT_WAIT.as_secs()),
            }
        ),
    );
    if let Some(line) = engine_lines(&s.stdout_log, "kill containment:").last() {
        rec.observed.push(format!("engine: {line}"));
    }

    // 6. The runbook's emergency close still works (nothing left to close: it sends nothing).
    rec.close_cmd_ms = now_ms();
    let close = run_cli(
        s,
        rec,
        &[
            "emergency",
            "close",
            "--url",
            &s.url,
            "--token-file",
            &path(&s.token_file),
            "--reason",
            "break-glass drill: flatten",
            "--requested-by",
            "drill-operator",
        ],
    );
    let entries = journal(&s.journal);
    // After the acknowledgement, and containment's reduce-only orders from the Kill request on.
    rec.after_kill = entries
        .iter()
        .filter(|e| {
            is_new_order(e)
                && (e.ts_ms > rec.kill_ack_ms
                    || (flag(e, "reduce_only") && e.ts_ms > rec.kill_sent_ms))
        })
        .cloned()
        .collect();
    let all_reducing = rec.after_kill.iter().all(|e| flag(e, "reduce_only"));
    let all_ioc = rec.after_kill.iter().all(is_ioc);
    let filled = rec.after_kill.iter().filter(|e| is_filled(e)).count();
    let by_cmd = rec.after_kill.iter().filter(|e| e.ts_ms >= rec.close_cmd_ms).count();
    let flat = status(&s.url).is_some_and(|st| st.positions.iter().all(|p| p.size == 0.0));
    rec.step(
        "emergency close went through",
        close == Some(0) && !rec.after_kill.is_empty() && all_reducing && all_ioc && filled > 0 && flat,
        format!(
            "`stoic emergency close` exit {}; {} order(s) after the Kill ({} from automatic containment, {by_cmd} from the command), all reduce-only: {all_reducing}, all IOC: {all_ioc}, filled: {filled}; engine flat afterwards: {flat}",
            close.unwrap_or(-1),
            rec.after_kill.len(),
            rec.after_kill.len() - by_cmd
        ),
    );

    // 7. The oracle.
    match Summary::from_file(&s.journal) {
        Ok(sum) => {
            rec.step(
                "journal oracle clean",
                sum.duplicate_dispatch_count == 0 && sum.illegal_order_attempts == 0 && sum.unparsable_lines == 0,
                format!(
                    "new_order_requests={} duplicate_dispatch_count={} illegal_order_attempts={} post_only_in_flight_races={} unparsable_lines={}",
                    sum.new_order_requests, sum.duplicate_dispatch_count, sum.illegal_order_attempts, sum.post_only_in_flight_races, sum.unparsable_lines
                ),
            );
            for line in simulator::journal::lines_with_seqs(&s.journal, &sum.illegal_seqs, 5)
                .unwrap_or_default()
            {
                println!("drill: illegal order attempt in the venue journal: {line}");
            }
            rec.summary = Some(sum);
        }
        Err(e) => {
            rec.step("journal oracle clean", false, format!("journal unreadable: {e}"));
        }
    }

    // 8. Relax (host socket), as the runbook's last step.
    let relax = run_cli(
        s,
        rec,
        &[
            "mode",
            "relax",
            "--to",
            "active",
            "--socket",
            &path(&s.socket),
            "--token-file",
            &path(&s.token_file),
            "--reason",
            "break-glass drill over: cause understood",
            "--requested-by",
            "drill-operator",
        ],
    );
    let active = status(&s.url)
        .is_some_and(|st| st.trading_mode == hotpath::domain::reason_codes::TradingMode::Active);
    rec.step(
        "relax to Active",
        relax == Some(0) && active,
        format!(
            "`stoic mode relax` exit {}; trading_mode Active afterwards: {active}",
            relax.unwrap_or(-1)
        ),
    );
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// Runs `stoic <args>` (this binary) and records it; returns the exit code.
fn run_cli(s: &Setup, rec: &mut Record, args: &[&str]) -> Option<i32> {
    let at_ms = now_ms();
    let line = std::iter::once("stoic".to_owned())
        .chain(
            args.iter().map(|a| if a.contains(' ') { format!("\"{a}\"") } else { (*a).to_owned() }),
        )
        .collect::<Vec<_>>()
        .join(" ");
    println!("drill: $ {line}");
    let out = Command::new(&s.exe).args(args).stdin(Stdio::null()).output();
    let (exit, stdout, stderr) = match out {
        Ok(o) => (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (-1, String::new(), format!("could not run: {e}")),
    };
    rec.commands.push(Ran { at_ms, line, exit, stdout, stderr });
    (exit >= 0).then_some(exit)
}

/// Another market participant (the simulator's `bench` account) takes the runaway's most
/// recent resting open on each instrument with an IOC limit order at the same price, sized to
/// clear that price level. The market price does not move, so the engine's book stays true and
/// none of its later post-only orders can cross. Returns whether an order was sent.
fn counterparty_takes_opens(stdout_log: &Path, entries: &[Entry]) -> bool {
    let Some(addr) = std::fs::read_to_string(stdout_log).ok().and_then(|t| {
        t.lines().find_map(|l| {
            let ws = l.strip_prefix("simulator: ")?.split_whitespace().next()?;
            ws.strip_prefix("ws://")?.split('/').next()?.parse::<std::net::SocketAddr>().ok()
        })
    }) else {
        return false;
    };
    let Ok(mut c) = simulator::client::WsClient::connect(addr) else { return false };
    if c.auth("sim-bench", "sim-bench-secret-0005").is_err() {
        return false;
    }
    let mut sent = false;
    for prefix in ["BTC-", "ETH-"] {
        let Some(e) = entries.iter().rev().filter(|e| is_open(e)).find(|e| {
            e.key == "sim-dev-trade"
                && e.instrument.as_deref().is_some_and(|i| i.starts_with(prefix))
        }) else {
            continue;
        };
        let (Some(inst), Some(side), Some(price), Some(amount)) =
            (e.instrument.as_deref(), e.side.as_deref(), e.price, e.amount)
        else {
            continue;
        };
        let method = if side == "sell" { "private/buy" } else { "private/sell" };
        let params = serde_json::json!({
            "instrument_name": inst,
            "amount": amount * 1000.0,
            "type": "limit",
            "price": price,
            "time_in_force": "immediate_or_cancel",
            "label": format!("drill-counterparty-{}", prefix.trim_end_matches('-')),
        });
        sent |= c.call(method, &params).is_ok();
    }
    sent
}

fn status(url: &str) -> Option<StatusSnapshot> {
    let r = client::get(url, "/api/v1/status", Duration::from_secs(2)).ok()?;
    (r.status == 200).then(|| serde_json::from_slice(&r.body).ok()).flatten()
}

fn positions_text(st: &StatusSnapshot) -> String {
    let v: Vec<String> = st
        .positions
        .iter()
        .filter(|p| p.size != 0.0)
        .map(|p| format!("{} {}", p.instrument_name, p.size))
        .collect();
    if v.is_empty() {
        "flat".into()
    } else {
        v.join(", ")
    }
}

fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn journal(p: &Path) -> Vec<Entry> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
        .collect()
}

fn is_new_order(e: &Entry) -> bool {
    e.method == "private/buy" || e.method == "private/sell"
}

fn is_ioc(e: &Entry) -> bool {
    e.flags.get("time_in_force").and_then(Value::as_str) == Some("immediate_or_cancel")
}

fn is_filled(e: &Entry) -> bool {
    e.result.get("order_state").and_then(Value::as_str) == Some("filled")
}

/// The engine's stdout lines starting with `prefix`.
fn engine_lines(log: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

fn flag(e: &Entry, k: &str) -> bool {
    e.flags.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// A new order that can add exposure: the venue sees `reduce_only` absent or false.
fn is_open(e: &Entry) -> bool {
    is_new_order(e) && !flag(e, "reduce_only")
}

fn last_progress(log: &Path) -> Option<String> {
    std::fs::read_to_string(log)
        .ok()?
        .lines()
        .rev()
        .find(|l| l.starts_with("progress:"))
        .map(str::to_owned)
}

/// SIGTERM (clean shutdown: open orders cancelled, WAL synced), SIGKILL after 15 s.
fn stop(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        #[allow(unsafe_code)]
        // SAFETY: sending a signal to our own child process by its id; no memory involved.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn journal_line(e: &Entry) -> String {
    format!(
        "seq={} {} {} {} {} amount={} price={} reduce_only={} tif={} label={} → {}",
        e.seq,
        format_rfc3339_ms(e.ts_ms),
        e.method,
        e.instrument.as_deref().unwrap_or("-"),
        e.side.as_deref().unwrap_or("-"),
        e.amount.unwrap_or(0.0),
        e.price.map_or_else(|| "-".into(), |p| p.to_string()),
        flag(e, "reduce_only"),
        e.flags.get("time_in_force").and_then(Value::as_str).unwrap_or("-"),
        e.label.as_deref().unwrap_or("-"),
        e.result
    )
}

fn write_evidence(s: &Setup, out: &Path, rec: &Record) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let mut md = String::new();
    let verdict = if rec.passed() { "PASS" } else { "FAIL" };
    let t = |ms: i64| format_rfc3339_ms(ms);
    md.push_str("# Break-glass drill (P0-D)\n\n");
    md.push_str(&format!(
        "Written by `stoic drill break-glass` (build `{}`), {}. **Result: {verdict}.**\n\n",
        super::health::BUILD_ID,
        t(rec.steps.first().map_or_else(now_ms, |s| s.at_ms))
    ));
    md.push_str("## Scenario\nThe engine runs against its embedded simulator with the `runaway` strategy, which keeps adding post-only opens on BTC-PERPETUAL and ETH-PERPETUAL and never closes. Once the simulator's order journal shows opens and the engine holds a position, the operator follows `docs/break_glass_runbook.md`: kill switch (`stoic mode kill`), check `stoic status`, emergency close (`stoic emergency close`), relax (`stoic mode relax`). The simulator's order journal is the independent witness.\n\nSince contract A §2.2.3.6 (AT-338) the engine does not wait for the operator's emergency close: in Kill with a position it runs the same bounded emergency close by itself (reduce-only IOC). The drill checks that this happened before the operator's command (step \"automatic containment\"), then runs the runbook's command anyway — it must still succeed, and with nothing left to close it sends nothing. The journal excerpt below marks each order after the Kill with its source.\n\n");
    md.push_str("## Steps\n| # | step | at (UTC) | result | detail |\n|---|---|---|---|---|\n");
    for (i, st) in rec.steps.iter().enumerate() {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            i + 1,
            st.name,
            t(st.at_ms),
            if st.ok { "PASS" } else { "FAIL" },
            st.detail.replace('|', "/")
        ));
    }
    md.push_str("\n## Time to halt\n");
    if rec.kill_ack_ms > 0 {
        md.push_str(&format!(
            "- kill command started {} and acknowledged {} ({} ms, including starting the CLI process);\n",
            t(rec.kill_sent_ms),
            t(rec.kill_ack_ms),
            rec.kill_ack_ms - rec.kill_sent_ms
        ));
        if let Some(e) = &rec.last_open_before_ack {
            md.push_str(&format!(
                "- last open the simulator received: {} ({} ms before the acknowledgement);\n",
                t(e.ts_ms),
                rec.kill_ack_ms - e.ts_ms
            ));
        }
        md.push_str(
            "- opens received after the acknowledgement: see step \"no opens after the Kill\".\n",
        );
        match rec.kill_to_flat_ms {
            Some(ms) => md.push_str(&format!(
                "- flat by automatic containment: the simulator handled the last containment order {ms} ms after the kill command started (journal time; the engine's own timing is in its `kill containment:` line under Observed behaviour).\n"
            )),
            None => md.push_str("- the engine was not seen flat before the operator's emergency close.\n"),
        }
    } else {
        md.push_str("- the kill switch was not reached (an earlier step failed).\n");
    }
    md.push_str("\n## Commands run\n");
    for c in &rec.commands {
        let exit = if c.exit < 0 {
            "background (stopped with SIGTERM at the end)".to_owned()
        } else {
            format!("exit {}", c.exit)
        };
        md.push_str(&format!("{} — {exit}\n```sh\n{}\n```\n", t(c.at_ms), c.line));
        let shown: String = c.stdout.lines().take(12).collect::<Vec<_>>().join("\n");
        if !shown.is_empty() {
            md.push_str(&format!("```text\n{shown}\n```\n"));
        }
        if !c.stderr.trim().is_empty() {
            md.push_str(&format!("stderr:\n```text\n{}\n```\n", c.stderr.trim()));
        }
    }
    md.push_str("\n## Journal excerpts (simulator order journal)\nLast opens before the Kill was acknowledged:\n```text\n");
    for e in rec.opens_before.iter().rev().take(5).rev() {
        md.push_str(&journal_line(e));
        md.push('\n');
    }
    md.push_str("```\nEvery new order after the Kill was acknowledged, and every reduce-only order from the Kill request on (must all be reduce-only IOC), with its source:\n```text\n");
    for e in &rec.after_kill {
        md.push_str(&journal_line(e));
        md.push_str(if rec.close_cmd_ms > 0 && e.ts_ms >= rec.close_cmd_ms {
            "  [operator: stoic emergency close]"
        } else {
            "  [automatic containment]"
        });
        md.push('\n');
    }
    md.push_str("```\n");
    if let Some(sum) = &rec.summary {
        md.push_str(&format!(
            "\nOracle (`simulator::journal::Summary`): new_order_requests={}, duplicate_dispatch_count={}, illegal_order_attempts={}, post_only_in_flight_races={} (post-only orders that crossed only a book change published under 1 s before they arrived: the venue rejected them; not illegal).\n",
            sum.new_order_requests, sum.duplicate_dispatch_count, sum.illegal_order_attempts, sum.post_only_in_flight_races
        ));
    }
    md.push_str("\n## Observed behaviour\n");
    for o in &rec.observed {
        md.push_str(&format!("- {o}\n"));
    }
    md.push_str(&format!(
        "- scratch directory (WAL, journal, full logs): `{}`\n",
        s.work.display()
    ));
    md.push_str("\n## Follow-ups\n- The drill runs against the simulator only; a testnet drill with a real session is still to do.\n- Time to halt above includes starting the CLI process; the engine applies the Kill on its next loop turn (≤ one tick).\n");
    std::fs::write(out.join("drill.md"), md)?;

    let mut excerpt = String::new();
    excerpt.push_str(&format!("# stoic run stdout/stderr excerpt, drill {verdict}\n"));
    for (name, p) in [("stdout", &s.stdout_log), ("stderr", &s.stderr_log)] {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let keep: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.starts_with("stoic run:")
                    || l.starts_with("trading:")
                    || l.starts_with("mode:")
                    || l.starts_with("emergency close")
                    || l.starts_with("kill containment")
                    || l.starts_with("stopped:")
                    || l.starts_with("operator socket:")
                    || l.contains("stoic::control")
            })
            .collect();
        let progress: Vec<&str> = text.lines().filter(|l| l.starts_with("progress:")).collect();
        excerpt.push_str(&format!("## {name}\n"));
        for l in keep.iter().take(LOG_EXCERPT_LINES_MAX) {
            excerpt.push_str(l);
            excerpt.push('\n');
        }
        if !progress.is_empty() {
            excerpt.push_str("## progress (last lines)\n");
            for l in progress.iter().rev().take(6).rev() {
                excerpt.push_str(l);
                excerpt.push('\n');
            }
        }
    }
    let mut f = File::create(out.join("log_excerpt.txt"))?;
    f.write_all(excerpt.as_bytes())?;
    let runbook = repo_file("docs/break_glass_runbook.md");
    if let Ok(text) = std::fs::read_to_string(&runbook) {
        std::fs::write(out.join("runbook_snapshot.md"), text)?;
    }
    Ok(())
}
