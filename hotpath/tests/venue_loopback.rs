//! Loopback WebSocket test of the client's session handling.
//!
//! The server thread here is a TEST DOUBLE FOR THE TRANSPORT ONLY: a few lines of
//! tungstenite that answer auth/heartbeat/subscribe with the recorded sample replies and
//! push sample notifications. It is not the simulator and checks nothing about trading;
//! it exists so the client's auth, heartbeat `test_request` handling, subscribe and
//! request/response correlation run over a real socket.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use hotpath::clock::SystemClock;
use hotpath::feed::L2Book;
use hotpath::venue::auth::{AuthGrant, Credentials, Secret};
use hotpath::venue::conn::{ConnConfig, ConnError, Connection, Incoming};
use hotpath::venue::messages::NotificationData;
use hotpath::venue::{Message, VenueErrorCode};
use serde_json::{json, Value};
use tungstenite::Message as Ws;

const SECRET: &str = "loopback-secret";

fn sample(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/venue_samples")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn reply(name: &str, id: &Value) -> String {
    let mut v = sample(name);
    v["id"] = id.clone();
    v.to_string()
}

/// Runs the double; reports each request's method (and auth verdict) on `seen`.
fn serve(listener: &TcpListener, seen: &mpsc::Sender<String>) {
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut ws = tungstenite::accept(stream).unwrap();
    loop {
        let Ok(msg) = ws.read() else { return };
        let Ws::Text(t) = msg else { continue };
        let req: Value = serde_json::from_str(t.as_str()).unwrap();
        let id = req["id"].clone();
        let method = req["method"].as_str().unwrap_or("").to_owned();
        let out: Vec<String> = match method.as_str() {
            "public/auth" => {
                let p = &req["params"];
                let signed = format!(
                    "{}\n{}\n{}",
                    p["timestamp"],
                    p["nonce"].as_str().unwrap(),
                    p["data"].as_str().unwrap()
                );
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                mac.update(signed.as_bytes());
                let ok =
                    hex::encode(mac.finalize().into_bytes()) == p["signature"].as_str().unwrap();
                let _ = seen.send(format!("public/auth ok={ok}"));
                if ok {
                    vec![reply("auth_response.json", &id)]
                } else {
                    vec![reply("error_13009_unauthorized.json", &id)]
                }
            }
            "public/set_heartbeat" => {
                let _ = seen.send(method.clone());
                vec![
                    reply("set_heartbeat_response.json", &id),
                    sample("heartbeat_heartbeat.json").to_string(),
                    sample("heartbeat_test_request.json").to_string(),
                ]
            }
            "private/subscribe" | "public/subscribe" => {
                let _ = seen.send(method.clone());
                let channels = req["params"]["channels"].clone();
                let r = json!({"jsonrpc":"2.0","id":id,"result":channels,"usIn":1,"usOut":2,"usDiff":1,"testnet":false});
                vec![
                    r.to_string(),
                    sample("book_option_snapshot.json").to_string(),
                    sample("book_option_change.json").to_string(),
                    sample("book_option_change_gap.json").to_string(),
                ]
            }
            "private/get_positions" => {
                let _ = seen.send(method.clone());
                vec![reply("error_10028_too_many_requests.json", &id)]
            }
            _ => {
                let _ = seen.send(method.clone());
                vec![reply(
                    match method.as_str() {
                        "public/test" => "public_test_response.json",
                        "private/enable_cancel_on_disconnect" => {
                            "enable_cancel_on_disconnect_response.json"
                        }
                        _ => "error_invalid_params.json",
                    },
                    &id,
                )]
            }
        };
        for o in out {
            if ws.send(Ws::text(o)).is_err() {
                return;
            }
        }
    }
}

fn start() -> (String, mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws/api/v2", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || serve(&listener, &tx));
    (url, rx, h)
}

fn creds(secret: &str) -> Credentials {
    Credentials { client_id: "loopback".into(), client_secret: Secret::new(secret.into()) }
}

#[test]
fn auth_heartbeat_subscribe_and_breaker() {
    let (url, seen, server) = start();
    let mut conn = Connection::connect(&ConnConfig::new(&url), Arc::new(SystemClock)).unwrap();
    let t = Duration::from_secs(5);
    // The raw tap (what `stoic record` writes) sees every inbound frame, in order.
    let tapped = Arc::new(std::sync::Mutex::new(Vec::<(String, u128)>::new()));
    let sink = Arc::clone(&tapped);
    conn.set_raw_tap(Some(Box::new(move |f: &str, ns: u128| {
        sink.lock().unwrap().push((f.to_owned(), ns));
    })));

    conn.authenticate(&creds(SECRET), AuthGrant::ClientSignature, None, t).unwrap();
    assert_eq!(seen.recv_timeout(t).unwrap(), "public/auth ok=true");
    let token = conn.token().expect("token stored");
    assert!(token.has_scope("trade:read_write"), "granted scope parsed from the reply");
    assert!(!format!("{conn:?}").contains(token.access_token.expose()));

    // set_heartbeat: the double then pushes heartbeat + test_request; the client must
    // answer the latter with public/test on its own.
    conn.set_heartbeat(10, t).unwrap();
    assert_eq!(seen.recv_timeout(t).unwrap(), "public/set_heartbeat");
    let deadline = Instant::now() + t;
    while conn.stats().test_requests_answered == 0 && Instant::now() < deadline {
        conn.poll(Duration::from_millis(100), &mut |_| {}).unwrap();
    }
    assert_eq!(conn.stats().test_requests_answered, 1);
    assert_eq!(conn.stats().heartbeats, 1);
    assert_eq!(seen.recv_timeout(t).unwrap(), "public/test");

    // The public connection API cannot send orders: only dispatch's client can.
    for m in ["private/buy", "private/sell", "private/edit", "private/cancel", "private/cancel_all"]
    {
        assert!(
            matches!(conn.send_request(m, |_| {}), Err(ConnError::TradingMethodRefused)),
            "{m}"
        );
    }

    conn.enable_cancel_on_disconnect(t).unwrap();
    // public/test's reply may arrive first; drain the double's log up to COD.
    let mut log = Vec::new();
    while let Ok(m) = seen.recv_timeout(t) {
        log.push(m.clone());
        if m == "private/enable_cancel_on_disconnect" {
            break;
        }
    }
    assert!(log.contains(&"private/enable_cancel_on_disconnect".to_owned()), "{log:?}");

    // Subscribe; book notifications arrive behind the reply and feed the L2 book.
    let book = std::cell::RefCell::new(L2Book::new("BTC-25JUL25-110000-C", 64));
    let on_msg = |inc: Incoming<'_>| {
        if let Message::Notification(n) = inc.msg {
            if let NotificationData::Book(u) = &n.data {
                let _ = book.borrow_mut().apply(u);
            }
        }
    };
    let mut on_msg = on_msg;
    let confirmed = conn.subscribe(&["book.BTC-25JUL25-110000-C.100ms"], t, &mut on_msg).unwrap();
    assert_eq!(confirmed, 1);
    let deadline = Instant::now() + t;
    while book.borrow().gaps_total() == 0 && Instant::now() < deadline {
        conn.poll(Duration::from_millis(100), &mut on_msg).unwrap();
    }
    let book = book.borrow();
    assert_eq!(book.gaps_total(), 1, "the gap sample is detected");
    assert!(book.is_gapped() && book.resubscribe_needed());
    assert_eq!(book.last_change_id(), Some(69_871_234_509));

    // A 10028 reply trips the breaker; the next request is held back client-side.
    let r = conn.call("private/get_positions", |_| {}, t, |_| Ok(()), &mut |_| {});
    assert!(matches!(r, Err(ConnError::Venue(VenueErrorCode::TooManyRequests))), "{r:?}");
    assert!(!conn.breaker().allows_requests(SystemClock.now_ms_for_test()));
    assert!(matches!(conn.send_request("public/test", |_| {}), Err(ConnError::BreakerOpen)));
    assert_eq!(conn.in_flight(), 0, "every reply was correlated");
    let tapped = tapped.lock().unwrap();
    assert_eq!(tapped.len() as u64, conn.stats().frames_in);
    assert!(tapped[0].0.contains("access_token"), "first frame is the auth reply");
    assert!(tapped.iter().all(|(_, ns)| *ns > 1_600_000_000_000_000_000), "wall-clock ns stamps");
    drop(tapped);

    conn.close();
    drop(conn);
    server.join().unwrap();
}

#[test]
fn wrong_secret_is_a_venue_auth_error() {
    let (url, seen, server) = start();
    let mut conn = Connection::connect(&ConnConfig::new(&url), Arc::new(SystemClock)).unwrap();
    let r = conn.authenticate(
        &creds("wrong"),
        AuthGrant::ClientSignature,
        None,
        Duration::from_secs(5),
    );
    assert!(matches!(r, Err(ConnError::Venue(VenueErrorCode::Unauthorized))), "{r:?}");
    assert_eq!(seen.recv_timeout(Duration::from_secs(5)).unwrap(), "public/auth ok=false");
    assert!(conn.token().is_none());
    conn.close();
    drop(conn);
    server.join().unwrap();
}

#[test]
fn connect_refused_is_an_error_not_a_hang() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let mut cfg = ConnConfig::new(&format!("ws://{addr}/"));
    cfg.connect_timeout = Duration::from_secs(2);
    assert!(Connection::connect(&cfg, Arc::new(SystemClock)).is_err());
}

#[test]
fn reconnect_uses_the_backoff_policy() {
    use hotpath::venue::backoff::{Backoff, JitterRng};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l); // nothing listens: every attempt is refused
    let mut cfg = ConnConfig::new(&format!("ws://{addr}/"));
    cfg.connect_timeout = Duration::from_secs(1);
    let clock: Arc<dyn hotpath::clock::Clock> = Arc::new(SystemClock);
    let mut backoff = Backoff::new();
    let mut rng = JitterRng::new(42);
    let mut slept = Vec::new();
    let r = Connection::connect_with_backoff(&cfg, &clock, &mut backoff, &mut rng, 5, &mut |d| {
        slept.push(d);
    });
    assert!(r.is_err());
    assert_eq!(slept.len(), 4, "a wait between attempts, none before the first");
    let ceilings = [250u64, 500, 1000, 2000];
    for (d, c) in slept.iter().zip(ceilings) {
        assert!(d.as_millis() as u64 <= c, "{d:?} > {c} ms");
    }
    assert_eq!(backoff.attempt(), 4);
    let bad = Connection::connect_with_backoff(
        &ConnConfig::new("http://x"),
        &clock,
        &mut backoff,
        &mut rng,
        5,
        &mut |_| panic!("no wait for a bad URL"),
    );
    assert!(matches!(bad, Err(ConnError::BadUrl)));
}

trait NowForTest {
    fn now_ms_for_test(&self) -> i64;
}

impl NowForTest for SystemClock {
    fn now_ms_for_test(&self) -> i64 {
        use hotpath::clock::Clock;
        self.now_ms()
    }
}

/// A server that accepts, then sends a venue `heartbeat` notification every `every`
/// (never, with `None`) for `life`, reading nothing: a half-open session when silent.
fn beating(every: Option<Duration>, life: Duration) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws/api/v2", listener.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        let end = Instant::now() + life;
        while Instant::now() < end {
            std::thread::sleep(every.unwrap_or(Duration::from_millis(50)));
            if every.is_some() {
                let beat = json!({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "heartbeat"}});
                if ws.send(Ws::Text(beat.to_string().into())).is_err() {
                    return;
                }
            }
        }
    });
    (url, h)
}

/// Heartbeat loss (issue 8, gap detection): a session on which nothing arrives for longer
/// than its limit is declared dead (`HeartbeatLost`, closed), so its owner reconnects and
/// reconciles instead of waiting on a half-open socket; one that keeps beating is not.
#[test]
fn a_silent_session_is_declared_dead_and_a_beating_one_is_not() {
    let limit = Duration::from_millis(300);
    let (url, server) = beating(Some(Duration::from_millis(60)), Duration::from_millis(1_500));
    let mut conn = Connection::connect(&ConnConfig::new(&url), Arc::new(SystemClock)).unwrap();
    conn.expect_frames_within(limit);
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        conn.poll(Duration::from_millis(50), &mut |_| {}).expect("a beating session stays up");
    }
    assert!(conn.stats().heartbeats > 0);
    conn.close();
    server.join().unwrap();

    let (url, server) = beating(None, Duration::from_secs(3));
    let mut conn = Connection::connect(&ConnConfig::new(&url), Arc::new(SystemClock)).unwrap();
    conn.expect_frames_within(limit);
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = loop {
        match conn.poll(Duration::from_millis(50), &mut |_| {}) {
            Ok(_) => assert!(Instant::now() < deadline, "silence never noticed"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, ConnError::HeartbeatLost { silent_ms } if silent_ms >= 300), "{err:?}");
    assert!(conn.is_closed());
    assert_eq!(conn.stats().heartbeat_losses, 1);
    assert!(matches!(conn.poll(Duration::from_millis(1), &mut |_| {}), Err(ConnError::Closed)));
    drop(conn);
    server.join().unwrap();
}
