//! A minimal blocking HTTP/1.1 client for `stoic health` / `stoic status` and the tests:
//! plain `http://host:port/path` only (the status server is loopback-only and has no TLS),
//! one request per connection, every step bounded by a timeout and the response by size.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest response accepted (the status JSON with 200 positions and orders fits easily).
pub const RESPONSE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `http://host[:port][/path]`.
    #[error("bad URL {0:?}: expected http://HOST[:PORT][/PATH]")]
    BadUrl(String),
    /// Could not resolve or connect.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// host:port tried.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Connected, but sending or receiving failed or timed out.
    #[error("I/O error talking to {addr}: {source}")]
    Io {
        /// host:port.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The response was not valid HTTP or was too large.
    #[error("invalid HTTP response from {0}")]
    BadResponse(String),
}

/// A response: status code and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Splits `http://host:port/base` into (`host:port`, `/base` without trailing slash).
///
/// # Errors
/// [`ClientError::BadUrl`] for anything else (including `https://`).
pub fn split_url(url: &str) -> Result<(String, String), ClientError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| ClientError::BadUrl(url.to_owned()))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if hostport.is_empty() || hostport.contains(['@', ' ']) {
        return Err(ClientError::BadUrl(url.to_owned()));
    }
    let hostport = if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        hostport.to_owned()
    } else {
        format!("{hostport}:80")
    };
    Ok((hostport, path.trim_end_matches('/').to_owned()))
}

/// Sends one request to `base_url` + `path` and reads the whole response.
///
/// # Errors
/// See [`ClientError`].
pub fn request(
    method: &str,
    base_url: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, ClientError> {
    let (addr, base) = split_url(base_url)?;
    let deadline = Instant::now() + timeout;
    let io = |source| ClientError::Io { addr: addr.clone(), source };
    let sock = addr
        .to_socket_addrs()
        .map_err(|source| ClientError::Connect { addr: addr.clone(), source })?
        .next()
        .ok_or_else(|| ClientError::BadUrl(base_url.to_owned()))?;
    let mut s = TcpStream::connect_timeout(&sock, timeout)
        .map_err(|source| ClientError::Connect { addr: addr.clone(), source })?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut req = format!(
        "{method} {base}{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(io)?;
    s.write_all(body).map_err(io)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    // Bounded by RESPONSE_BYTES_MAX and the deadline; the server closes after one response.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "response timed out",
            )));
        }
        s.set_read_timeout(Some(left)).map_err(io)?;
        let n = s.read(&mut chunk).map_err(io)?;
        if n == 0 {
            break;
        }
        if buf.len() + n > RESPONSE_BYTES_MAX {
            return Err(ClientError::BadResponse(addr));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut hdrs = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut hdrs);
    let Ok(httparse::Status::Complete(head_len)) = resp.parse(&buf) else {
        return Err(ClientError::BadResponse(addr));
    };
    let status = resp.code.ok_or_else(|| ClientError::BadResponse(addr.clone()))?;
    Ok(HttpResponse { status, body: buf[head_len..].to_vec() })
}

/// `GET base_url + path`.
///
/// # Errors
/// See [`ClientError`].
pub fn get(base_url: &str, path: &str, timeout: Duration) -> Result<HttpResponse, ClientError> {
    request("GET", base_url, path, &[], &[], timeout)
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8787").unwrap(),
            ("127.0.0.1:8787".into(), String::new())
        );
        assert_eq!(split_url("http://localhost/x/").unwrap(), ("localhost:80".into(), "/x".into()));
        assert!(split_url("https://127.0.0.1:8787").is_err());
        assert!(split_url("http://").is_err());
    }
}
