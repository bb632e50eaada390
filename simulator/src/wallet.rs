//! Wallet methods: `private/withdraw` (needs `wallet:read_write`) and
//! `private/get_withdrawals` (needs `wallet:read`). The scope check itself is rpc.rs's (13021
//! `forbidden` before any parameter is looked at, as for every private method); this module
//! is what a key that *has* the scope meets.
//!
//! A withdrawal is real but bounded: the address must be in the account's address book (the
//! venue's withdrawal whitelist; `address_book` in `config/sim_accounts.json`), the amount
//! plus the fee must fit in `available_withdrawal_funds` as `get_account_summary` reports it,
//! and the account's balance is debited. The withdrawal then stays `unconfirmed`: there is no
//! chain behind the simulator. At most [`WITHDRAWALS_PER_ACCOUNT_MAX`] are kept per account; a
//! further one is refused (11030) rather than dropping history the balance depends on.

use serde_json::{json, Value};

use crate::engine::Engine;
use crate::instruments::Currency;
use crate::rpc::RpcError;
use crate::util::round_to;

/// Fee per withdrawal, in coin (the `withdrawal_fee` `public/get_currencies` reports).
pub const WITHDRAWAL_FEE: f64 = 0.0001;
/// Withdrawals kept (and allowed) per account.
pub const WITHDRAWALS_PER_ACCOUNT_MAX: usize = 64;
/// Longest address accepted (longer is -32602).
pub const ADDRESS_BYTES_MAX: usize = 128;
/// Addresses per currency in an address book.
pub const ADDRESSES_PER_CURRENCY_MAX: usize = 16;
/// Most withdrawals one `get_withdrawals` returns.
const COUNT_MAX: i64 = 1000;

/// Deribit's withdrawal priorities.
pub const PRIORITIES: [&str; 7] =
    ["insane", "extreme_high", "very_high", "high", "mid", "low", "very_low"];

/// One recorded withdrawal.
#[derive(Debug, Clone, PartialEq)]
pub struct Withdrawal {
    /// Venue id (per simulator, from 1).
    pub id: u64,
    /// Currency.
    pub currency: Currency,
    /// Destination (from the address book).
    pub address: String,
    /// Amount sent, coin.
    pub amount: f64,
    /// Fee charged on top, coin.
    pub fee: f64,
    /// Priority as requested (`high` when absent).
    pub priority: &'static str,
    /// Creation time, venue ms.
    pub created_ms: i64,
}

impl Withdrawal {
    /// Wire form (Deribit's withdrawal object).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "currency": self.currency.code(), "address": self.address,
            "amount": round_to(self.amount, 8), "fee": round_to(self.fee, 8),
            "priority": self.priority, "state": "unconfirmed", "transaction_id": null,
            "created_timestamp": self.created_ms, "updated_timestamp": self.created_ms,
            "confirmed_timestamp": null,
        })
    }
}

/// An account's wallet: its address book and the withdrawals made.
#[derive(Debug, Clone, Default)]
pub struct Wallet {
    /// Whitelisted (currency, address) pairs.
    pub address_book: Vec<(Currency, String)>,
    /// Withdrawals, oldest first.
    pub withdrawals: Vec<Withdrawal>,
}

/// `private/withdraw` parameters, parsed by rpc.rs.
#[derive(Debug, Clone)]
pub struct WithdrawRequest {
    /// Currency.
    pub currency: Currency,
    /// Destination address.
    pub address: String,
    /// Amount, coin.
    pub amount: f64,
    /// Priority (one of [`PRIORITIES`]).
    pub priority: &'static str,
}

impl WithdrawRequest {
    /// Validates raw parameters; every refusal is a -32602 naming the parameter.
    ///
    /// # Errors
    /// Unknown currency, empty/over-long address, non-positive or non-finite amount, unknown
    /// priority.
    pub fn parse(
        currency: &str,
        address: String,
        amount: f64,
        priority: Option<&str>,
    ) -> Result<Self, RpcError> {
        let currency = Currency::parse(currency)
            .ok_or_else(|| RpcError::invalid_param("currency", "wrong format"))?;
        if address.is_empty() || address.len() > ADDRESS_BYTES_MAX {
            return Err(RpcError::invalid_param("address", "wrong format"));
        }
        if !(amount.is_finite() && amount > 0.0) {
            return Err(RpcError::invalid_param("amount", "must be positive"));
        }
        let priority = match priority {
            None => "high",
            Some(p) => PRIORITIES
                .iter()
                .copied()
                .find(|q| *q == p)
                .ok_or_else(|| RpcError::invalid_param("priority", "wrong format"))?,
        };
        Ok(Self { currency, address, amount, priority })
    }
}

/// Performs a withdrawal for account `acct` (scope already checked).
///
/// # Errors
/// 11030 `other_reject address_not_in_address_book` / `withdrawal_limit`; 10009
/// `not_enough_funds` when amount + fee exceeds the available withdrawal funds.
pub fn withdraw(
    e: &mut Engine,
    acct: usize,
    req: WithdrawRequest,
    now: i64,
) -> Result<Value, RpcError> {
    let whitelisted = e.accounts[acct]
        .wallet
        .address_book
        .iter()
        .any(|(c, a)| *c == req.currency && *a == req.address);
    if !whitelisted {
        return Err(RpcError::new(11030, "other_reject address_not_in_address_book"));
    }
    if e.accounts[acct].wallet.withdrawals.len() >= WITHDRAWALS_PER_ACCOUNT_MAX {
        return Err(RpcError::new(11030, "other_reject withdrawal_limit"));
    }
    // Exactly what get_account_summary reports as withdrawable, so the two never disagree.
    let available = e.account_summary_json(acct, req.currency, false, now)
        ["available_withdrawal_funds"]
        .as_f64()
        .unwrap_or(0.0);
    if req.amount + WITHDRAWAL_FEE > available {
        return Err(RpcError::new(10009, "not_enough_funds"));
    }
    e.next_withdrawal_id += 1;
    let w = Withdrawal {
        id: e.next_withdrawal_id,
        currency: req.currency,
        address: req.address,
        amount: req.amount,
        fee: WITHDRAWAL_FEE,
        priority: req.priority,
        created_ms: now,
    };
    let a = &mut e.accounts[acct];
    a.balance[crate::engine::ccy_idx(req.currency)] -= req.amount + WITHDRAWAL_FEE;
    a.wallet.withdrawals.push(w.clone());
    e.dirty_accounts.insert(acct);
    Ok(w.to_json())
}

/// `private/get_withdrawals`: newest first, `offset` then `count` of them, with the total.
///
/// # Errors
/// -32602 for an unknown currency or a count/offset out of range.
pub fn get_withdrawals(
    e: &Engine,
    acct: usize,
    currency: &str,
    count: Option<i64>,
    offset: Option<i64>,
) -> Result<Value, RpcError> {
    let c = Currency::parse(currency)
        .ok_or_else(|| RpcError::invalid_param("currency", "wrong format"))?;
    let count = count.unwrap_or(10);
    if !(1..=COUNT_MAX).contains(&count) {
        return Err(RpcError::invalid_param("count", "must be 1..=1000"));
    }
    let offset = offset.unwrap_or(0);
    let (Ok(count), Ok(offset)) = (usize::try_from(count), usize::try_from(offset)) else {
        return Err(RpcError::invalid_param("offset", "must not be negative"));
    };
    let mine: Vec<&Withdrawal> =
        e.accounts[acct].wallet.withdrawals.iter().rev().filter(|w| w.currency == c).collect();
    let data: Vec<Value> = mine.iter().skip(offset).take(count).map(|w| w.to_json()).collect();
    Ok(json!({"count": mine.len(), "data": data}))
}

/// Builds a wallet from the configured address book (validated by `AccountsFile`).
pub fn wallet_from_spec(book: &std::collections::BTreeMap<String, Vec<String>>) -> Wallet {
    let address_book = book
        .iter()
        .filter_map(|(c, addrs)| Currency::parse(c).map(|c| (c, addrs)))
        .flat_map(|(c, addrs)| addrs.iter().map(move |a| (c, a.clone())))
        .collect();
    Wallet { address_book, withdrawals: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_withdraw_params_are_enumerated_invalid_params() {
        let bad = |c: &str, a: &str, x: f64, p: Option<&str>| {
            WithdrawRequest::parse(c, a.to_string(), x, p).map(|_| ()).unwrap_err()
        };
        assert_eq!(bad("XRP", "a", 1.0, None).code, -32602);
        assert_eq!(bad("BTC", "", 1.0, None).code, -32602);
        assert_eq!(bad("BTC", &"x".repeat(ADDRESS_BYTES_MAX + 1), 1.0, None).code, -32602);
        assert_eq!(bad("BTC", "a", 0.0, None).code, -32602);
        assert_eq!(bad("BTC", "a", -1.0, None).code, -32602);
        assert_eq!(bad("BTC", "a", f64::NAN, None).code, -32602);
        assert_eq!(bad("BTC", "a", 1.0, Some("urgent")).code, -32602);
        let ok = WithdrawRequest::parse("btc", "a".into(), 0.5, None).unwrap();
        assert_eq!((ok.currency, ok.priority), (Currency::Btc, "high"));
    }
}
