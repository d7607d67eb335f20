//! A minimal HTTP/1.1 client over a loopback socket (one request per connection), for the
//! service's tests and its load bench: no client library needed.
#![allow(dead_code)] // each crate uses a different subset

use std::io::{Read, Write};
use std::net::TcpStream;

/// Sends one request with a JSON body (if any); the status and the body of the answer.
pub fn call(address: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    // a stuck service fails the test instead of hanging it
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, rest) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            unchunk(rest)
        } else {
            rest.to_owned()
        },
    )
}

/// The body of a chunked answer.
fn unchunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        text = &rest[size + 2..];
    }
    out
}

/// `clients` threads each sending `each` requests to `path` with `body`, all at once; every
/// request's latency (ms, sorted) and the statuses other than 200.
pub fn load(
    address: &str,
    path: &str,
    body: &str,
    clients: usize,
    each: usize,
) -> (Vec<f64>, Vec<u16>) {
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (address, path, body) = (address.to_owned(), path.to_owned(), body.to_owned());
            std::thread::spawn(move || {
                (0..each)
                    .map(|_| {
                        let started = std::time::Instant::now();
                        let (status, _) = call(&address, "POST", &path, Some(&body));
                        (started.elapsed().as_secs_f64() * 1e3, status)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<(f64, u16)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let mut latencies: Vec<f64> = answers.iter().map(|a| a.0).collect();
    latencies.sort_by(f64::total_cmp);
    let failed = answers.iter().map(|a| a.1).filter(|&s| s != 200).collect();
    (latencies, failed)
}

/// The `q`-quantile of sorted values (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
