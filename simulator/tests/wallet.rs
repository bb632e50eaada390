//! `private/withdraw` and `private/get_withdrawals` over a real WebSocket: the wallet scope
//! is enforced with 13021 `forbidden` before anything else, and a key that holds it meets the
//! address book, the funds check and a real balance debit (P0-C's "withdraw with a trade key").

mod common;

use common::*;
use serde_json::{json, Value};
use simulator::AccountsFile;

/// The shipped accounts plus a wallet-enabled key on the `dev` account.
fn with_wallet_key() -> Sim {
    let mut v: Value = serde_json::from_str(simulator::accounts::BUILTIN).unwrap();
    v["accounts"][0]["keys"].as_array_mut().unwrap().push(json!({
        "name": "dev-wallet", "client_id": "sim-dev-wallet", "client_secret": "sim-dev-wallet-secret",
        "scopes": "account:read trade:read wallet:read_write"
    }));
    let accounts = AccountsFile::parse(&v.to_string()).unwrap();
    start_with(|c| c.accounts = Some(accounts))
}
const DEV_WALLET: (&str, &str) = ("sim-dev-wallet", "sim-dev-wallet-secret");
const WHITELISTED: &str = "sim-dev-btc-cold-wallet-1";

fn withdraw(addr: &str, amount: f64) -> Value {
    json!({"currency": "BTC", "address": addr, "amount": amount, "priority": "mid"})
}

#[test]
fn withdraw_without_wallet_scope_is_forbidden_13021() {
    let sim = start();
    for key in [DEV_TRADE, DEV_READ, PROBE_NONE] {
        let mut c = Client::connect(sim.handle.addr());
        c.auth(key);
        // Refused on scope, whatever the parameters: even a whitelisted address, or none.
        assert_eq!(c.err("private/withdraw", withdraw(WHITELISTED, 0.01)), 13021, "{}", key.0);
        assert_eq!(c.err("private/withdraw", json!({})), 13021, "{}", key.0);
        assert_eq!(c.err("private/get_withdrawals", json!({"currency": "BTC"})), 13021);
        let bal = c.call("private/get_account_summary", json!({"currency": "BTC"}));
        if let Some(r) = bal.get("result") {
            assert_eq!(r["balance"], json!(10.0), "no money moved");
        }
    }
    let mut anon = Client::connect(sim.handle.addr());
    assert_eq!(anon.err("private/withdraw", withdraw(WHITELISTED, 0.01)), 10000);
}

#[test]
fn withdraw_with_wallet_scope_debits_and_is_listed() {
    let sim = with_wallet_key();
    let mut c = Client::connect(sim.handle.addr());
    let a = c.auth(DEV_WALLET);
    assert!(a["scope"].as_str().unwrap().contains("wallet:read_write"));
    // Not in the address book: refused by the venue, nothing recorded.
    let r = c.call("private/withdraw", withdraw("stoic-nowhere", 0.01));
    assert_eq!(r["error"]["code"], 11030);
    assert!(r["error"]["message"].as_str().unwrap().contains("address_not_in_address_book"));
    // More than the account has.
    assert_eq!(c.err("private/withdraw", withdraw(WHITELISTED, 10.0)), 10009);
    // Bad parameters: enumerated -32602, never a crash.
    for bad in [
        json!({"currency": "BTC", "address": WHITELISTED}),
        json!({"currency": "DOGE", "address": WHITELISTED, "amount": 1}),
        json!({"currency": "BTC", "address": WHITELISTED, "amount": -1}),
        json!({"currency": "BTC", "address": WHITELISTED, "amount": "lots"}),
        json!({"currency": "BTC", "address": 7, "amount": 1}),
        json!({"currency": "BTC", "address": WHITELISTED, "amount": 1, "priority": "now"}),
    ] {
        assert_eq!(c.err("private/withdraw", bad.clone()), -32602, "{bad}");
    }
    let w = c.ok("private/withdraw", withdraw(WHITELISTED, 1.5));
    assert_eq!(w["state"], "unconfirmed");
    assert_eq!(w["address"], WHITELISTED);
    assert_eq!(w["amount"], json!(1.5));
    assert_eq!(w["fee"], json!(0.0001));
    let sum = c.ok("private/get_account_summary", json!({"currency": "BTC"}));
    assert!((sum["balance"].as_f64().unwrap() - (10.0 - 1.5 - 0.0001)).abs() < 1e-9);
    let list = c.ok("private/get_withdrawals", json!({"currency": "BTC"}));
    assert_eq!(list["count"], 1);
    assert_eq!(list["data"][0]["id"], w["id"]);
    assert_eq!(c.ok("private/get_withdrawals", json!({"currency": "ETH"}))["count"], 0);
    assert_eq!(c.err("private/get_withdrawals", json!({"currency": "BTC", "count": 0})), -32602);
    assert_eq!(c.err("private/get_withdrawals", json!({"currency": "BTC", "offset": -1})), -32602);
}

#[test]
fn address_book_entries_are_validated() {
    let mut v: Value = serde_json::from_str(simulator::accounts::BUILTIN).unwrap();
    v["accounts"][0]["address_book"] = json!({"XRP": ["a"]});
    assert!(AccountsFile::parse(&v.to_string()).is_err());
    v["accounts"][0]["address_book"] = json!({"BTC": [""]});
    assert!(AccountsFile::parse(&v.to_string()).is_err());
}
