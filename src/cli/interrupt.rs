//! Ctrl-C (SIGINT) and SIGTERM for `synth`, `retrieve`, `eval run`'s generation, JSONL `generate` and
//! `check --batch` ([`unitcoder::sandbox::Sandbox::run_batch_until`]):
//! the first one sets a flag that the library's run loop (or `generate`'s loop over groups) checks
//! ([`unitcoder::pipeline::synth::SynthSettings::cancel`],
//! [`unitcoder::pipeline::retrieve::RetrieveSettings::cancel`], the `cancel` argument of
//! [`unitcoder::eval::run::generate_into`]), so the run stops starting work,
//! and the command then saves its statistics and says what it kept; a second one exits at once
//! (the record journals are safe to stop anywhere, as after a `kill -9`). The same signal again
//! within a second is not a second one: GNU `timeout` and process supervisors send it to the process
//! and then to its group, and the orderly stop would be lost to their echo.
//!
//! Plain `sigaction` through libc (already a dependency) rather than a crate: the handler only
//! stores to atomics and calls `write` and `_exit`, which are async-signal-safe.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The flag the library watches; set by the first signal.
static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
/// The first signal received (0: none yet).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// When the first signal came, in nanoseconds of the monotonic clock.
static FIRST_AT: AtomicI64 = AtomicI64::new(0);
/// The same signal within this long of the first is its echo, not a second interrupt.
const ECHO_NS: i64 = 1_000_000_000;

/// Written by the handler itself, at once: the run may take a while to stop (a model call in flight
/// finishes), and a user pressing Ctrl-C should see that it was heard.
const HEARD: &[u8] = b"\nunitcoder: interrupted; stopping after the work in progress and keeping what is finished \
(interrupt again, a second from now or later, to stop at once)\n";

/// The monotonic clock in nanoseconds (`clock_gettime` is async-signal-safe).
#[allow(clippy::unnecessary_cast)] // `time_t` and `c_long` are 32 bits on some targets
fn now_ns() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64
}

/// Set by [`exit_on_signal`]: the message a signal writes before it ends the process (a leaked
/// buffer, so the handler never sees it freed), and its length.
static EXIT_MESSAGE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static EXIT_MESSAGE_LEN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    let message = EXIT_MESSAGE.load(Ordering::SeqCst);
    if !message.is_null() {
        // SAFETY: the buffer was leaked by `exit_on_signal` and is never freed; `write` and `_exit`
        // are async-signal-safe.
        unsafe {
            libc::write(2, message.cast(), EXIT_MESSAGE_LEN.load(Ordering::SeqCst));
            libc::_exit(128 + signal)
        }
    }
    let now = now_ns();
    if let Err(first) = SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst) {
        if first == signal && now - FIRST_AT.load(Ordering::SeqCst) < ECHO_NS {
            return;
        }
        // SAFETY: `_exit` is async-signal-safe; finished work is already on disk (fsync'd journals).
        unsafe { libc::_exit(128 + signal) }
    }
    FIRST_AT.store(now, Ordering::SeqCst);
    if let Some(flag) = FLAG.get() {
        flag.store(true, Ordering::SeqCst);
    }
    // SAFETY: `write` is async-signal-safe and the buffer is a static. A failed write is ignored:
    // nothing can be done about it here.
    unsafe {
        libc::write(2, HEARD.as_ptr().cast(), HEARD.len());
    }
}

/// Points `signal` at [`on_signal`], unless the process was started ignoring it (`nohup`, a
/// background job of a non-interactive shell), which stays ignored as the user who set that wants.
fn catch(signal: libc::c_int) -> anyhow::Result<()> {
    // SAFETY: plain sigaction calls with zeroed, then filled, structs; the handler is
    // async-signal-safe (see `on_signal`).
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut old) != 0 {
            anyhow::bail!("reading the action of signal {signal}: {}", std::io::Error::last_os_error());
        }
        if old.sa_sigaction == libc::SIG_IGN {
            return Ok(());
        }
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // Restarted system calls: a read or wait elsewhere in the process does not fail with
        // EINTR because of the signal.
        act.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut act.sa_mask);
        if libc::sigaction(signal, &act, std::ptr::null_mut()) != 0 {
            anyhow::bail!("catching signal {signal}: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// SIGINT and SIGTERM caught, until [`exit_on_signal`] or for the rest of the process.
pub struct Interrupt {
    flag: Arc<AtomicBool>,
}

impl Interrupt {
    /// Installs the handlers. A signal that the process was started ignoring (`nohup`, a
    /// background job of a non-interactive shell) stays ignored, as the user who set that wants.
    pub fn install() -> anyhow::Result<Interrupt> {
        let flag = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))).clone();
        for signal in [libc::SIGINT, libc::SIGTERM] {
            catch(signal)?;
        }
        Ok(Interrupt { flag })
    }

    /// The flag the first signal sets, for the library.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    /// The first signal received, if any.
    pub fn signal(&self) -> Option<i32> {
        Some(SIGNAL.load(Ordering::SeqCst)).filter(|&s| s != 0)
    }
}

/// For a part of a command that has no place to stop in order (scoring: a rerun scores every sample
/// again): SIGINT and SIGTERM end the process at once, as by default, but first say `message` (what
/// is kept and how to go on) instead of leaving the user with a bare exit status. A signal the
/// process was started ignoring stays ignored.
pub fn exit_on_signal(message: &str) -> anyhow::Result<()> {
    let text: &'static mut [u8] = format!("\nunitcoder: {message}\n").into_bytes().leak();
    EXIT_MESSAGE_LEN.store(text.len(), Ordering::SeqCst);
    EXIT_MESSAGE.store(text.as_mut_ptr(), Ordering::SeqCst);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        catch(signal)?;
    }
    Ok(())
}

/// The signal's name for messages.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
