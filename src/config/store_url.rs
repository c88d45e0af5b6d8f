//! A store given as a URL (`postgres://…`) rather than a SQLite path, and
//! how it is shown (never with its password).

/// Whether a store location names a PostgreSQL database.
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// The location with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    let url = match url.find("password=") {
        Some(i) => {
            let end = url[i..].find('&').map_or(url.len(), |e| i + e);
            format!("{}password=***{}", &url[..i], &url[end..])
        }
        None => url.to_string(),
    };
    let url = url.as_str();
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let Some(at) = rest.rfind('@') else { return url.to_string() };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://jazari:s3cret@db:5432/jazari"), "postgres://jazari:***@db:5432/jazari");
        assert_eq!(redact("postgres://jazari@db/jazari"), "postgres://jazari@db/jazari");
        assert_eq!(redact("postgresql://u:p:q@db/x"), "postgresql://u:***@db/x");
        assert_eq!(
            redact("postgres://db/x?password=p&sslmode=disable"),
            "postgres://db/x?password=***&sslmode=disable"
        );
        assert!(is_url("postgresql://db/x") && !is_url("/var/lib/jazari/store.sqlite"));
    }
}
