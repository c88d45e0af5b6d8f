//! Time charts: a column per slice of the window (a gap where no report
//! fell), and an axis with labelled ticks ending at "now".

use super::widgets::Theme;
use crate::api::history::SeriesPoint;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Sparkline};

/// One value per column over [`to_ms` − `window_ms`, `to_ms`): the mean of the
/// points whose bucket (`bucket_ms` from its start) overlaps the column; none
/// where no point does.
pub fn columns(
    points: &[SeriesPoint],
    bucket_ms: i64,
    to_ms: i64,
    window_ms: i64,
    width: usize,
    value: impl Fn(&SeriesPoint) -> Option<f64>,
) -> Vec<Option<f64>> {
    let mut sum = vec![(0.0, 0u32); width];
    if width == 0 {
        return vec![];
    }
    let from = to_ms - window_ms;
    let col = |ts: i64| ((ts - from) as f64 * width as f64 / window_ms as f64).floor();
    for p in points {
        let Some(v) = value(p) else { continue };
        let first = col(p.ts_ms).max(0.0);
        // The last column the bucket reaches (its end is exclusive).
        let last = col(p.ts_ms + bucket_ms.max(1) - 1).min(width as f64 - 1.0);
        let mut c = first;
        while c <= last {
            let s = &mut sum[c as usize];
            s.0 += v;
            s.1 += 1;
            c += 1.0;
        }
    }
    sum.into_iter().map(|(s, n)| (n > 0).then(|| s / n as f64)).collect()
}

/// Draws `cols` as bars against `max` (a present value shows at least a sliver,
/// a gap stays blank).
pub fn bars(f: &mut Frame, area: Rect, cols: &[Option<f64>], max: f64, style: Style) {
    if area.height == 0 || area.width == 0 {
        return;
    }
    let scale = 1000.0 / max.max(f64::MIN_POSITIVE);
    let sliver = (1000u64).div_ceil(u64::from(area.height) * 8);
    let data: Vec<Option<u64>> =
        cols.iter().map(|c| c.map(|v| ((v.max(0.0) * scale).round() as u64).clamp(sliver, 1000))).collect();
    f.render_widget(Sparkline::default().data(data).max(1000).style(style), area);
}

/// The axis under a chart of `width` columns: ticks labelled with how long
/// ago ("-18 h"), and "now" at the right end.
pub fn axis(window_ms: i64, width: usize) -> String {
    let mut line: Vec<char> = vec![' '; width];
    if width < 8 {
        return line.into_iter().collect();
    }
    let ticks = (width / 14).clamp(1, 8);
    let label = |ago_ms: i64| -> String {
        match window_ms {
            w if w <= 3 * 3_600_000 => format!("-{} min", ago_ms / 60_000),
            w if w <= 3 * 86_400_000 => format!("-{} h", ago_ms / 3_600_000),
            _ => format!("-{} d", ago_ms / 86_400_000),
        }
    };
    // Whole units: a tick every window/ticks, rounded to the label's unit.
    let unit = match window_ms {
        w if w <= 3 * 3_600_000 => 60_000,
        w if w <= 3 * 86_400_000 => 3_600_000,
        _ => 86_400_000,
    };
    let step = ((window_ms / ticks as i64) / unit).max(1) * unit;
    let mut ago = window_ms;
    let mut last_end = 0usize;
    while ago > 0 {
        let x = ((window_ms - ago) as f64 / window_ms as f64 * width as f64).round() as usize;
        let text: Vec<char> = format!("└{}", label(ago)).chars().collect();
        if x >= last_end && x + text.len() + 5 < width {
            line[x..x + text.len()].copy_from_slice(&text);
            last_end = x + text.len() + 1;
        }
        ago -= step;
    }
    let now: Vec<char> = "now┘".chars().collect();
    let at = width - now.len();
    line[at..].copy_from_slice(&now);
    line.into_iter().collect()
}

/// A chart: its bars over `area` less the last row, the axis on that row.
pub fn chart(f: &mut Frame, area: Rect, cols: &[Option<f64>], max: f64, style: Style, window_ms: i64, t: &Theme) {
    if area.height < 2 {
        bars(f, area, cols, max, style);
        return;
    }
    let bar_area = Rect { height: area.height - 1, ..area };
    bars(f, bar_area, cols, max, style);
    let axis_area = Rect { y: area.y + area.height - 1, height: 1, ..area };
    f.render_widget(Paragraph::new(Line::styled(axis(window_ms, area.width as usize), t.dim())), axis_area);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ts_ms: i64, v: f64) -> SeriesPoint {
        SeriesPoint { ts_ms, util_pct: Some(v), power_w: 0.0, allocated_gpus: 0.0, gpus: 1 }
    }

    #[test]
    fn gaps_stay_gaps_and_points_land_by_time() {
        // 10 columns over 100 s; buckets of 10 s at 0..30 s and 70..80 s.
        let pts = [p(0, 10.0), p(10_000, 20.0), p(20_000, 30.0), p(70_000, 90.0)];
        let c = columns(&pts, 10_000, 100_000, 100_000, 10, |p| p.util_pct);
        assert_eq!(c, vec![Some(10.0), Some(20.0), Some(30.0), None, None, None, None, Some(90.0), None, None]);
    }

    #[test]
    fn the_axis_ends_at_now_with_labelled_ticks() {
        let a = axis(86_400_000, 80);
        assert!(a.starts_with("└-24 h"), "{a}");
        assert!(a.ends_with("now┘"), "{a}");
        assert!(a.contains("-12 h"), "{a}");
        assert_eq!(a.chars().count(), 80);
    }
}
