//! Client commands that read from the collector: `quota`, `report`.

pub mod quota;

/// 1234567.8 → "1,234,568".
pub fn thousands(v: f64) -> String {
    let neg = v < 0.0;
    let n = v.abs().round() as u64;
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if neg { format!("-{out}") } else { out }
}

/// GPU-hours for a table: one decimal under 10, else whole with separators.
pub fn hours(v: f64) -> String {
    if v.abs() < 10.0 { format!("{v:.1}") } else { thousands(v) }
}

/// Shortens `s` to `w` characters, ending with '…' when cut.
pub fn fit(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands() {
        assert_eq!(super::thousands(0.0), "0");
        assert_eq!(super::thousands(999.6), "1,000");
        assert_eq!(super::thousands(1234567.0), "1,234,567");
        assert_eq!(super::thousands(-4321.0), "-4,321");
        assert_eq!(super::fit("abcdef", 4), "abc…");
    }
}
