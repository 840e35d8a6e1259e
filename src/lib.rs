//! scenarist: declarative scenarios (YAML) compiled to plans and run by an async engine.
//!
//! Data flows one way: `load` (text to model) -> `plan` (validated, compiled)
//! -> `engine` (executes) -> `store` (keeps every result) -> `runner` (durable
//! executions). The CLI sits on top and is the only part that prints.

pub mod catalog;
pub mod credentials;
pub mod daemon;
pub mod diagnostic;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod import;
pub mod load;
pub mod model;
pub mod plan;
pub mod report;
pub mod runner;
pub mod schema;
pub mod standins;
pub mod store;
pub mod testing;
