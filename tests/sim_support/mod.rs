//! Helpers shared by the tests that run the engine against the simulator: the simulator's
//! journal as parsed lines, a free loopback port, and the control plane's status and POST
//! endpoints. Each test binary uses a subset.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use coldpath::client;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Every journal line that parses as `T` (a line being written is skipped, not an error).
pub fn journal<T: DeserializeOwned>(path: &Path) -> Vec<T> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET /api/v1/status` as JSON, `None` while the engine does not answer 200.
pub fn status(url: &str) -> Option<Value> {
    let r = client::get(url, "/api/v1/status", Duration::from_secs(2)).ok()?;
    (r.status == 200).then(|| serde_json::from_slice(&r.body).ok()).flatten()
}

/// An authenticated control-plane POST with `reason`; the HTTP status and the JSON reply.
pub fn post(url: &str, path: &str, token: &str, reason: &str, timeout: Duration) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let body = json!({"reason": reason, "requested_by": "test-operator"});
    let r = client::request(
        "POST",
        url,
        path,
        &[("Authorization", auth.as_str()), ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
        timeout,
    )
    .expect("control plane answers");
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

/// The simulator account the engine trades on (`config/sim_accounts.json`: keys
/// `sim-dev-trade` and `sim-dev-read`).
pub const ENGINE_ACCOUNT: &str = "dev";

/// Non-zero positions of `account`, read inside the simulator process (`SimHandle::state`).
///
/// Tests that poll the venue until the engine is flat must not do it over the API: the
/// account's request budget (20 non-matching requests/s) is shared with the engine under
/// test, so a 100 ms poll loop starves the engine's own reconciliation and then gets 10028
/// itself (a CI failure of `test_kill_containment_hedge_passes_hedge_gate_in_kill`).
pub fn account_positions(
    sim: &simulator::SimHandle,
    account: &str,
) -> std::collections::BTreeMap<String, f64> {
    account_rows(sim, account, "positions")
        .into_iter()
        .filter_map(|p| {
            let size = p["size"].as_f64()?;
            let name = p["instrument_name"].as_str()?.to_owned();
            (size != 0.0).then_some((name, size))
        })
        .collect()
}

/// Resting orders of `account` that are not reduce-only, read inside the simulator process
/// (no request against the account's budget; see [`account_positions`]).
pub fn resting_opens(sim: &simulator::SimHandle, account: &str) -> Vec<Value> {
    account_rows(sim, account, "open_orders")
        .into_iter()
        .filter(|o| o["reduce_only"] != true)
        .collect()
}

/// The rows under `key` of `account` in the simulator's state.
fn account_rows(sim: &simulator::SimHandle, account: &str, key: &str) -> Vec<Value> {
    let state = sim.state();
    state["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["username"] == account)
        .flat_map(|a| a[key].as_array().cloned().unwrap_or_default())
        .collect()
}
