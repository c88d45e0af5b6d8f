//! Durations written as `500ms`, `10s`, `5m`, `48h` or `365d` (a bare number
//! is seconds), in flags and configuration files of both binaries.

use std::time::Duration;

/// Parses a duration; the error says how to write one.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration: write for example 10s, 5m, 48h or 365d"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        u => return Err(format!("`{s}`: unknown unit `{u}`; use ms, s, m, h or d")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("`{s}`: a duration must be positive"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is too long"))
}

/// `serde(with = "jazari_wire::duration")` for configuration fields.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    parse(&s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_errors() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("48h"), Ok(Duration::from_secs(172800)));
        assert_eq!(parse("365d"), Ok(Duration::from_secs(365 * 86400)));
        assert_eq!(parse("3"), Ok(Duration::from_secs(3)));
        assert!(parse("0s").is_err());
        assert!(parse("-1s").is_err());
        assert!(parse("10x").unwrap_err().contains("unknown unit"));
        assert!(parse("1e400s").is_err());
    }
}
