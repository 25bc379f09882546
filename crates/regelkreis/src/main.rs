//! The `regelkreis` binary: parse arguments, dispatch, report errors.

use clap::Parser;

/// mimalloc: the server allocates small short-lived buffers on every request (JSON,
/// headers, bodies); glibc's allocator spent ~11 % of the gateway's CPU time on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = regelkreis::cli::Cli::parse();
    match regelkreis::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
