//! The `unitcoder` command-line tool. Argument parsing, progress bars and error reporting live here;
//! the work itself is in the library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fixed_mmap_threshold();
    // Exit codes: 0 success, 1 the work ran but found failures, 2 usage or internal error
    // (clap itself exits 2 on usage errors), 128 + the signal for a run stopped by SIGINT/SIGTERM.
    match cli::run() {
        Ok(cli::Outcome::Success) => ExitCode::SUCCESS,
        Ok(cli::Outcome::Failures) => ExitCode::from(1),
        // 130 for SIGINT, 143 for SIGTERM: what a shell reports for a process the signal killed.
        Ok(cli::Outcome::Interrupted(signal)) => ExitCode::from((128 + signal).clamp(0, 255) as u8),
        // The reader of our stdout went away (`unitcoder models list | head -1`): nothing is wrong
        // with the work, and there is no one left to tell.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// glibc's malloc raises its mmap threshold to the size of each large block freed (up to 32 MiB);
/// after that the multi-megabyte buffers of tokenizer building, model loading and prefill come from
/// the heap and the threads' arenas, whose freed pages stay resident. That was ~20 MiB of the
/// Qwen2.5-Coder-0.5B model's peak RSS (589 vs 567-571 MiB, 256-token prompt), which has to stay
/// within 1.25x its 491 MB file. A fixed threshold (setting it turns the adjustment off) gives every
/// block of 1 MiB or more a mapping of its own, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fixed_mmap_threshold() {
    // SAFETY: only changes malloc's tuning, first thing in `main`, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().filter_map(|e| e.downcast_ref::<std::io::Error>()).any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
