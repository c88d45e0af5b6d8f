//! Jazari: the collector (`server`), its store and accounting, and the clients.

pub mod accounting;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod quota;
pub mod report;
pub mod scheduler;
pub mod server;
pub mod sim;
pub mod store;
pub mod time;
pub mod tui;
