//! One line per error, for both binaries: the message and each cause once.

/// `e` and its causes joined with ": ", skipping a cause whose text the line
/// already holds (many errors repeat their source in their own message).
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot read /etc/x.toml: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let e = Outer {
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)"),
        };
        assert_eq!(super::one_line(&e), "cannot read /etc/x.toml: No such file or directory (os error 2)");
    }
}
