//! `stoic keys probe` (P0-C): passes with the shipped `config/keys.json` against the embedded
//! simulator, and FAILS (exit 1) when a key can really do what its role must not: a read-only
//! role given a trade key (its real `private/buy` is accepted, then cancelled), a trade role
//! given a wallet-enabled key (its real `private/withdraw` goes through, or is refused only by
//! the address book), a no-access role given a read key. A probe that proves nothing is exit 4,
//! never a pass. Runs the real binary; each run starts its own simulator on 127.0.0.1:0.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn probe(keys: &Path, out: &Path) -> Output {
    probe_with(keys, out, &[])
}

fn probe_with(keys: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stoic"))
        .current_dir(root())
        .args(["keys", "probe", "--keys"])
        .arg(keys)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run stoic")
}

fn key<'a>(v: &'a serde_json::Value, role: &str) -> &'a serde_json::Value {
    v["keys"].as_array().unwrap().iter().find(|k| k["role"] == role).unwrap()
}

fn probe_of<'a>(k: &'a serde_json::Value, method: &str) -> &'a serde_json::Value {
    k["probes"].as_array().unwrap().iter().find(|p| p["method"] == method).unwrap_or_else(|| {
        panic!("no {method} probe in {k}");
    })
}

/// The probe's withdrawal address (`src/cli/keys/actions.rs`).
const PROBE_WITHDRAW_ADDRESS: &str = "stoic-key-scope-probe-not-an-address";

/// The shipped simulator accounts plus a trade key that also holds `wallet:read_write` on the
/// `dev` account, optionally with the probe's address whitelisted; returns the accounts file.
fn sim_accounts_with_wallet_trade_key(dir: &Path, whitelist_probe_address: bool) -> PathBuf {
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("config/sim_accounts.json")).unwrap(),
    )
    .unwrap();
    let dev = &mut v["accounts"][0];
    dev["keys"].as_array_mut().unwrap().push(serde_json::json!({
        "name": "dev-trade-wallet", "client_id": "sim-dev-trade-wallet",
        "client_secret": "sim-dev-trade-wallet-secret",
        "scopes": "account:read_write trade:read_write wallet:read_write"
    }));
    if whitelist_probe_address {
        dev["address_book"]["BTC"].as_array_mut().unwrap().push(PROBE_WITHDRAW_ADDRESS.into());
    }
    let path = dir.join("sim_accounts.json");
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

fn read(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out).expect("evidence written")).expect("json")
}

/// A copy of the shipped key file with `client_id` of the key in `role` replaced.
fn keys_with(dir: &Path, role: &str, client_id: &str) -> PathBuf {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("config/keys.json")).unwrap())
            .unwrap();
    for key in v["keys"].as_array_mut().unwrap() {
        if key["role"] == role {
            key["client_id"] = client_id.into();
        }
    }
    // Absolute secret paths, so the copy works from a temporary folder.
    let accounts = dir.join("sim_accounts.json");
    let accounts =
        if accounts.exists() { accounts } else { root().join("config/sim_accounts.json") };
    for key in v["keys"].as_array_mut().unwrap() {
        key["secret"] = serde_json::json!({ "sim_accounts": accounts });
    }
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let path = dir.join("config/keys.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    path
}

#[test]
fn shipped_keys_pass_with_p0c_fields() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("probe.json");
    let o = probe(&root().join("config/keys.json"), &out);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let v = read(&out);
    for field in ["env", "exchange", "operator", "withdraw_enabled", "keys"] {
        assert!(!v[field].is_null(), "P0-C field {field}");
    }
    assert!(v["timestamp_utc"].as_str().unwrap().ends_with('Z'), "P0-C field timestamp_utc");
    assert_eq!(v["pass"], true);
    assert_eq!(v["outcome"], "pass");
    assert_eq!(v["withdraw_enabled"], false);
    assert_eq!(v["wrongly_accepted"], serde_json::json!([]));
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    for k in keys {
        assert!(k["key_id"].as_str().unwrap().contains("***"), "redacted");
        assert!(!k["scopes"].as_array().unwrap().is_empty());
        assert_eq!(k["withdraw_enabled"], false);
        assert_eq!(k["probe_errors"], serde_json::json!([]));
        // Every out-of-scope level of trade, account and wallet was exercised for real.
        for np in k["not_probed"].as_array().unwrap() {
            let np = np.as_str().unwrap();
            assert!(np.starts_with("block_trade:") || np.starts_with("custody:"), "{np}");
        }
        for p in k["probes"].as_array().unwrap() {
            assert_eq!(p["verdict"], "pass", "{p}");
        }
    }
    // The read-only key really tried to trade, and to change account settings: refused (13021).
    let read_only = key(&v, "read_only");
    assert_eq!(probe_of(read_only, "private/buy")["got"], "refused_13021");
    assert_eq!(probe_of(read_only, "private/enable_cancel_on_disconnect")["got"], "refused_13021");
    // The trade key really tried to withdraw and to read the withdrawals: refused (13021).
    let trade = key(&v, "trade");
    assert_eq!(probe_of(trade, "private/withdraw")["got"], "refused_13021");
    assert_eq!(probe_of(trade, "private/get_withdrawals")["got"], "refused_13021");
    assert_eq!(probe_of(trade, "private/get_positions")["got"], "accepted");
    assert!(
        trade["probes"].as_array().unwrap().iter().all(|p| p["method"] != "private/buy"),
        "a key allowed to trade is never made to place an order"
    );
    // The no-access key cannot read positions, trade or withdraw.
    let none = key(&v, "no_access");
    for m in ["private/get_positions", "private/buy", "private/withdraw"] {
        assert_eq!(probe_of(none, m)["got"], "refused_13021", "{m}");
    }
    // Deterministic apart from the P0-C timestamp: a second run gives the same content.
    let out2 = dir.path().join("probe2.json");
    assert!(probe(&root().join("config/keys.json"), &out2).status.success());
    let (mut a, mut b) = (v, read(&out2));
    a.as_object_mut().unwrap().remove("timestamp_utc");
    b.as_object_mut().unwrap().remove("timestamp_utc");
    assert_eq!(a, b);
}

#[test]
fn read_only_role_with_trade_key_fails() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_with(dir.path(), "read_only", "sim-dev-trade");
    let out = dir.path().join("probe.json");
    let o = probe(&keys, &out);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
    let v = read(&out);
    assert_eq!(v["pass"], false);
    let k =
        v["keys"].as_array().unwrap().iter().find(|k| k["role"] == "read_only").unwrap().clone();
    assert_eq!(k["pass"], false);
    let excess: Vec<&str> =
        k["excess_scopes"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert!(excess.iter().any(|e| e.starts_with("trade:read_write")), "{excess:?}");
    assert!(excess.iter().any(|e| e.starts_with("account:read_write")), "{excess:?}");
    // The out-of-role requests went through: the probe saw them accepted and failed on them.
    let cod = probe_of(&k, "private/enable_cancel_on_disconnect");
    assert_eq!((&cod["got"], &cod["verdict"]), (&"accepted".into(), &"fail".into()));
    // A real order was placed with the "read-only" key: accepted, so the key fails, and the
    // order was cancelled straight away.
    let buy = probe_of(&k, "private/buy");
    assert_eq!((&buy["got"], &buy["verdict"]), (&"accepted".into(), &"fail".into()));
    assert!(buy["cleanup"].as_str().unwrap().ends_with("cancelled at once"), "{buy}");
    let named: Vec<&str> =
        v["wrongly_accepted"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(
        named
            .iter()
            .any(|w| w.starts_with("read_only key sim-***ade: private/buy (trade:read_write)")),
        "{named:?}"
    );
    assert_eq!(v["outcome"], "fail");
}

#[test]
fn trade_role_with_wallet_key_fails_when_its_withdrawal_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = sim_accounts_with_wallet_trade_key(dir.path(), true);
    let keys = keys_with(dir.path(), "trade", "sim-dev-trade-wallet");
    let out = dir.path().join("probe.json");
    let o = probe_with(&keys, &out, &["--sim-accounts", accounts.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
    let v = read(&out);
    assert_eq!(v["withdraw_enabled"], true);
    let k = key(&v, "trade");
    assert_eq!(k["pass"], false);
    let w = probe_of(k, "private/withdraw");
    assert_eq!((&w["got"], &w["verdict"]), (&"accepted".into(), &"fail".into()));
    assert_eq!(probe_of(k, "private/get_withdrawals")["got"], "accepted");
    assert!(v["wrongly_accepted"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("private/withdraw (wallet:read_write): accepted")));
    // The other keys are untouched by it.
    assert_eq!(key(&v, "read_only")["pass"], true);
}

#[test]
fn trade_role_with_wallet_key_fails_even_when_only_the_address_book_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = sim_accounts_with_wallet_trade_key(dir.path(), false);
    let keys = keys_with(dir.path(), "trade", "sim-dev-trade-wallet");
    let out = dir.path().join("probe.json");
    let o = probe_with(&keys, &out, &["--sim-accounts", accounts.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let v = read(&out);
    let w = probe_of(key(&v, "trade"), "private/withdraw");
    // 11030 address_not_in_address_book: the venue judged the withdrawal, so the scope let it in.
    assert_eq!(w["got"], "refused_past_scope_check_11030");
    assert_eq!(w["verdict"], "fail");
}

#[test]
fn a_probe_that_proves_nothing_is_an_error_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("probe.json");
    // No such instrument: no safe price, so no order is sent and nothing is proven about
    // trade:read_write for the read-only and no-access keys.
    let o = probe_with(
        &root().join("config/keys.json"),
        &out,
        &["--order-instrument", "BTC-NO-SUCH-INSTRUMENT"],
    );
    assert_eq!(o.status.code(), Some(4), "{}", String::from_utf8_lossy(&o.stdout));
    let v = read(&out);
    assert_eq!((&v["pass"], &v["outcome"]), (&false.into(), &"error".into()));
    let buy = probe_of(key(&v, "read_only"), "private/buy");
    assert_eq!(buy["verdict"], "error");
    assert!(buy["got"].as_str().unwrap().starts_with("probe_error: market data"), "{buy}");
    assert_eq!(key(&v, "read_only")["probe_errors"].as_array().unwrap().len(), 1);
}

#[test]
fn no_access_role_with_read_key_fails() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_with(dir.path(), "no_access", "sim-dev-read");
    let out = dir.path().join("probe.json");
    let o = probe(&keys, &out);
    assert_eq!(o.status.code(), Some(1));
    let v = read(&out);
    let k = key(&v, "no_access");
    assert_eq!(probe_of(k, "private/get_positions")["got"], "accepted");
    assert_eq!(probe_of(k, "private/buy")["got"], "refused_13021", "the read key cannot trade");
}

#[test]
fn unknown_key_is_a_setup_error() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_with(dir.path(), "trade", "sim-nobody");
    let o = probe(&keys, &dir.path().join("probe.json"));
    assert_eq!(o.status.code(), Some(3));
}
