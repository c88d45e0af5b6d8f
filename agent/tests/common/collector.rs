//! A stand-in collector for tests: a thread that accepts HTTP (or HTTPS with
//! rustls) connections one at a time, decodes each POST's zstd JSON array
//! and answers what the test's closure says.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub authorization: Option<String>,
    pub reports: Vec<Value>,
}

impl Request {
    pub fn seqs(&self) -> Vec<u64> {
        self.reports.iter().map(|r| r["seq"].as_u64().unwrap()).collect()
    }
}

/// An answer: status and body (and `Retry-After` seconds).
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<u64>,
}

impl Answer {
    pub fn ok() -> Self {
        Self { status: 200, body: r#"{"accepted": true}"#.into(), retry_after: None }
    }
    pub fn error(status: u16, message: &str) -> Self {
        Self { status, body: serde_json::json!({ "error": message }).to_string(), retry_after: None }
    }
    pub fn busy() -> Self {
        Self { status: 503, body: r#"{"error": "busy"}"#.into(), retry_after: Some(1) }
    }
}

type Answerer = Box<dyn FnMut(&Request) -> Answer + Send>;

#[derive(Default)]
struct Seen {
    /// Every request with the status it got.
    requests: Vec<(Request, u16)>,
    tls_failures: Vec<String>,
}

pub struct Collector {
    pub port: u16,
    seen: Arc<Mutex<Seen>>,
    answer: Arc<Mutex<Answerer>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// A plain HTTP stand-in.
    pub fn start(answer: impl FnMut(&Request) -> Answer + Send + 'static) -> Self {
        Self::start_with(None, answer)
    }

    /// An HTTPS stand-in with this server configuration.
    pub fn start_tls(tls: Arc<rustls::ServerConfig>, answer: impl FnMut(&Request) -> Answer + Send + 'static) -> Self {
        Self::start_with(Some(tls), answer)
    }

    fn start_with(
        tls: Option<Arc<rustls::ServerConfig>>,
        answer: impl FnMut(&Request) -> Answer + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let answer: Arc<Mutex<Answerer>> = Arc::new(Mutex::new(Box::new(answer)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, answer, stop) = (seen.clone(), answer.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((sock, _)) => serve(sock, tls.clone(), &seen, &answer),
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        Self { port, seen, answer, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn https_url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// Answers from now on.
    pub fn set_answer(&self, answer: impl FnMut(&Request) -> Answer + Send + 'static) {
        *self.answer.lock().unwrap() = Box::new(answer);
    }

    /// Every request so far with its status.
    pub fn requests(&self) -> Vec<(Request, u16)> {
        self.seen.lock().unwrap().requests.clone()
    }

    /// Sequence numbers of the reports accepted, in arrival order.
    pub fn accepted(&self) -> Vec<u64> {
        self.requests().iter().filter(|(_, s)| (200..300).contains(s)).flat_map(|(r, _)| r.seqs()).collect()
    }

    /// Why TLS handshakes failed, as the server saw it.
    pub fn tls_failures(&self) -> Vec<String> {
        self.seen.lock().unwrap().tls_failures.clone()
    }

    /// Waits until `done` holds for what was accepted, up to `timeout`.
    pub fn wait_accepted(&self, timeout: Duration, done: impl Fn(&[u64]) -> bool) -> Vec<u64> {
        let end = Instant::now() + timeout;
        loop {
            let got = self.accepted();
            if done(&got) || Instant::now() > end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(sock: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, seen: &Mutex<Seen>, answer: &Mutex<Answerer>) {
    sock.set_nonblocking(false).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    match tls {
        None => exchange(sock, seen, answer),
        Some(cfg) => {
            let mut conn = rustls::ServerConnection::new(cfg).unwrap();
            let mut sock = sock;
            while conn.is_handshaking() {
                if let Err(e) = conn.complete_io(&mut sock) {
                    seen.lock().unwrap().tls_failures.push(e.to_string());
                    return;
                }
            }
            exchange(rustls::StreamOwned::new(conn, sock), seen, answer);
        }
    }
}

/// Reads one request, answers it and closes.
fn exchange(mut stream: impl Read + Write, seen: &Mutex<Seen>, answer: &Mutex<Answerer>) {
    let Some(req) = read_request(&mut stream) else { return };
    let a = (answer.lock().unwrap())(&req);
    seen.lock().unwrap().requests.push((req, a.status));
    let retry = a.retry_after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{retry}Connection: close\r\n\r\n",
        a.status,
        a.body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(a.body.as_bytes()))
        .and_then(|_| stream.flush());
}

fn read_request(stream: &mut impl Read) -> Option<Request> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let (mut len, mut authorization) = (0usize, None);
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((&h, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().unwrap_or(0),
            "authorization" => authorization = Some(v.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    let json = zstd::decode_all(&body[..]).expect("a zstd body");
    let reports: Vec<Value> = serde_json::from_slice(&json).expect("a JSON array of reports");
    Some(Request { path, authorization, reports })
}
