//! Progress of a paper run: a redrawn bar on a terminal, plain lines otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::clock::DAY_MS;

/// How often a plain progress line is printed when stdout is not a terminal.
const PLAIN_LINE_EVERY: Duration = Duration::from_secs(5);
/// How often the terminal bar is redrawn.
const BAR_REDRAW_EVERY: Duration = Duration::from_millis(200);
/// Bar width in characters.
const BAR_WIDTH: usize = 30;

/// One progress reading.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// Simulated ms since trading started.
    pub sim_elapsed_ms: i64,
    /// Simulated ms the run lasts.
    pub sim_total_ms: i64,
    /// Engine events so far (orders sent, acks, fills, cancels, rejects).
    pub events: u64,
    /// Faults injected so far.
    pub faults: usize,
}

/// Draws progress.
#[derive(Debug)]
pub struct Progress {
    tty: bool,
    started: Instant,
    last_draw: Option<Instant>,
    last_events: (Instant, u64),
    events_per_s: f64,
}

impl Progress {
    /// A bar when stdout is a terminal, else plain lines.
    #[must_use]
    pub fn for_stdout() -> Self {
        Self {
            tty: std::io::stdout().is_terminal(),
            started: Instant::now(),
            last_draw: None,
            last_events: (Instant::now(), 0),
            events_per_s: 0.0,
        }
    }

    /// Shows `r` if it is time to.
    pub fn update(&mut self, r: &Reading) {
        let every = if self.tty { BAR_REDRAW_EVERY } else { PLAIN_LINE_EVERY };
        if self.last_draw.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last_draw = Some(Instant::now());
        let (t0, e0) = self.last_events;
        let dt = t0.elapsed().as_secs_f64();
        if dt > 0.0 {
            #[allow(clippy::cast_precision_loss)]
            let rate = r.events.saturating_sub(e0) as f64 / dt;
            self.events_per_s = rate;
        }
        self.last_events = (Instant::now(), r.events);
        let line = self.line(r);
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(out, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(out, "paper: {line}");
        }
        let _ = out.flush();
    }

    /// Ends the bar (a newline on a terminal).
    pub fn finish(&mut self, r: &Reading) {
        self.last_draw = None;
        let line = self.line(r);
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = writeln!(out, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(out, "paper: {line}");
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn line(&self, r: &Reading) -> String {
        let frac = if r.sim_total_ms > 0 {
            (r.sim_elapsed_ms as f64 / r.sim_total_ms as f64).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let wall = self.started.elapsed().as_secs_f64();
        let eta = if frac > 0.0 { wall / frac - wall } else { f64::NAN };
        let eta = if eta.is_finite() { format!("{eta:.0}s") } else { "?".into() };
        let day = r.sim_elapsed_ms as f64 / DAY_MS as f64;
        let total_days = r.sim_total_ms as f64 / DAY_MS as f64;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let filled = (frac * BAR_WIDTH as f64).round() as usize;
        let bar = if self.tty {
            format!("[{}{}] ", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled.min(BAR_WIDTH)))
        } else {
            String::new()
        };
        format!(
            "{bar}sim day {day:.2}/{total_days:.0} | {:.0} events/s | faults {} | wall {wall:.0}s | ETA {eta}",
            self.events_per_s, r.faults
        )
    }
}
