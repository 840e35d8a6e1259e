//! Integration tests: the real `scenarist` binary against real local HTTP servers.

mod browser;
mod cluster;
mod daemon;
mod daemon_util;
mod dashboard;
mod dashboard_access;
mod dashboard_util;
mod demo;
mod durable;
mod durable_lib;
mod examples;
mod multi_daemon;
mod pg;
mod review;
mod robustness;
mod run_flow;
mod run_http;
mod scenario_tests;
mod secrets;
mod standins;
mod store_faults;
mod store_suite;
mod util;
mod validate;
mod waits;
mod waits_util;
