//! `stoic keys probe` (P0-C): passes with the shipped `config/keys.json` against the embedded
//! simulator, and FAILS (exit 1) when a read-only role is given a trade key, or a no-access
//! role a read key. Runs the real binary; each run starts its own simulator on 127.0.0.1:0.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn probe(keys: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stoic"))
        .current_dir(root())
        .args(["keys", "probe", "--keys"])
        .arg(keys)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run stoic")
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
    for key in v["keys"].as_array_mut().unwrap() {
        key["secret"] =
            serde_json::json!({"sim_accounts": root().join("config/sim_accounts.json")});
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
    assert!(v["run_metadata"]["timestamp_utc"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["pass"], true);
    assert_eq!(v["withdraw_enabled"], false);
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    for k in keys {
        assert!(k["key_id"].as_str().unwrap().contains("***"), "redacted");
        assert!(!k["scopes"].as_array().unwrap().is_empty());
        assert_eq!(k["withdraw_enabled"], false);
    }
    // The read-only key's account write was actually tried and refused by the venue (13021).
    let read_only = keys.iter().find(|k| k["role"] == "read_only").unwrap();
    assert!(read_only["probes"].as_array().unwrap().iter().any(|p| {
        p["method"] == "private/enable_cancel_on_disconnect" && p["got"] == "refused_13021"
    }));
    // The no-access key cannot read positions.
    let none = keys.iter().find(|k| k["role"] == "no_access").unwrap();
    assert!(none["probes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| { p["method"] == "private/get_positions" && p["got"] == "refused_13021" }));
    // Deterministic apart from run metadata: a second run gives the same content.
    let out2 = dir.path().join("probe2.json");
    assert!(probe(&root().join("config/keys.json"), &out2).status.success());
    let (mut a, mut b) = (v, read(&out2));
    a.as_object_mut().unwrap().remove("run_metadata");
    b.as_object_mut().unwrap().remove("run_metadata");
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
    // The out-of-role request went through: the probe saw it accepted and failed on it.
    assert!(k["probes"].as_array().unwrap().iter().any(|p| {
        p["method"] == "private/enable_cancel_on_disconnect"
            && p["got"] == "accepted"
            && p["pass"] == false
    }));
}

#[test]
fn no_access_role_with_read_key_fails() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_with(dir.path(), "no_access", "sim-dev-read");
    let out = dir.path().join("probe.json");
    let o = probe(&keys, &out);
    assert_eq!(o.status.code(), Some(1));
    let v = read(&out);
    let k =
        v["keys"].as_array().unwrap().iter().find(|k| k["role"] == "no_access").unwrap().clone();
    assert!(k["probes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["method"] == "private/get_positions" && p["got"] == "accepted"));
}

#[test]
fn unknown_key_is_a_setup_error() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_with(dir.path(), "trade", "sim-nobody");
    let o = probe(&keys, &dir.path().join("probe.json"));
    assert_eq!(o.status.code(), Some(3));
}
