//! The `scenarist` binary: parses arguments and hands over to the library.

mod cli;

/// Executions allocate many small JSON values; mimalloc handles that pattern
/// several times faster than the system allocator (see README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Like every Unix tool: `scenarist executions show ID | head` ends quietly
    // when `head` stops reading, instead of failing on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cli::main()
}
