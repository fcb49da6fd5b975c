//! The thread that parses and renders chat templates for the whole process, with a time limit
//! for each job.
//!
//! One long-lived thread, not one per render: glibc gives each new thread's allocations a malloc
//! arena of its own, and threads made per create and per request grew a process's resident
//! memory by megabytes over a few hundred sessions. A job that runs past its limit is left to
//! finish on that thread, which is then given up: the next job starts a new one. A job that was
//! still waiting behind it is taken back and sent to the new thread.

use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use crate::util::error::{fail, ErrorKind::*, Result};

/// The render thread's stack: llama.cpp's Jinja engine and JSON Schema converter recurse.
const STACK: usize = 64 << 20;

type Job = Box<dyn FnOnce() + Send>;

/// The render thread's queue, and its number (each new thread gets the next).
static WORKER: Mutex<(u64, Option<mpsc::Sender<Job>>)> = Mutex::new((0, None));

/// Sends `job` to the render thread, starting one when there is none (or it ended); returns the
/// thread's number.
fn submit(job: Job) -> Result<u64> {
    let mut worker = WORKER.lock().unwrap_or_else(|e| e.into_inner());
    let job = match &worker.1 {
        Some(queue) => match queue.send(job) {
            Ok(()) => return Ok(worker.0),
            // The thread ended: a new one.
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    let (queue, jobs) = mpsc::channel::<Job>();
    let started = std::thread::Builder::new().name("mm-chat-render".into()).stack_size(STACK).spawn(move || {
        while let Ok(job) = jobs.recv() {
            job();
        }
    });
    if let Err(e) = started {
        return fail(Internal, format!("could not start the chat template's thread: {e}"));
    }
    if queue.send(job).is_err() {
        return fail(Internal, "the chat template's thread ended at once");
    }
    worker.0 += 1;
    worker.1 = Some(queue);
    Ok(worker.0)
}

/// Gives up render thread `number` (stuck in a job past its limit), if it is still the one.
fn give_up(number: u64) {
    let mut worker = WORKER.lock().unwrap_or_else(|e| e.into_inner());
    if worker.0 == number {
        worker.1 = None;
    }
}

/// What a job left: nothing yet, or its result (or its panic, raised again on the waiting
/// thread: a job that panicked must not leave its caller waiting).
type Outcome<T> = Arc<(Mutex<Option<std::thread::Result<T>>>, Condvar)>;

/// Runs `f` on the render thread and waits `limit` for it. `Ok(Some(_))`: its result.
/// `Ok(None)`: it started and ran past the limit (it goes on, on a thread given up). A job still
/// waiting at the limit (behind another one's overrun) is taken back and sent once more, to a new
/// thread.
pub fn run<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Result<Option<T>> {
    run_job(limit, Box::new(f), false)
}

/// Runs `f` on the render thread, waiting until it has run, however long it takes once it has
/// started (a job still waiting at `limit`, behind another one's overrun, is taken back and sent
/// to a new thread). It never runs after this returns, so `f` may borrow.
pub(super) fn run_to_end<'f, T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'f) -> Result<T> {
    let job: Box<dyn FnOnce() -> T + Send + 'f> = Box::new(f);
    // SAFETY: only the lifetime changes. `run_job` with `to_end` returns once the job has run or
    // was taken back where it waited (a job taken back never runs), so nothing `f` borrows is
    // used after this returns.
    let job: Box<dyn FnOnce() -> T + Send + 'static> = unsafe { std::mem::transmute(job) };
    match run_job(limit, job, true)? {
        Some(done) => Ok(done),
        None => fail(Internal, "the chat template's thread did not run a job it was waited for"),
    }
}

/// [`run`], and with `to_end`, waiting without a limit once the job has started.
fn run_job<T: Send + 'static>(
    limit: Duration,
    f: Box<dyn FnOnce() -> T + Send + 'static>,
    to_end: bool,
) -> Result<Option<T>> {
    let task = Arc::new(Mutex::new(Some(f)));
    // A mutex and a condition variable, not a channel: a channel's wait makes the calling thread
    // allocate its own std handle, which valgrind reports as possibly lost at exit.
    let outcome: Outcome<T> = Arc::new((Mutex::new(None), Condvar::new()));
    for _ in 0..2 {
        let (taken, filled) = (task.clone(), outcome.clone());
        let number = submit(Box::new(move || {
            let Some(f) = taken.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let (value, ready) = &*filled;
            *value.lock().unwrap_or_else(|e| e.into_inner()) = Some(done);
            ready.notify_one();
        }))?;
        let (value, ready) = &*outcome;
        let mut waited = ready
            .wait_timeout_while(value.lock().unwrap_or_else(|e| e.into_inner()), limit, |v| v.is_none())
            .unwrap_or_else(|e| e.into_inner());
        if let Some(done) = waited.0.take() {
            return Ok(Some(done.unwrap_or_else(|panic| std::panic::resume_unwind(panic))));
        }
        drop(waited);
        let started = task.lock().unwrap_or_else(|e| e.into_inner()).is_none();
        if started && to_end {
            let mut waited = ready
                .wait_while(value.lock().unwrap_or_else(|e| e.into_inner()), |v| v.is_none())
                .unwrap_or_else(|e| e.into_inner());
            return Ok(waited.take().map(|done| done.unwrap_or_else(|panic| std::panic::resume_unwind(panic))));
        }
        give_up(number);
        if started {
            return Ok(None);
        }
        // Not started: it waited behind a job that overran, and goes to the new thread.
    }
    // Taken back twice: it never runs.
    task.lock().unwrap_or_else(|e| e.into_inner()).take();
    fail(InvalidArgument, "the chat template's thread stayed busy with other renders past the limit twice")
}
