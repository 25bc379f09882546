//! The `regelkreis` binary: parse arguments, dispatch, report errors.

use clap::Parser;

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
