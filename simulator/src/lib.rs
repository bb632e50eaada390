//! A Deribit-protocol venue on loopback: the embedded default behind `stoic run`, and the
//! counterparty of every test, drill and chaos scenario.
#![forbid(unsafe_code)]
