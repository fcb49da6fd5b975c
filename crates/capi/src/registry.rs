//! Live sessions, reached through handles that are checked, never dereferenced.
//!
//! A handle packs a slot index and the slot's generation into a pointer-sized value. Destroying
//! a session bumps the generation, so a stale handle, a double destroy or a made-up pointer is
//! answered with `MM_ERR_INVALID_HANDLE`. Each session sits behind its own mutex: calls on one
//! session run one at a time, and destroy first closes the session (the call in progress is
//! cancelled, calls still waiting are refused), then waits for that call to end before it frees
//! anything.
//!
//! Two things would otherwise deadlock the caller, and are refused instead:
//! - a call on a session from inside a callback of a call on that same session, on the same
//!   thread (the session's lock is held by the call below it): `MM_ERR_BUSY`;
//! - any call in a child process forked after this process created sessions (a lock may have
//!   been held by a thread that does not exist in the child): `MM_ERR_FORKED`.

use std::cell::RefCell;
use std::ffi::CString;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mm_core::{AbortState, Session};

use crate::status::{fail, mm_status::*, Result};

/// A registered session, with the state other threads need to reach it while a call runs.
pub struct Entry {
    /// Cancels the running call (`mm_session_cancel`) or every call (destroy).
    pub abort: Arc<AbortState>,
    /// The session's media marker, handed out as a C string that lives as long as the handle.
    pub marker: CString,
    session: Mutex<Option<Session>>,
}

impl Entry {
    /// Waits for the session's current call to end, then locks it; `None` once destroyed.
    pub fn lock(&self) -> MutexGuard<'_, Option<Session>> {
        self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct Slot {
    generation: usize,
    entry: Option<Arc<Entry>>,
}

struct Registry {
    slots: Vec<Slot>,
    free: Vec<usize>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { slots: Vec::new(), free: Vec::new() });

/// The process that created the first session (0: none yet).
static OWNER_PID: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// The handles this thread is inside a call on, innermost last.
    static IN_CALL: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Fails in a child process forked after this library created sessions in its parent: the
/// child has a copy of every lock, possibly held by threads it does not have.
pub fn check_process() -> Result<()> {
    let owner = OWNER_PID.load(Ordering::Relaxed);
    if owner != 0 && owner != std::process::id() {
        return fail(
            MM_ERR_FORKED,
            format!("this process was forked from process {owner}, which had created sessions: sessions belong to the process that created them, and a forked child cannot use mm-session (fork before creating sessions, or exec)"),
        );
    }
    Ok(())
}

const SHIFT: u32 = usize::BITS / 2;
const LOW_MASK: usize = (1 << SHIFT) - 1;

fn registry() -> Result<MutexGuard<'static, Registry>> {
    check_process()?;
    Ok(REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// Whether this thread is inside a call on `handle` (so a new call on it would wait for itself).
pub fn in_call(handle: usize) -> bool {
    IN_CALL.with(|c| c.borrow().contains(&handle))
}

/// Marks this thread as inside a call on a handle until dropped.
pub struct CallMark(usize);

impl CallMark {
    /// Marks the call, or fails with `MM_ERR_BUSY` when this thread is already inside one on
    /// the same handle: a callback calling back into its own session.
    pub fn enter(handle: usize) -> Result<CallMark> {
        if in_call(handle) {
            return busy();
        }
        IN_CALL.with(|c| c.borrow_mut().push(handle));
        Ok(CallMark(handle))
    }
}

impl Drop for CallMark {
    fn drop(&mut self) {
        IN_CALL.with(|c| {
            let mut c = c.borrow_mut();
            if let Some(i) = c.iter().rposition(|&h| h == self.0) {
                c.remove(i);
            }
        });
    }
}

/// The refusal of a call made from inside a callback of the same session.
pub fn busy<T>() -> Result<T> {
    fail(MM_ERR_BUSY, "called from inside a callback of a call on the same session, which holds the session until the callback returns (only mm_session_cancel may be called there)")
}

fn encode(index: usize, generation: usize) -> usize {
    (generation << SHIFT) | (index + 1)
}

fn decode(handle: usize) -> Option<(usize, usize)> {
    let low = handle & LOW_MASK;
    (low != 0).then(|| (low - 1, handle >> SHIFT))
}

/// Stores a session and returns its handle.
pub fn insert(session: Session, marker: CString) -> Result<usize> {
    let entry = Arc::new(Entry { abort: session.abort_state(), marker, session: Mutex::new(Some(session)) });
    let mut reg = registry()?;
    let _ = OWNER_PID.compare_exchange(0, std::process::id(), Ordering::Relaxed, Ordering::Relaxed);
    let index = match reg.free.pop() {
        Some(i) => i,
        None => {
            reg.slots.push(Slot { generation: 1, entry: None });
            reg.slots.len() - 1
        }
    };
    assert!(index < LOW_MASK, "session registry is full");
    reg.slots[index].entry = Some(entry);
    Ok(encode(index, reg.slots[index].generation))
}

fn invalid<T>(handle: usize) -> Result<T> {
    fail(
        MM_ERR_INVALID_HANDLE,
        format!("session handle {handle:#x} is not a live session (never created, or destroyed)"),
    )
}

/// The session behind `handle`.
pub fn get(handle: usize) -> Result<Arc<Entry>> {
    let reg = registry()?;
    match decode(handle).and_then(|(i, g)| reg.slots.get(i).filter(|s| s.generation == g)) {
        Some(Slot { entry: Some(entry), .. }) => Ok(entry.clone()),
        _ => invalid(handle),
    }
}

/// Unregisters `handle` (it is invalid from now on) and returns its session's entry.
pub fn remove(handle: usize) -> Result<Arc<Entry>> {
    let mut reg = registry()?;
    let Some((index, generation)) = decode(handle) else { return invalid(handle) };
    let Some(slot) = reg.slots.get_mut(index).filter(|s| s.generation == generation && s.entry.is_some()) else {
        return invalid(handle);
    };
    let entry = slot.entry.take().expect("checked above");
    slot.generation = (slot.generation + 1) & (usize::MAX >> SHIFT);
    if slot.generation == 0 {
        slot.generation = 1;
    }
    reg.free.push(index);
    Ok(entry)
}
