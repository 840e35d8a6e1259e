//! Integration tests: the real `scenarist` binary against real local HTTP servers.

mod daemon;
mod daemon_util;
mod durable;
mod durable_lib;
mod examples;
mod robustness;
mod run_flow;
mod run_http;
mod util;
mod validate;
