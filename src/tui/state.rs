//! Dashboard state: what was fetched, what the user is looking at, and the
//! key table. Pure: no terminal, no network.

use crate::api::cluster::{ClusterView, JobView, NodeView};
use crate::api::findings::Finding;
use crate::api::history::SeriesPoint;
use crate::api::quota::BurnDown;
use crate::api::usage::UsageRow;

/// The last data fetched from the collector.
#[derive(Debug, Clone, Default)]
pub struct Data {
    pub cluster: Option<ClusterView>,
    pub jobs: Vec<JobView>,
    /// While a delta: the job ids it lists (`JobsResponse::changed`); None when whole.
    pub jobs_changed: Option<Vec<String>>,
    /// When the collector made the jobs' answer (ms).
    pub jobs_ms: i64,
    pub quotas: Vec<BurnDown>,
    /// Cluster series for the overview (recent hours).
    pub recent: Vec<SeriesPoint>,
    /// Cluster series for the History view's window.
    pub history: Vec<SeriesPoint>,
    /// The cluster series' bucket (ms); points are bucket starts.
    pub recent_bucket_ms: i64,
    pub history_bucket_ms: i64,
    /// What the collector finds wrong now (`/api/v1/findings`), most severe first.
    pub findings: Vec<Finding>,
    /// Ledger sums per user over `usage_from_ms` to now (the Users view).
    pub usage: Vec<UsageRow>,
    /// Where the users' period starts, and its name ("2026-11").
    pub usage_from_ms: Option<i64>,
    pub usage_label: String,
    /// When the data was fetched (ms).
    pub fetched_ms: i64,
    /// Whether `jobs` came brief (without their GPUs, `?brief=true`).
    pub jobs_brief: bool,
    /// While the cluster view is brief: the node a drill-down shows, whole.
    pub focus_node: Option<NodeView>,
    /// While the jobs are brief: the jobs of the id a drill-down shows, whole.
    pub focus_jobs: Vec<JobView>,
}

/// One cluster of several, as the header shows it.
#[derive(Debug, Clone, Default)]
pub struct ClusterStatus {
    /// The cluster's name once its collector answered, else its name in the client file or its URL.
    pub name: String,
    pub url: String,
    /// Its last summary, if it ever answered.
    pub summary: Option<crate::api::cluster::Summary>,
    /// When its last data came (ms; 0: never).
    pub fetched_ms: i64,
    pub link: Link,
}

/// Connection state shown in the banner.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    /// Last error and since when (ms), while the collector is unreachable.
    pub error: Option<(String, i64)>,
    /// When the next try is (ms).
    pub retry_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Nodes,
    Jobs,
    Institutes,
    History,
    Findings,
    Users,
}

impl View {
    pub const ALL: [View; 7] =
        [View::Overview, View::Nodes, View::Jobs, View::Institutes, View::History, View::Findings, View::Users];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Nodes => "Nodes",
            View::Jobs => "Jobs",
            View::Institutes => "Institutes",
            View::History => "History",
            View::Findings => "Findings",
            View::Users => "Users",
        }
    }

    /// The title at 80 columns.
    pub fn short(self) -> &'static str {
        match self {
            View::Overview => "Over",
            View::Nodes => "Nodes",
            View::Jobs => "Jobs",
            View::Institutes => "Inst",
            View::History => "Hist",
            View::Findings => "Find",
            View::Users => "Users",
        }
    }

    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// History windows.
pub const WINDOWS: [(&str, i64); 3] = [("1h", 3_600_000), ("24h", 86_400_000), ("7d", 7 * 86_400_000)];

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    NextView,
    PrevView,
    Goto(View),
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Enter,
    Back,
    Filter,
    Sort,
    Pause,
    Help,
    Window,
    Quit,
}

/// The key table: what each key does. Shown by `?`.
pub const KEYS: &[(&str, &str, Command)] = &[
    ("Tab", "next view", Command::NextView),
    ("Shift-Tab", "previous view", Command::PrevView),
    ("1", "overview", Command::Goto(View::Overview)),
    ("2", "nodes", Command::Goto(View::Nodes)),
    ("3", "jobs", Command::Goto(View::Jobs)),
    ("4", "institutes", Command::Goto(View::Institutes)),
    ("5", "history", Command::Goto(View::History)),
    ("6", "findings", Command::Goto(View::Findings)),
    ("7", "users", Command::Goto(View::Users)),
    ("↑ k", "move up", Command::Up),
    ("↓ j", "move down", Command::Down),
    ("PgUp PgDn", "page up / down", Command::PageUp),
    ("g G", "first / last", Command::Top),
    ("Enter", "open (or click a row twice)", Command::Enter),
    ("Esc", "back, clear filter", Command::Back),
    ("/", "filter", Command::Filter),
    ("s", "sort by next column", Command::Sort),
    ("w", "history window 1h / 24h / 7d", Command::Window),
    ("p", "pause refresh", Command::Pause),
    ("?", "this help", Command::Help),
    ("q", "quit", Command::Quit),
];

/// Maps a key (as crossterm names it) to a command.
pub fn command_for(code: &str, shift: bool) -> Option<Command> {
    Some(match code {
        "Tab" if shift => Command::PrevView,
        "Tab" => Command::NextView,
        "BackTab" => Command::PrevView,
        "1" => Command::Goto(View::Overview),
        "2" => Command::Goto(View::Nodes),
        "3" => Command::Goto(View::Jobs),
        "4" => Command::Goto(View::Institutes),
        "5" => Command::Goto(View::History),
        "6" => Command::Goto(View::Findings),
        "7" => Command::Goto(View::Users),
        "Up" | "k" => Command::Up,
        "Down" | "j" => Command::Down,
        "PageUp" => Command::PageUp,
        "PageDown" => Command::PageDown,
        "Home" | "g" => Command::Top,
        "End" | "G" => Command::Bottom,
        "Enter" => Command::Enter,
        "Esc" => Command::Back,
        "/" => Command::Filter,
        "s" => Command::Sort,
        "w" => Command::Window,
        "p" => Command::Pause,
        "?" => Command::Help,
        "q" => Command::Quit,
        _ => return None,
    })
}

/// Columns the Nodes table sorts by (`state`: stale, unhealthy, idle-allocated, ok).
pub const NODE_SORTS: [&str; 6] = ["name", "state", "util", "power", "temp", "jobs"];
/// Columns the Jobs table sorts by.
pub const JOB_SORTS: [&str; 5] = ["id", "util", "gpus", "runtime", "institute"];
/// Columns the Findings table sorts by.
pub const FINDING_SORTS: [&str; 6] = ["severity", "kind", "subject", "institute", "first seen", "last seen"];
/// Columns the Users table sorts by.
pub const USER_SORTS: [&str; 5] = ["gpus", "gpu-hours", "idle", "jobs", "user"];

/// The sort key of `view` among `names`.
pub fn sort_name(ui: &UiState, view: View, names: &[&'static str]) -> &'static str {
    names[ui.sort[view.index()] % names.len()]
}

/// Everything the screen shows besides the data.
#[derive(Debug, Clone)]
pub struct UiState {
    pub view: View,
    /// Selected row per view.
    pub selected: [usize; 7],
    /// Drill-down: a node name, job id or institute id.
    pub detail: Option<String>,
    pub filter: String,
    pub filtering: bool,
    pub sort: [usize; 7],
    pub paused: bool,
    pub help: bool,
    pub window: usize,
    pub quit: bool,
    pub color: bool,
    /// Rows visible in the current table (set while drawing).
    pub page: usize,
    /// Where the mouse can click (set while drawing): the views' tabs in the
    /// header as (first column, past the last, view), the screen row of the
    /// table's first shown row and that row's index.
    pub tabs: Vec<(u16, u16, View)>,
    pub table_y: Option<u16>,
    pub table_start: usize,
}

impl Default for UiState {
    fn default() -> Self {
        Self {
            view: View::Overview,
            selected: [0; 7],
            detail: None,
            filter: String::new(),
            filtering: false,
            sort: [0; 7],
            paused: false,
            help: false,
            window: 1,
            quit: false,
            color: true,
            page: 10,
            tabs: vec![],
            table_y: None,
            table_start: 0,
        }
    }
}

/// The whole dashboard state.
#[derive(Debug, Clone, Default)]
pub struct App {
    pub ui: UiState,
    pub data: Data,
    pub link: Link,
    pub url: String,
    /// With several collectors, each cluster (empty with one): `data` is then
    /// their merge, names prefixed `CLUSTER/` (see `tui::network`).
    pub clusters: Vec<ClusterStatus>,
}

impl App {
    /// Whether the screen shows a clock that moves without new data (an
    /// unreachable collector's "data 12 s old · retrying in 3 s").
    pub fn clocks_shown(&self) -> bool {
        self.link.error.is_some() || self.clusters.iter().any(|c| c.link.error.is_some())
    }

    /// Whether several clusters are shown.
    pub fn multi(&self) -> bool {
        self.clusters.len() > 1
    }

    fn rows(&self) -> usize {
        match (self.ui.view, &self.ui.detail) {
            (View::Nodes, None) => self.nodes().len(),
            (View::Jobs, None) => self.jobs().len(),
            (View::Institutes, None) => self.institutes().len(),
            (View::Findings, _) => self.findings().len(),
            (View::Users, _) => self.users().len(),
            _ => 0,
        }
    }

    fn sel(&mut self) -> &mut usize {
        let i = self.ui.view.index();
        &mut self.ui.selected[i]
    }

    pub fn selected(&self) -> usize {
        self.ui.selected[self.ui.view.index()]
    }

    /// Applies a command.
    pub fn apply(&mut self, cmd: Command) {
        if self.ui.help {
            // Any key closes the help, q still quits.
            self.ui.help = false;
            if cmd == Command::Quit {
                self.ui.quit = true;
            }
            return;
        }
        let rows = self.rows();
        let page = self.ui.page.max(1);
        match cmd {
            Command::NextView | Command::PrevView => {
                let n = View::ALL.len();
                let i = self.ui.view.index();
                let j = if cmd == Command::NextView { (i + 1) % n } else { (i + n - 1) % n };
                self.switch(View::ALL[j]);
            }
            Command::Goto(v) => self.switch(v),
            Command::Up => *self.sel() = self.selected().saturating_sub(1),
            Command::Down => *self.sel() = (self.selected() + 1).min(rows.saturating_sub(1)),
            Command::PageUp => *self.sel() = self.selected().saturating_sub(page),
            Command::PageDown => *self.sel() = (self.selected() + page).min(rows.saturating_sub(1)),
            Command::Top => *self.sel() = 0,
            Command::Bottom => *self.sel() = rows.saturating_sub(1),
            Command::Enter => {
                if self.ui.detail.is_none() {
                    let i = self.selected();
                    match self.ui.view {
                        View::Findings => self.open_finding(i),
                        View::Users => {
                            if let Some(u) = self.users().get(i).map(|u| u.user.clone()) {
                                self.switch(View::Jobs);
                                self.ui.filter = format!("user:{u}");
                            }
                        }
                        _ => {
                            self.ui.detail = match self.ui.view {
                                View::Nodes => self.nodes().get(i).map(|n| n.name.clone()),
                                View::Jobs => self.jobs().get(i).map(|j| j.id.clone()),
                                View::Institutes => self.institutes().get(i).map(|q| q.institute.clone()),
                                _ => None,
                            }
                        }
                    }
                }
            }
            Command::Back => {
                if self.ui.detail.is_some() {
                    self.ui.detail = None;
                } else {
                    self.ui.filter.clear();
                }
            }
            Command::Filter => {
                self.ui.filtering = true;
                self.ui.filter.clear();
            }
            Command::Sort => {
                let i = self.ui.view.index();
                self.ui.sort[i] += 1;
            }
            Command::Pause => self.ui.paused = !self.ui.paused,
            Command::Help => self.ui.help = true,
            Command::Window => self.ui.window = (self.ui.window + 1) % WINDOWS.len(),
            Command::Quit => self.ui.quit = true,
        }
    }

    /// Drills down from a finding to its job, else its node, else its institute.
    fn open_finding(&mut self, i: usize) {
        let Some(x) = self.findings().get(i).map(|x| (*x).clone()) else { return };
        if let Some(j) = x.job.filter(|j| self.job(j).is_some()) {
            self.switch(View::Jobs);
            self.ui.detail = Some(j);
        } else if let Some(n) = x.node {
            self.switch(View::Nodes);
            self.ui.detail = Some(n);
        } else if let Some(inst) = x.institute {
            self.switch(View::Institutes);
            self.ui.detail = Some(inst);
        }
    }

    /// A left click at (`x`, `y`): a tab switches views, a row is selected,
    /// a click on the selected row opens it.
    pub fn click(&mut self, x: u16, y: u16) {
        if self.ui.help {
            self.ui.help = false;
            return;
        }
        if y == 0 {
            if let Some(&(_, _, v)) = self.ui.tabs.iter().find(|(a, b, _)| (*a..*b).contains(&x)) {
                self.switch(v);
            }
            return;
        }
        let Some(top) = self.ui.table_y else { return };
        if y < top || self.ui.detail.is_some() {
            return;
        }
        let row = self.ui.table_start + (y - top) as usize;
        if row < self.rows() {
            if row == self.selected() {
                self.apply(Command::Enter);
            } else {
                *self.sel() = row;
            }
        }
    }

    fn switch(&mut self, v: View) {
        self.ui.view = v;
        self.ui.detail = None;
        self.ui.filter.clear();
    }

    /// Typing into the filter: a character, Backspace, Enter (done) or Esc (cancel).
    pub fn filter_key(&mut self, code: &str) {
        match code {
            "Enter" => self.ui.filtering = false,
            "Esc" => {
                self.ui.filtering = false;
                self.ui.filter.clear();
            }
            "Backspace" => {
                self.ui.filter.pop();
            }
            c if c.chars().count() == 1 => self.ui.filter.push_str(c),
            _ => {}
        }
        *self.sel() = 0;
    }

    /// Takes in newly fetched data, keeping selections in range.
    pub fn set_data(&mut self, data: Data) {
        self.data = data;
        self.link.error = None;
        self.link.retry_ms = None;
        for v in View::ALL {
            let i = v.index();
            let view = self.ui.view;
            self.ui.view = v;
            let rows = if self.ui.detail.is_some() && v == view { usize::MAX } else { self.rows() };
            self.ui.view = view;
            self.ui.selected[i] = self.ui.selected[i].min(rows.saturating_sub(1));
        }
    }
}

pub fn node_util(n: &NodeView) -> f64 {
    let (sum, k) =
        n.gpus.iter().filter_map(|g| g.gpu.util_gpu_pct).fold((0.0, 0), |(s, k), u| (s + f64::from(u), k + 1));
    if k == 0 { 0.0 } else { sum / k as f64 }
}

/// SM active now (GPM) over a node's GPUs that measure it, a MIG slice weighing
/// its compute slices / 7; None where none does (shown "-", never 0).
pub fn node_sm(n: &NodeView) -> Option<f64> {
    let (mut sum, mut weight) = (0.0, 0.0);
    for g in &n.gpus {
        let mut add = |w: f64, v: Option<f64>| {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                sum += w * v;
                weight += w;
            }
        };
        if g.gpu.mig_devices.is_empty() {
            add(1.0, g.gpu.gpm.as_ref().and_then(|m| m.sm_active_pct));
        }
        for s in &g.gpu.mig_devices {
            add(s.slices_compute.unwrap_or(1).min(7) as f64 / 7.0, s.gpm.as_ref().and_then(|m| m.sm_active_pct));
        }
    }
    (weight > 0.0).then(|| sum / weight)
}

/// A MIG slice's size: compute slices of 7 and memory slices of 8 (`3g 4m`).
pub fn slice_size(compute: Option<u32>, memory: Option<u32>) -> String {
    let n = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    format!("{}g {}m", n(compute), n(memory))
}

pub fn node_power(n: &NodeView) -> f64 {
    n.gpus.iter().filter_map(|g| g.gpu.power_mw).map(|p| p as f64 / 1000.0).sum()
}
