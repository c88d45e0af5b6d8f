//! Delivering notifications: the outbox (in the store, so it survives a
//! restart) is read once a second; each notification goes to its receiver
//! (a webhook by HTTP POST, an e-mail by SMTP with STARTTLS or TLS) and is
//! removed once delivered, or retried with backoff. A receiver that fails
//! never holds up ingest or the other receivers' next turn for long: each
//! attempt has a 10 s timeout.

use super::app::App;
use crate::config::Email;
use crate::store::OutboxItem;
use crate::time::now_ms;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;

/// Time one delivery may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers the outbox forever.
pub async fn sender(app: Arc<App>) {
    let http = match crate::tls::http_client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("notifications cannot be sent: {e}");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = now_ms();
        let due = match app.read(move |s| s.outbox_due(now, 32)).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("reading the notification queue failed: {}", e.message);
                continue;
            }
        };
        for item in due {
            let result = tokio::time::timeout(ATTEMPT_TIMEOUT, deliver(&app, &http, &item)).await;
            let result = result.unwrap_or_else(|_| Err(format!("no answer within {ATTEMPT_TIMEOUT:?}")));
            let next = match &result {
                Ok(()) => None,
                Err(_) => Some(now_ms() + backoff(item.attempts).as_millis() as i64),
            };
            {
                let mut s = app.alert_stats.lock().unwrap();
                match &result {
                    Ok(()) => s.sent += 1,
                    Err(_) => s.failed += 1,
                }
            }
            match &result {
                Ok(()) => tracing::debug!(receiver = item.receiver, "notification delivered"),
                Err(e) => tracing::warn!(
                    receiver = item.receiver,
                    attempt = item.attempts + 1,
                    retry_in_s = backoff(item.attempts).as_secs(),
                    "notification not delivered: {e}"
                ),
            }
            let error = result.err();
            if let Err(e) = app.outbox_update(item.id, next, error).await {
                tracing::warn!("updating the notification queue failed: {}", e.message);
            }
        }
    }
}

/// One attempt at one notification.
async fn deliver(app: &App, http: &reqwest::Client, item: &OutboxItem) -> Result<(), String> {
    let (kind, index) = item.receiver.split_once('/').ok_or("bad receiver key")?;
    let index: usize = index.parse().map_err(|_| "bad receiver key")?;
    match kind {
        "webhook" => {
            let w = app.cfg.alerts.webhook.get(index).ok_or("the webhook is no longer configured")?;
            let resp = http
                .post(&w.url)
                .header("Content-Type", "application/json")
                .body(item.body.clone())
                .send()
                .await
                .map_err(|e| format!("POST {}: {e}", w.url))?;
            if resp.status().is_success() { Ok(()) } else { Err(format!("POST {} answered {}", w.url, resp.status())) }
        }
        "email" => {
            let e = app.cfg.alerts.email.get(index).ok_or("the e-mail receiver is no longer configured")?;
            let mail: serde_json::Value = serde_json::from_str(&item.body).map_err(|e| e.to_string())?;
            send_mail(e, mail["subject"].as_str().unwrap_or("jazari"), mail["text"].as_str().unwrap_or("")).await
        }
        _ => Err(format!("unknown receiver kind `{kind}`")),
    }
}

async fn send_mail(e: &Email, subject: &str, text: &str) -> Result<(), String> {
    let from: Mailbox = e.from.parse().map_err(|x| format!("from `{}`: {x}", e.from))?;
    let mut msg = Message::builder().from(from).subject(subject);
    for to in &e.to {
        msg = msg.to(to.parse().map_err(|x| format!("to `{to}`: {x}"))?);
    }
    let msg = msg.body(text.to_string()).map_err(|x| x.to_string())?;
    let (tls_from_start, rest) = match (e.smtp.strip_prefix("smtps://"), e.smtp.strip_prefix("smtp://")) {
        (Some(r), _) => (true, r),
        (None, Some(r)) => (false, r),
        _ => return Err(format!("smtp = `{}`", e.smtp)),
    };
    let (host, port) = match rest.trim_end_matches('/').rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse::<u16>().map_err(|_| format!("port in `{}`", e.smtp))?),
        None => (rest.trim_end_matches('/').to_string(), if tls_from_start { 465 } else { 587 }),
    };
    crate::tls::install_provider();
    let params = TlsParameters::new(host.clone()).map_err(|x| x.to_string())?;
    let tls = match (tls_from_start, e.starttls) {
        (true, _) => Tls::Wrapper(params),
        (false, true) => Tls::Required(params),
        (false, false) => Tls::Opportunistic(params),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .timeout(Some(ATTEMPT_TIMEOUT));
    if let (Some(user), Some(file)) = (&e.user, &e.password_file) {
        let password = jazari_wire::token::read(file).map_err(|x| x.to_string())?;
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    builder.build().send(msg).await.map(drop).map_err(|x| format!("SMTP {}: {x}", e.smtp))
}

/// Backoff before the `attempt`-th retry of a notification: 5 s doubling, at most 10 minutes.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(5u64.saturating_mul(1 << attempt.min(7))).min(Duration::from_secs(600))
}
