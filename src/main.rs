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
        // The reader of our stdout went away (`unitcoder models list | head -1`): nothing is wrong
        // with the work, and there is no one left to tell.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().filter_map(|e| e.downcast_ref::<std::io::Error>()).any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
