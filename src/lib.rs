//! Jazari: the collector, its store and accounting, and the clients.
//!
//! Layers point down only (a test in `tests/architecture.rs` enforces it):
//!
//! | layer | modules | what |
//! |---|---|---|
//! | base | [`time`], [`format`], [`api`], [`tls`] (and the `jazari-wire` crate) | dates and durations, numbers for people, the HTTP contract |
//! | domain | [`accounting`], [`quota`], [`scheduler`], [`config`], [`report`] | pure: what a report charges, burn-downs, Slurm parsing, settings, report model and formats |
//! | state | [`store`], [`auth`], [`live`], [`findings`] | the ledger on disk, tokens, live state in memory, findings raised and cleared |
//! | collector | [`server`] | `jazari serve`: ingest, reads, background tasks |
//! | clients | [`client`], [`sim`], [`tui`], [`cli`] | the HTTP client, simulated agents, the dashboard, the command line |

pub mod accounting;
pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod findings;
pub mod format;
pub mod live;
pub mod quota;
pub mod report;
pub mod scheduler;
pub mod server;
pub mod sim;
pub mod store;
pub mod time;
pub mod tls;
pub mod tui;
