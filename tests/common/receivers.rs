//! Real receivers on loopback for notification tests: an HTTP server that
//! keeps the bodies POSTed to it (answering 503 while "down"), and an SMTP
//! server that keeps the mails it is given.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// An HTTP receiver of webhook POSTs.
pub struct Webhook {
    pub port: u16,
    pub bodies: Arc<Mutex<Vec<String>>>,
    pub up: Arc<AtomicBool>,
    /// Requests refused while down.
    pub refused: Arc<Mutex<u32>>,
}

impl Webhook {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(vec![]));
        let up = Arc::new(AtomicBool::new(true));
        let refused = Arc::new(Mutex::new(0));
        let (b, u, r) = (bodies.clone(), up.clone(), refused.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (b, u, r) = (b.clone(), u.clone(), r.clone());
                std::thread::spawn(move || serve_http(conn, &b, &u, &r));
            }
        });
        Webhook { port, bodies, up, refused }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

fn serve_http(conn: TcpStream, bodies: &Mutex<Vec<String>>, up: &AtomicBool, refused: &Mutex<u32>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = if up.load(Ordering::SeqCst) {
            bodies.lock().unwrap().push(String::from_utf8_lossy(&body).to_string());
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        } else {
            *refused.lock().unwrap() += 1;
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
        };
        if conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// An SMTP server (no TLS offered) that keeps each message's data.
pub struct SmtpSink {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(vec![]));
        let m = mails.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let m = m.clone();
                std::thread::spawn(move || serve_smtp(conn, &m));
            }
        });
        SmtpSink { port, mails }
    }

    pub fn mails(&self) -> Vec<String> {
        self.mails.lock().unwrap().clone()
    }
}

fn serve_smtp(conn: TcpStream, mails: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    let mut say = |s: &str| conn.write_all(format!("{s}\r\n").as_bytes()).is_ok();
    if !say("220 sink.test ESMTP") {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        let ok = if cmd.starts_with("EHLO") {
            say("250-sink.test") && say("250 8BITMIME")
        } else if cmd.starts_with("HELO")
            || cmd.starts_with("MAIL")
            || cmd.starts_with("RCPT")
            || cmd.starts_with("RSET")
            || cmd.starts_with("NOOP")
        {
            say("250 OK")
        } else if cmd.starts_with("DATA") {
            if !say("354 go on") {
                return;
            }
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                data.push_str(&l);
            }
            mails.lock().unwrap().push(data);
            say("250 queued")
        } else if cmd.starts_with("QUIT") {
            let _ = say("221 bye");
            return;
        } else {
            say("502 not implemented")
        };
        if !ok {
            return;
        }
    }
}
