//! Integration tests: the real `scenarist` binary against real local HTTP servers.

mod daemon;
mod daemon_util;
mod demo;
mod durable;
mod durable_lib;
mod examples;
mod review;
mod robustness;
mod run_flow;
mod run_http;
mod standins;
mod store_events;
mod util;
mod validate;
mod waits;
mod waits_util;
