//! Live sessions, reached through handles that are checked, never dereferenced.
//!
//! A handle packs a slot index and the slot's generation into a pointer-sized value. Destroying
//! a session bumps the generation, so a stale handle, a double destroy or a made-up pointer is
//! answered with `MM_ERR_INVALID_HANDLE`. Each session sits behind its own mutex: calls on one
//! session run one at a time, and destroy first closes the session (the call in progress is
//! cancelled, calls still waiting are refused), then waits for that call to end before it frees
//! anything.

use std::ffi::CString;
use std::sync::{Arc, Mutex, MutexGuard};

use mm_core::{AbortState, Session};

use crate::status::{fail, mm_status::MM_ERR_INVALID_HANDLE, Result};

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

const SHIFT: u32 = usize::BITS / 2;
const LOW_MASK: usize = (1 << SHIFT) - 1;

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn encode(index: usize, generation: usize) -> usize {
    (generation << SHIFT) | (index + 1)
}

fn decode(handle: usize) -> Option<(usize, usize)> {
    let low = handle & LOW_MASK;
    (low != 0).then(|| (low - 1, handle >> SHIFT))
}

/// Stores a session and returns its handle.
pub fn insert(session: Session, marker: CString) -> usize {
    let entry = Arc::new(Entry { abort: session.abort_state(), marker, session: Mutex::new(Some(session)) });
    let mut reg = registry();
    let index = match reg.free.pop() {
        Some(i) => i,
        None => {
            reg.slots.push(Slot { generation: 1, entry: None });
            reg.slots.len() - 1
        }
    };
    assert!(index < LOW_MASK, "session registry is full");
    reg.slots[index].entry = Some(entry);
    encode(index, reg.slots[index].generation)
}

fn invalid<T>(handle: usize) -> Result<T> {
    fail(MM_ERR_INVALID_HANDLE, format!("session handle {handle:#x} is not a live session (never created, or destroyed)"))
}

/// The session behind `handle`.
pub fn get(handle: usize) -> Result<Arc<Entry>> {
    let reg = registry();
    match decode(handle).and_then(|(i, g)| reg.slots.get(i).filter(|s| s.generation == g)) {
        Some(Slot { entry: Some(entry), .. }) => Ok(entry.clone()),
        _ => invalid(handle),
    }
}

/// Unregisters `handle` (it is invalid from now on) and returns its session's entry.
pub fn remove(handle: usize) -> Result<Arc<Entry>> {
    let mut reg = registry();
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
