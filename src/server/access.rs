//! Who may do what: bearer tokens (verified against the store, trusted for
//! under a second so a revocation takes effect at once), client
//! certificates standing for node tokens, which node names may report, the
//! institute a read is limited to; refused reports counted.

use super::app::App;
use super::error::ApiError;
use super::listen::ClientCert;
use super::refusals::Refusal;
use crate::accounting;
use crate::auth::{self, Role};
use axum::http::{HeaderMap, StatusCode, header};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a verified token is trusted before the store is asked again: a
/// revocation (`jazari token revoke`, another process) takes effect within it.
const TOKEN_CACHE: Duration = Duration::from_millis(500);

/// Verified tokens kept at most (then the cache starts again).
const TOKEN_CACHE_MAX: usize = 10_000;

impl App {
    /// Counts a refused report and logs it (rate-limited, with how many since the last line).
    pub fn refused(&self, reason: Refusal, node: Option<&str>, message: &str) {
        // The label: a node the collector knows, else `unknown` (names sent by
        // whoever is refused must not grow the metrics).
        let known = node.filter(|n| self.live.read().unwrap().nodes.contains_key(*n));
        self.refusals.lock().unwrap().note(reason, known, node, message);
    }

    /// Checks the bearer token.
    pub async fn authenticate(self: &Arc<Self>, headers: &HeaderMap) -> Result<Role, ApiError> {
        let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid token");
        let presented = bearer(headers).ok_or_else(unauthorized)?.to_string();
        let id = presented.get(..12).unwrap_or(&presented).to_string();
        {
            let cache = self.tokens.lock().unwrap();
            if let Some((at, role, secret)) = cache.get(&id)
                && at.elapsed() < TOKEN_CACHE
                && auth::constant_time_eq(secret.as_bytes(), presented.as_bytes())
            {
                return role.clone().ok_or_else(unauthorized);
            }
        }
        let p = presented.clone();
        let verdict = self.read(move |s| auth::verify(s, &p)).await?;
        let role = verdict.ok();
        let mut cache = self.tokens.lock().unwrap();
        if cache.len() >= TOKEN_CACHE_MAX {
            cache.clear();
        }
        cache.insert(id, (Instant::now(), role.clone(), presented));
        role.ok_or_else(unauthorized)
    }

    /// For sending reports: the bearer token, or without one a client
    /// certificate (mutual TLS with `tls.node_names`), which stands for a
    /// node token whose node names are checked per report by [`App::may_report`].
    pub async fn authenticate_node(
        self: &Arc<Self>,
        headers: &HeaderMap,
        cert: Option<&ClientCert>,
    ) -> Result<Role, ApiError> {
        let by_cert = self.cfg.tls.as_ref().is_some_and(|t| !t.node_names.is_empty());
        match (bearer(headers), cert) {
            (None, Some(_)) if by_cert => Ok(Role::Node("*".into())),
            _ => self.authenticate(headers).await,
        }
    }

    /// A token that may read (admin or institute).
    pub async fn reader(self: &Arc<Self>, headers: &HeaderMap) -> Result<Role, ApiError> {
        let role = self.authenticate(headers).await?;
        if !role.can_read() {
            return Err(ApiError::forbidden("a node token cannot read; use an admin or institute token"));
        }
        Ok(role)
    }

    /// Whether `role` (or, without a token, the client certificate) may send a report for `node`.
    pub fn may_report(&self, role: &Role, cert: Option<&ClientCert>, node: &str) -> Result<(), ApiError> {
        match role {
            Role::Node(n) if n == node => {}
            Role::Node(n) if n == "*" => {
                if let Some(c) = cert.filter(|_| self.cfg.tls.is_some()) {
                    let tls = self.cfg.tls.as_ref().expect("checked");
                    if !tls.node_may_use_cert(node) || !c.valid_for(node) {
                        return Err(ApiError::forbidden(format!(
                            "the client certificate does not name node `{node}` (as a DNS name), or tls.node_names \
                             does not allow it"
                        )));
                    }
                } else if !self.cfg.nodes.allows(node) {
                    return Err(ApiError::forbidden(format!(
                        "node name `{node}` does not match nodes.names ({})",
                        self.cfg.nodes.names.join(", ")
                    )));
                }
            }
            Role::Node(n) => {
                return Err(ApiError::forbidden(format!(
                    "this token may send reports for node `{n}` only, not `{node}`"
                )));
            }
            _ => return Err(ApiError::forbidden("only node tokens send reports")),
        }
        let live = self.live.read().unwrap();
        let max = self.cfg.nodes.max_nodes;
        if !live.nodes.contains_key(node) && live.nodes.len() >= max {
            return Err(ApiError::forbidden(format!(
                "the collector already knows nodes.max_nodes ({max}) nodes; a new node `{node}` is refused \
                 (raise the limit, or remove nodes that are gone)"
            )));
        }
        Ok(())
    }

    /// The institute a read is limited to: an institute token's own (asking for
    /// another is refused), else the one asked for, which must exist. Only an
    /// admin is told which institutes there are.
    pub fn scoped_institute(&self, role: &Role, asked: Option<&str>) -> Result<Option<String>, ApiError> {
        let institute = match (role.institute(), asked) {
            (Some(mine), Some(asked)) if mine != asked => {
                return Err(ApiError::forbidden("an institute token reads its own institute only"));
            }
            (Some(mine), _) => Some(mine.to_string()),
            (None, asked) => asked.map(str::to_string),
        };
        if let Some(i) = &institute
            && self.cfg.institute(i).is_none()
            && i != accounting::UNASSIGNED
        {
            let known = match role {
                Role::Admin => format!("; known institutes: {}", self.cfg.institute_ids()),
                _ => String::new(),
            };
            return Err(ApiError::not_found(format!("no institute `{i}`{known}")));
        }
        Ok(institute)
    }
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}
