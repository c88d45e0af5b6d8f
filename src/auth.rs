//! Tokens: `jzr_<id>_<secret>`. The store keeps the id and the SHA-256 of the
//! secret, never the secret. Lookups go by id; the hash comparison takes the
//! same time whatever matches.

use crate::store::{Store, StoreError, TokenRow};
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Reads everything.
    Admin,
    /// Reads what concerns one institute.
    Institute(String),
    /// Sends reports for one node, or for any node with `*`.
    Node(String),
}

impl Role {
    pub fn from_row(row: &TokenRow) -> Option<Role> {
        match row.role.as_str() {
            "admin" => Some(Role::Admin),
            "institute" => Some(Role::Institute(row.scope.clone())),
            "node" => Some(Role::Node(row.scope.clone())),
            _ => None,
        }
    }

    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Role::Admin => ("admin", ""),
            Role::Institute(i) => ("institute", i),
            Role::Node(n) => ("node", n),
        }
    }

    pub fn can_read(&self) -> bool {
        !matches!(self, Role::Node(_))
    }

    /// Whether a node token may send reports for `node`.
    pub fn may_report_for(&self, node: &str) -> bool {
        matches!(self, Role::Node(n) if n == "*" || n == node)
    }

    /// The institute this token is limited to, if any.
    pub fn institute(&self) -> Option<&str> {
        match self {
            Role::Institute(i) => Some(i),
            _ => None,
        }
    }
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// `n` random characters of A-Z, a-z, 0-9 from the kernel's generator.
pub fn random_chars(n: usize) -> String {
    use std::io::Read;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n * 2];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("read /dev/urandom");
    // Rejection sampling keeps the distribution uniform over the alphabet.
    let mut out = String::with_capacity(n);
    let mut i = 0;
    while out.len() < n {
        if i == bytes.len() {
            std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("read /dev/urandom");
            i = 0;
        }
        let b = bytes[i] as usize;
        i += 1;
        if b < 248 {
            out.push(ALPHABET[b % 62] as char);
        }
    }
    out
}

/// Creates a token; returns its id and the full secret to show once.
pub fn create(store: &dyn Store, role: &Role, now_ms: i64) -> Result<(String, String), StoreError> {
    let id = random_chars(8).to_ascii_lowercase();
    let secret = random_chars(40);
    let (r, scope) = role.parts();
    store.insert_token(&TokenRow {
        id: id.clone(),
        hash: hash(&secret),
        role: r.into(),
        scope: scope.into(),
        created_ms: now_ms,
        revoked_ms: None,
    })?;
    Ok((id.clone(), format!("jzr_{id}_{secret}")))
}

/// Why a token was refused. Callers answer all of these the same way.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    Unknown,
    Revoked,
}

/// Checks a presented token.
pub fn verify(store: &dyn Store, presented: &str) -> Result<Result<Role, Refused>, StoreError> {
    let Some(rest) = presented.strip_prefix("jzr_") else { return Ok(Err(Refused::Malformed)) };
    let Some((id, secret)) = rest.split_once('_') else { return Ok(Err(Refused::Malformed)) };
    let row = store.token(id)?;
    let computed = hash(secret);
    // Compare against a dummy when the id is unknown, so both paths do the same work.
    let stored = row.as_ref().map(|r| r.hash.clone()).unwrap_or_else(|| vec![0u8; computed.len()]);
    let equal = constant_time_eq(&computed, &stored);
    Ok(match row {
        Some(r) if equal && r.revoked_ms.is_none() => Role::from_row(&r).ok_or(Refused::Unknown),
        Some(r) if equal && r.revoked_ms.is_some() => Err(Refused::Revoked),
        _ => Err(Refused::Unknown),
    })
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_verify_revoke() {
        let dir = std::env::temp_dir().join(format!("jazari-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = crate::store::open(&dir.join("s.sqlite")).unwrap();
        let store = store.as_ref();
        let (id, secret) = create(store, &Role::Node("n1".into()), 1).unwrap();
        assert!(secret.starts_with(&format!("jzr_{id}_")));
        assert_eq!(verify(store, &secret).unwrap(), Ok(Role::Node("n1".into())));
        // One wrong character, a wrong id, a malformed token: all refused.
        let mut wrong = secret.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'a' { 'b' } else { 'a' });
        assert_eq!(verify(store, &wrong).unwrap(), Err(Refused::Unknown));
        assert_eq!(verify(store, "jzr_nope_xxxxxxxx").unwrap(), Err(Refused::Unknown));
        assert_eq!(verify(store, "Bearer").unwrap(), Err(Refused::Malformed));
        // The secret is not in the store.
        let raw = std::fs::read(dir.join("s.sqlite")).unwrap();
        let s = secret.split('_').nth(2).unwrap();
        assert!(!raw.windows(s.len()).any(|w| w == s.as_bytes()));
        assert!(store.revoke_token(&id, 2).unwrap());
        assert_eq!(verify(store, &secret).unwrap(), Err(Refused::Revoked));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn node_scope() {
        assert!(Role::Node("*".into()).may_report_for("x"));
        assert!(Role::Node("a".into()).may_report_for("a"));
        assert!(!Role::Node("a".into()).may_report_for("b"));
        assert!(!Role::Admin.may_report_for("a"));
        assert!(!Role::Node("a".into()).can_read());
    }
}
