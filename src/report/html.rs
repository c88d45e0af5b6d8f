//! One self-contained HTML file with inline SVG charts and print styles.

use super::Report;
use super::md::GAPS_SHOWN;
use super::text::{INSTITUTE_COLUMNS, count, grant_note, h, institute_cells, pct, shown_of, total_cells};
use crate::time::format_rfc3339;
use std::collections::BTreeMap;
use std::fmt::Write;

const PALETTE: [&str; 10] =
    ["#1b6ca8", "#e07b39", "#3a9d5d", "#c23b4a", "#7b5ea7", "#8c6d3f", "#d46fa8", "#6b6b6b", "#a8a832", "#2bb0b8"];

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Stacked bars: GPU-hours (allocated + unscheduled) per institute per slice.
fn stacked(r: &Report) -> String {
    let mut slices: BTreeMap<i64, String> = BTreeMap::new();
    for i in &r.institutes {
        for s in &i.breakdown {
            slices.insert(s.start_s, s.label.clone());
        }
    }
    let keys: Vec<i64> = slices.keys().copied().collect();
    let value = |i: &super::InstituteReport, k: i64| {
        i.breakdown
            .iter()
            .find(|s| s.start_s == k)
            .map(|s| s.figures.allocated_gpu_hours + s.figures.unscheduled_gpu_hours)
            .unwrap_or(0.0)
    };
    let max = keys.iter().map(|k| r.institutes.iter().map(|i| value(i, *k)).sum::<f64>()).fold(0.0, f64::max).max(1.0);
    let (w, hgt, left, bottom) = (720.0, 260.0, 70.0, 40.0);
    let bw = ((w - left - 10.0) / keys.len().max(1) as f64).min(60.0);
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {}" role="img" aria-label="GPU-hours per institute per {}">"#,
        hgt + 30.0,
        r.breakdown_by
    );
    let _ = write!(s, r#"<line x1="{left}" y1="10" x2="{left}" y2="{}" stroke="rgb(153,153,153)"/>"#, hgt - bottom);
    for t in 0..=4 {
        let v = max * t as f64 / 4.0;
        let y = hgt - bottom - (hgt - bottom - 10.0) * t as f64 / 4.0;
        let _ = write!(
            s,
            r#"<text x="{}" y="{y}" font-size="10" text-anchor="end">{}</text><line x1="{left}" y1="{y}" x2="{w}" y2="{y}" stroke="rgb(238,238,238)"/>"#,
            left - 4.0,
            h(v)
        );
    }
    for (n, k) in keys.iter().enumerate() {
        let x = left + 5.0 + n as f64 * bw;
        let mut y = hgt - bottom;
        for (c, i) in r.institutes.iter().enumerate() {
            let v = value(i, *k);
            let bh = v / max * (hgt - bottom - 10.0);
            y -= bh;
            let _ = write!(
                s,
                r#"<rect x="{x}" y="{y}" width="{}" height="{bh}" fill="{}"><title>{} {}: {} GPU-h</title></rect>"#,
                bw * 0.8,
                PALETTE[c % PALETTE.len()],
                esc(&i.id),
                esc(&slices[k]),
                h(v)
            );
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>"#,
            x + bw * 0.4,
            hgt - bottom + 14.0,
            esc(&slices[k])
        );
    }
    for (c, i) in r.institutes.iter().enumerate() {
        let x = left + (c % 4) as f64 * 160.0;
        let y = hgt - 8.0 + (c / 4) as f64 * 14.0;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{y}" font-size="11">{}</text>"#,
            y - 9.0,
            PALETTE[c % PALETTE.len()],
            x + 14.0,
            esc(&i.id)
        );
    }
    s + "</svg>"
}

/// Grant against use, per institute.
fn grant_vs_use(r: &Report) -> String {
    let max = r
        .institutes
        .iter()
        .map(|i| {
            i.granted_gpu_hours.unwrap_or(0.0).max(i.figures.allocated_gpu_hours + i.figures.unscheduled_gpu_hours)
        })
        .fold(0.0, f64::max)
        .max(1.0);
    let (w, row, left) = (720.0, 28.0, 150.0);
    let hgt = r.institutes.len() as f64 * row + 20.0;
    let mut s = format!(r#"<svg class="chart" viewBox="0 0 {w} {hgt}" role="img" aria-label="grant against use">"#);
    for (n, i) in r.institutes.iter().enumerate() {
        let y = 10.0 + n as f64 * row;
        let used = i.figures.allocated_gpu_hours + i.figures.unscheduled_gpu_hours;
        let scale = (w - left - 210.0) / max;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + 14.0,
            esc(&i.id)
        );
        if let Some(g) = i.granted_gpu_hours {
            let _ = write!(
                s,
                r##"<rect x="{left}" y="{y}" width="{}" height="20" fill="none" stroke="#333" stroke-dasharray="4 2"><title>granted {} GPU-h</title></rect>"##,
                g * scale,
                h(g)
            );
        }
        let color = if i.share_of_grant_pct.is_some_and(|p| p > 100.0) { "#c23b4a" } else { "#1b6ca8" };
        let _ = write!(
            s,
            r#"<rect x="{left}" y="{}" width="{}" height="12" fill="{color}"><title>used {} GPU-h</title></rect>"#,
            y + 4.0,
            used * scale,
            h(used)
        );
        let label = match i.share_of_grant_pct {
            Some(p) => format!("{} of {} ({p:.1} %)", h(used), h(i.granted_gpu_hours.unwrap_or(0.0))),
            None => format!("{} (no grant)", h(used)),
        };
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="10">{}</text>"#,
            left + (used.max(i.granted_gpu_hours.unwrap_or(0.0))) * scale + 6.0,
            y + 14.0,
            label
        );
    }
    s + "</svg>"
}

/// Utilisation over time: utilised / allocated, and allocated / capacity,
/// per day, on the period's own time axis (days without data are gaps, and a
/// single day is still drawn, as points).
fn utilisation(r: &Report) -> String {
    let (w, hgt, left, bottom) = (720.0, 220.0, 40.0, 30.0);
    let days = r.period.days().max(1) as f64;
    let x = |day_s: i64| left + (w - left - 10.0) * ((day_s - r.period.start_s) as f64 / 86_400.0 + 0.5) / days;
    let y = |p: f64| hgt - bottom - (hgt - bottom - 10.0) * p.clamp(0.0, 100.0) / 100.0;
    let series = |f: &dyn Fn(&super::DayPoint) -> Option<f64>, color: &str, what: &str| {
        // Consecutive days join; a missing day breaks the line.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![];
        let mut prev: Option<i64> = None;
        for d in &r.daily {
            let Some(p) = f(d) else {
                prev = None;
                continue;
            };
            if prev != Some(d.day_s - 86_400) {
                runs.push(vec![]);
            }
            runs.last_mut().expect("pushed").push((x(d.day_s), y(p)));
            prev = Some(d.day_s);
        }
        let mut s = String::new();
        for run in runs {
            let pts: Vec<String> = run.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"><title>{what}</title></polyline>"#,
                pts.join(" ")
            );
            for (a, b) in run {
                let _ = write!(
                    s,
                    r#"<circle cx="{a:.1}" cy="{b:.1}" r="2.5" fill="{color}"><title>{what}</title></circle>"#
                );
            }
        }
        s
    };
    let eff = series(&|d| d.figures.efficiency_pct(), "#1b6ca8", "utilisation of allocated GPUs");
    let alloc = series(
        &|d| {
            (d.figures.capacity_gpu_hours > 0.0)
                .then(|| d.figures.allocated_gpu_hours / d.figures.capacity_gpu_hours * 100.0)
        },
        "#3a9d5d",
        "allocated share of capacity",
    );
    let mut s = format!(r#"<svg class="chart" viewBox="0 0 {w} {hgt}" role="img" aria-label="utilisation over time">"#);
    for t in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let _ = write!(
            s,
            r#"<line x1="{left}" y1="{0}" x2="{w}" y2="{0}" stroke="rgb(238,238,238)"/><text x="{1}" y="{0}" font-size="10" text-anchor="end">{t}%</text>"#,
            y(t),
            left - 4.0
        );
    }
    s.push_str(&alloc);
    s.push_str(&eff);
    let _ = write!(
        s,
        r#"<text x="{left}" y="{}" font-size="10">{}</text><text x="{w}" y="{}" font-size="10" text-anchor="end">{}</text>"#,
        hgt - 12.0,
        r.period.first_day,
        hgt - 12.0,
        r.period.last_day
    );
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" font-size="11" fill="#3a9d5d">allocated / capacity</text><text x="{}" y="{}" font-size="11" fill="#1b6ca8">utilised / allocated (NVML)</text>"##,
        left + 120.0,
        hgt - 12.0,
        left + 280.0,
        hgt - 12.0
    );
    s + "</svg>"
}

pub fn render(r: &Report) -> String {
    let mut o = head(&format!("GPU usage report: {} · {}", esc(&r.cluster_name), esc(&r.period.label)));
    body(r, &mut o);
    o.push_str("</body></html>\n");
    o
}

/// The document up to `<body>`, with its title (escaped already) and styles.
pub fn head(title: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.2em; border-bottom: 1px solid #ccc; }} h3 {{ font-size: 1em; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }}
th, td {{ border: 1px solid #ccc; padding: .25em .5em; }} td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.total td {{ font-weight: bold; }} .note {{ color: #555; font-size: .85em; }}
svg.chart {{ width: 100%; height: auto; max-width: 720px; }}
@media print {{ body {{ margin: 0; max-width: none; font-size: 10pt; }} .chart, table {{ page-break-inside: avoid; }} h2 {{ page-break-after: avoid; }} }}
</style></head><body>
"#
    )
}

/// One cluster's report, from its title to its closing note (inside `<body>`).
pub fn body(r: &Report, o: &mut String) {
    let c = &r.cluster;
    let _ = write!(
        o,
        r#"<h1>GPU usage report: {cluster} · {label}</h1>
<p class="note">Period {first} to {last} (UTC, whole days) · generated {gen} · utilisation: {signal}{anon}{scope}</p>
"#,
        cluster = esc(&r.cluster_name),
        label = esc(&r.period.label),
        first = r.period.first_day,
        last = r.period.last_day,
        gen = format_rfc3339(r.generated_ms),
        signal = esc(&r.utilisation_signal),
        anon = if r.anonymised { " · user names pseudonymised" } else { "" },
        scope = r.institute.as_deref().map(|i| format!(" · institute {} only", esc(i))).unwrap_or_default()
    );
    let _ = write!(
        o,
        r#"<h2>Cluster</h2><table><tr><th>capacity GPU-h</th><th>allocated GPU-h</th><th>allocated</th><th>utilised GPU-h</th><th>utilised</th><th>availability</th><th>data coverage</th><th>energy kWh</th></tr>
<tr><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr></table>
"#,
        h(c.figures.capacity_gpu_hours),
        h(c.figures.allocated_gpu_hours),
        pct(c.allocated_share_pct),
        h(c.figures.utilised_gpu_hours),
        pct(c.utilised_share_pct),
        pct(c.availability_pct),
        pct(c.coverage.coverage_pct),
        h(c.figures.energy_kwh)
    );
    let cov = &c.coverage;
    let whose = if r.institute.is_some() { "the institute's " } else { "" };
    let shown = match cov.gaps.len() {
        0 => "no gaps".to_string(),
        n if n > GAPS_SHOWN => format!("{n} gaps, the {GAPS_SHOWN} largest shown (all are in the JSON report)"),
        n => count(n, "gap", "gaps"),
    };
    let _ = write!(
        o,
        r#"<p class="note">Data coverage: {} of {} expected node-hours received ({}) from {} {whose}nodes, each expected from its first report until the end of the period or now; {shown}.</p>"#,
        h(cov.received_node_hours),
        h(cov.expected_node_hours),
        pct(cov.coverage_pct),
        cov.nodes,
    );
    if !cov.gaps.is_empty() {
        o.push_str("<table><tr><th>node</th><th>from</th><th>to</th><th>missing hours</th></tr>");
        for g in cov.gaps.iter().take(GAPS_SHOWN) {
            let _ = write!(
                o,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="n">{}</td></tr>"#,
                esc(&g.node),
                format_rfc3339(g.from_s * 1000),
                format_rfc3339(g.to_s * 1000),
                h(g.missing_hours)
            );
        }
        o.push_str("</table>");
    }
    let _ = write!(o, "<h2>GPU-hours per institute per {}</h2>{}", r.breakdown_by, stacked(r));
    let _ = write!(o, "<h2>Grant against use</h2>{}", grant_vs_use(r));
    let _ = write!(o, "<h2>Utilisation over time</h2>{}", utilisation(r));
    let row = |cells: &[String], class: &str| {
        let tds: Vec<String> = cells
            .iter()
            .enumerate()
            .map(
                |(k, c)| {
                    if k == 0 { format!("<td>{}</td>", esc(c)) } else { format!(r#"<td class="n">{}</td>"#, esc(c)) }
                },
            )
            .collect();
        format!("<tr{class}>{}</tr>", tds.join(""))
    };
    let ths: Vec<String> = INSTITUTE_COLUMNS.iter().map(|c| format!("<th>{c}</th>")).collect();
    let _ = write!(o, "<h2>Institutes</h2><table><tr>{}</tr>", ths.join(""));
    for i in &r.institutes {
        o.push_str(&row(&institute_cells(i), ""));
    }
    if let Some(t) = total_cells(r) {
        o.push_str(&row(&t, r#" class="total""#));
    }
    o.push_str(r#"</table><p class="note">Peak GPUs: the most GPUs held (allocated or unscheduled) or busy at once, as the highest one-minute mean.</p>"#);
    for i in &r.institutes {
        let _ = write!(o, "<h3>{} ({})</h3>", esc(&i.name), esc(&i.id));
        if let Some(note) = grant_note(i, r.period.days()) {
            let _ = write!(o, r#"<p class="note">{}</p>"#, esc(&note));
        }
        let _ = write!(
            o,
            "<table><tr><th>{}</th><th>allocated GPU-h</th><th>utilised GPU-h</th><th>efficiency</th></tr>",
            r.breakdown_by
        );
        for s in &i.breakdown {
            let _ = write!(
                o,
                r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                esc(&s.label),
                h(s.figures.allocated_gpu_hours),
                h(s.figures.utilised_gpu_hours),
                pct(s.figures.efficiency_pct())
            );
        }
        o.push_str("</table>");
        for (what, rows) in [
            (
                shown_of(i.top_users.len(), i.users, "users"),
                i.top_users.iter().map(|u| (u.user.clone(), &u.figures)).collect::<Vec<_>>(),
            ),
            (
                shown_of(i.top_jobs.len(), i.jobs, "jobs"),
                i.top_jobs.iter().map(|j| (format!("{} ({})", j.job, j.user), &j.figures)).collect(),
            ),
        ] {
            if rows.is_empty() {
                continue;
            }
            let _ = write!(
                o,
                "<p>{}:</p><table><tr><th></th><th>GPU-h used</th><th>allocated GPU-h</th><th>utilised GPU-h</th><th>idle-allocated GPU-h</th><th>unscheduled GPU-h</th><th>energy kWh</th></tr>",
                esc(&what)
            );
            for (name, f) in rows {
                let cells = [
                    name,
                    h(f.allocated_gpu_hours + f.unscheduled_gpu_hours),
                    h(f.allocated_gpu_hours),
                    h(f.utilised_gpu_hours),
                    h(f.idle_allocated_gpu_hours),
                    h(f.unscheduled_gpu_hours),
                    h(f.energy_kwh),
                ];
                o.push_str(&row(&cells, ""));
            }
            o.push_str("</table>");
        }
    }
    let eff = super::text::efficiency_rows(r);
    if !eff.is_empty() {
        let _ = write!(o, "<h2>Efficiency</h2><p>{}</p><table><tr>", esc(super::text::EFFICIENCY_NOTE));
        for c in super::text::EFFICIENCY_COLUMNS {
            let _ = write!(o, "<th>{}</th>", esc(c));
        }
        o.push_str("</tr>");
        for cells in &eff {
            o.push_str(&row(cells, ""));
        }
        o.push_str("</table>");
    }
    let (counts, failed) = super::text::findings_tables(r);
    if !counts.is_empty() {
        o.push_str("<h2>Findings in the period</h2><table><tr><th>kind</th><th>severity</th><th>findings</th></tr>");
        for [k, s, n] in &counts {
            let _ = write!(o, r#"<tr><td>{}</td><td>{}</td><td class="n">{}</td></tr>"#, esc(k), esc(s), esc(n));
        }
        o.push_str("</table>");
        if !failed.is_empty() {
            o.push_str("<p>GPUs that failed:</p><table><tr><th>node</th><th>GPU</th><th>what</th><th>first seen</th><th>cleared</th></tr>");
            for cells in &failed {
                o.push_str("<tr>");
                for c in cells {
                    let _ = write!(o, "<td>{}</td>", esc(c));
                }
                o.push_str("</tr>");
            }
            o.push_str("</table>");
        }
    }
    let _ = write!(
        o,
        r#"<p class="note">Allocated GPU-hours = GPUs held by jobs × wall time; utilised = allocated × {}.</p>"#,
        esc(&r.utilisation_signal)
    );
}
