//! The collector's accept loop: at most `server.max_connections` connections
//! at once (more wait in the kernel's queue), the TLS handshake and request
//! headers within `server.header_timeout` (an idle keep-alive connection is
//! closed after it too), HTTPS with an optional client certificate when
//! `[tls]` is set (certificates reloaded on SIGHUP), and the open-file limit
//! raised to what the connection cap needs.

use crate::config;
use anyhow::{Context, Result, bail};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The verified certificate a client presented (mutual TLS).
#[derive(Clone, Debug)]
pub struct ClientCert(Arc<CertificateDer<'static>>);

impl ClientCert {
    /// Whether the certificate names `node` as a DNS name (its subject alternative names).
    pub fn valid_for(&self, node: &str) -> bool {
        let Ok(name) = ServerName::try_from(node) else { return false };
        webpki::EndEntityCert::try_from(self.0.as_ref())
            .is_ok_and(|c| c.verify_is_valid_for_subject_name(&name).is_ok())
    }
}

/// The collector's TLS settings, reloadable.
pub struct TlsState {
    cfg: config::Tls,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsState {
    pub fn load(cfg: &config::Tls) -> Result<Self> {
        Ok(TlsState { current: RwLock::new(server_config(cfg)?), cfg: cfg.clone() })
    }

    /// Reads the certificate, key and client CA files again; on an error the old ones stay.
    pub fn reload(&self) -> Result<()> {
        let fresh = server_config(&self.cfg)?;
        *self.current.write().unwrap() = fresh;
        Ok(())
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.current.read().unwrap().clone()
    }
}

fn server_config(cfg: &config::Tls) -> Result<Arc<ServerConfig>> {
    crate::tls::install_provider();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert)
        .with_context(|| format!("tls.cert: cannot read {}", cfg.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("tls.cert: {} is not PEM certificates", cfg.cert.display()))?;
    if certs.is_empty() {
        bail!("tls.cert: {} holds no certificate", cfg.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key)
        .with_context(|| format!("tls.key: cannot read a PEM private key from {}", cfg.key.display()))?;
    let builder = ServerConfig::builder();
    let builder = match &cfg.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("tls.client_ca: cannot read {}", ca.display()))?
            {
                let c = c.with_context(|| format!("tls.client_ca: {} is not PEM certificates", ca.display()))?;
                roots
                    .add(c)
                    .with_context(|| format!("tls.client_ca: a certificate in {} is not a CA", ca.display()))?;
            }
            let v = WebPkiClientVerifier::builder(Arc::new(roots));
            let v = if cfg.require_client_cert { v } else { v.allow_unauthenticated() };
            builder.with_client_cert_verifier(v.build().context("tls.client_ca")?)
        }
    };
    let mut sc = builder.with_single_cert(certs, key).with_context(|| {
        format!("tls.cert and tls.key ({}) do not make a certificate and its key", cfg.key.display())
    })?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(sc))
}

/// Connection settings.
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Serves `router` on `listener` until `stop`, then lets open requests finish (up to 10 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<TlsState>>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    let mut full_logged = false;
    loop {
        if slots.available_permits() == 0 && !full_logged {
            tracing::warn!(
                max = limits.max_connections,
                "server.max_connections connections are open; new ones wait until one closes"
            );
            full_logged = true;
        }
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("never closed"),
            _ = &mut stop => break,
        };
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        if slots.available_permits() > limits.max_connections / 10 {
            full_logged = false;
        }
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let tls = tls.as_ref().map(|t| t.current());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_one(TokioIo::new(tcp), router, None, limits, watcher).await,
                Some(cfg) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let cert = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(|c| ClientCert(Arc::new(c.clone().into_owned())));
                            serve_one(TokioIo::new(stream), router, cert, limits, watcher).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake did not finish within server.header_timeout"),
                    }
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("requests still open after 10 s; stopping anyway"),
    }
    Ok(())
}

async fn serve_one<I>(
    io: TokioIo<I>,
    router: Router,
    cert: Option<ClientCert>,
    limits: Limits,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        if let Some(c) = &cert {
            req.extensions_mut().insert(c.clone());
        }
        router.clone().oneshot(req)
    });
    let mut h1 = hyper::server::conn::http1::Builder::new();
    h1.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let conn = h1.serve_connection(io, service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!("connection ended: {e}");
    }
}

/// Raises the soft open-file limit to what `max_connections` needs (the
/// store, logs and the scheduler's commands take some more), up to the hard
/// limit; says so when it cannot.
pub fn raise_open_files(max_connections: usize) {
    let want = max_connections as u64 + 256;
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    if lim.rlim_cur >= want {
        return;
    }
    let target = want.min(lim.rlim_max);
    let old = lim.rlim_cur;
    lim.rlim_cur = target;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
        tracing::info!(from = old, to = target, "raised the open-file limit for server.max_connections");
    }
    if target < want {
        tracing::warn!(
            hard = lim.rlim_max,
            needed = want,
            "the open-file limit is below what server.max_connections needs; lower it or raise the hard limit (LimitNOFILE=)"
        );
    }
}
