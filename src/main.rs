//! The `scenarist` binary: parses arguments and hands over to the library.

mod cli;

/// Executions allocate many small JSON values; mimalloc handles that pattern
/// several times faster than the system allocator (see README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
