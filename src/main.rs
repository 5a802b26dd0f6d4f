//! The `unitcoder` command-line tool. Argument parsing, progress bars and error reporting live here;
//! the work itself is in the library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Exit codes: 0 success, 1 the work ran but found failures, 2 usage or internal error
    // (clap itself exits 2 on usage errors).
    match cli::run() {
        Ok(cli::Outcome::Success) => ExitCode::SUCCESS,
        Ok(cli::Outcome::Failures) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
