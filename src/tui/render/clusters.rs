//! With several clusters: under the views' tabs, the network's totals and
//! each cluster in a few words; one whose collector does not answer says so,
//! with the age of its last data and when the next try is. Its last data
//! stays in the views.

use super::super::state::{App, ClusterStatus};
use super::widgets::{Theme, kw};
use crate::format::{ago, fit};
use ratatui::text::{Line, Span};

/// A run of spans and its width in cells.
type Segment = (Vec<Span<'static>>, usize);

fn segment(spans: Vec<Span<'static>>) -> Segment {
    let w = spans.iter().map(|s| s.content.chars().count()).sum();
    (spans, w)
}

fn cluster(c: &ClusterStatus, t: &Theme, now_ms: i64, room: usize) -> Segment {
    let name = Span::styled(c.name.clone(), if c.link.error.is_some() { t.bad() } else { t.bold() });
    if let Some((err, _)) = &c.link.error {
        let age = if c.fetched_ms > 0 { format!("data {} old", ago(now_ms - c.fetched_ms)) } else { "no data".into() };
        let retry = c.link.retry_ms.map(|r| format!(" · retry in {}", ago(r - now_ms))).unwrap_or_default();
        let rest = format!(" unreachable ({err}) · {age}{retry}");
        let rest = fit(&rest, room.saturating_sub(c.name.chars().count()).max(12));
        return segment(vec![name, Span::styled(rest, t.bad())]);
    }
    let Some(s) = &c.summary else {
        return segment(vec![name, Span::styled(" waiting for its first answer", t.dim())]);
    };
    let mut spans = vec![name, Span::raw(format!(" {} GPUs · {} alloc", s.gpus, s.gpus_allocated))];
    if s.gpus_idle_allocated > 0 {
        spans.push(Span::styled(format!(" · {} idle", s.gpus_idle_allocated), t.warn()));
    }
    if s.gpus_unhealthy > 0 {
        spans.push(Span::styled(format!(" · {} unhealthy", s.gpus_unhealthy), t.bad()));
    }
    spans.push(Span::raw(format!(" · {}/{} nodes", s.nodes_reporting, s.nodes)));
    segment(spans)
}

/// The lines (at most `max_rows`), or none with one cluster.
pub fn lines(app: &App, width: usize, max_rows: usize, t: &Theme, now_ms: i64) -> Vec<Line<'static>> {
    if !app.multi() || max_rows == 0 {
        return vec![];
    }
    let answering = app.clusters.iter().filter(|c| c.link.error.is_none() && c.summary.is_some()).count();
    let mut title = format!("network of {}", app.clusters.len());
    if answering < app.clusters.len() {
        title += &format!(" ({answering} answering)");
    }
    let totals = app.data.cluster.as_ref().map(|c| &c.summary).map(|s| {
        let long = format!(
            ": {} GPUs · {} alloc · {} busy · {} idle-alloc · {}/{} nodes · {}",
            s.gpus,
            s.gpus_allocated,
            s.gpus_busy,
            s.gpus_idle_allocated,
            s.nodes_reporting,
            s.nodes,
            kw(s.power_w)
        );
        let short = format!(
            ": {} GPUs · {} alloc · {} idle · {}/{} nodes",
            s.gpus, s.gpus_allocated, s.gpus_idle_allocated, s.nodes_reporting, s.nodes
        );
        let room = width.saturating_sub(1 + title.chars().count());
        if long.chars().count() <= room { long } else { fit(&short, room) }
    });
    let answered_style = if answering < app.clusters.len() { t.bad() } else { t.bold() };
    let head = vec![Span::styled(title, answered_style), Span::raw(totals.unwrap_or_default())];
    let room = width.saturating_sub(2);
    let mut segments = vec![segment(head)];
    segments.extend(app.clusters.iter().map(|c| cluster(c, t, now_ms, room)));
    // Packed into lines: (spans, width, clusters on the line).
    let mut packed: Vec<(Vec<Span>, usize, usize)> = vec![];
    for (k, (spans, w)) in segments.into_iter().enumerate() {
        match packed.last_mut() {
            Some(l) if l.1 + 3 + w <= width => {
                l.0.push(Span::raw(" │ "));
                l.0.extend(spans);
                l.1 += 3 + w;
                l.2 += usize::from(k > 0);
            }
            _ => {
                let mut first = vec![Span::raw(" ")];
                first.extend(spans);
                packed.push((first, 1 + w, usize::from(k > 0)));
            }
        }
    }
    let mut out: Vec<Line> = vec![];
    let (mut shown, mut on_last) = (0, 0);
    for (spans, _, n) in packed.into_iter().take(max_rows) {
        out.push(Line::from(spans));
        shown += n;
        on_last = n;
    }
    if shown < app.clusters.len()
        && let Some(last) = out.last_mut()
    {
        let hidden = app.clusters.len() - shown + on_last;
        *last = Line::styled(format!(" … {hidden} more clusters: enlarge the window"), t.dim());
    }
    out
}
