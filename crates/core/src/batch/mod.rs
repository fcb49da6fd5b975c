//! Sessions that decode together: one llama.cpp context ([`Group`]) holds the KV caches of up
//! to `n_slots` sessions, one sequence (slot) each, and evaluates their tokens in shared steps
//! (`step.rs`): each `llama_decode` carries the next token of every session that is generating
//! and, as room in the batch allows, chunks of prompts being evaluated.
//!
//! A session is a [`Member`] of its group. A request holds a [`Lease`] on a slot for as long as
//! it runs. Between requests a session's KV cache stays in its slot until a request of another
//! member needs a slot and none is free: the idle slot used longest ago is then lent, its KV
//! cache moved to host memory (`llama_state_seq_get_data`) and put back in a free slot at the
//! owner's next request. So a group takes any number of forks; at most `n_slots` requests run
//! at once, and a request that found every slot busy waits for one (`Lease::waited_ms`).
//!
//! Every use of the context holds its lock (`Shared::engine`); the slot table and the queue of
//! steps have their own (`Shared::slots`), taken first when both are needed, never the other
//! way round. A group of more than one slot runs its steps on a thread of its own.

mod queue;
mod step;

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::llama::load::ContextSettings;
use crate::llama::memory::{context_bytes, ContextBytes};
use crate::llama::{Chunks, Context, Projector, TokenBatch};
use crate::util::abort::{AbortState, StepAbort};
use crate::util::error::{fail, ErrorKind::*, Result};

use queue::Queue;

/// How often a thread waiting for a slot or a step looks at its cancel state.
const POLL: Duration = Duration::from_millis(10);

/// The context and the batch its steps are built in: used by one thread at a time.
struct Engine {
    ctx: Context,
    batch: TokenBatch,
}

/// One context shared by the sessions of a model that decode together, with, for more than
/// one slot, the thread that runs its steps ([`Shared::serve`]): llama.cpp computes a step
/// markedly more slowly when the thread that calls `llama_decode` changes from step to step
/// (docs/conversations.md, "Decoding together", has the figures). A group of one slot runs its
/// steps on the caller's thread, as a session always did. Dropping the group stops the thread,
/// then frees the context.
pub struct Group {
    shared: Arc<Shared>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl std::ops::Deref for Group {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.shared.slots().shutdown = true;
        self.shared.changed.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// What a group's members and its thread share. Fields drop in order: the context before the
/// cancel state its abort callback reads.
pub struct Shared {
    engine: Mutex<Engine>,
    abort: Arc<StepAbort>,
    settings: ContextSettings,
    n_vocab: usize,
    /// The context's sizes: positions per slot, tokens per step and per graph step.
    n_ctx: u32,
    n_batch: u32,
    n_ubatch: u32,
    /// The state of a sequence that holds nothing, as llama.cpp saves it (for members with no
    /// slot and no saved KV cache).
    empty_state: Vec<u8>,
    slots: Mutex<Slots>,
    changed: Condvar,
}

/// Who holds which slot, the members' KV caches that wait in host memory, and the steps.
struct Slots {
    /// The member whose KV cache each slot holds.
    owner: Vec<Option<u64>>,
    members: HashMap<u64, MemberSlot>,
    /// Members inside a request (holding a lease).
    leased: usize,
    next_member: u64,
    /// Advances at each lease: the least recently used idle slot is lent first.
    clock: u64,
    queue: Queue,
    /// Set when the group is dropped: its thread ends.
    shutdown: bool,
}

#[derive(Default)]
struct MemberSlot {
    slot: Option<usize>,
    /// The KV cache of a member whose slot was lent, as llama.cpp saved it.
    parked: Option<Vec<u8>>,
    /// Whether the member's KV cache was lost while its slot was lent (it could not be parked,
    /// or llama.cpp refused it back): its next lease says so, and the session starts over.
    lost: bool,
    leased: bool,
    last_used: u64,
}

impl Group {
    /// A group over `ctx` (made with `settings`, whose abort callback reads `abort`), with one
    /// slot per sequence of the context, and its thread when it has more than one.
    pub fn new(ctx: Context, abort: Arc<StepAbort>, settings: ContextSettings, n_vocab: usize) -> Result<Arc<Group>> {
        let shared = Arc::new(Shared::new(ctx, abort, settings, n_vocab)?);
        let worker = if settings.n_seq > 1 {
            let serving = shared.clone();
            let spawned = std::thread::Builder::new().name("mm-batch".into()).spawn(move || serving.serve());
            Some(spawned.or_else(|e| fail(ContextCreate, format!("could not start the thread of shared steps: {e}")))?)
        } else {
            None
        };
        Ok(Arc::new(Group { shared, worker }))
    }
}

impl Shared {
    fn new(ctx: Context, abort: Arc<StepAbort>, settings: ContextSettings, n_vocab: usize) -> Result<Shared> {
        let empty_state = ctx.sequence_state(0)?;
        let n_slots = ctx.n_seq() as usize;
        Ok(Shared {
            n_ctx: ctx.n_ctx() / ctx.n_seq(),
            n_batch: ctx.n_batch(),
            n_ubatch: ctx.n_ubatch(),
            engine: Mutex::new(Engine { batch: TokenBatch::new(ctx.n_batch() as usize), ctx }),
            abort,
            settings,
            n_vocab,
            empty_state,
            slots: Mutex::new(Slots {
                owner: vec![None; n_slots],
                members: HashMap::new(),
                leased: 0,
                next_member: 0,
                clock: 0,
                queue: Queue::default(),
                shutdown: false,
            }),
            changed: Condvar::new(),
        })
    }

    fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits on the group's condition (something changed, or `POLL` passed).
    fn wait<'a>(&self, slots: MutexGuard<'a, Slots>, timeout: Duration) -> MutexGuard<'a, Slots> {
        self.changed.wait_timeout(slots, timeout).unwrap_or_else(|p| p.into_inner()).0
    }

    /// The settings the context was made with (`n_ctx` per session).
    pub fn settings(&self) -> &ContextSettings {
        &self.settings
    }

    pub fn n_slots(&self) -> u32 {
        self.settings.n_seq
    }

    /// Positions each session's conversation may take.
    pub fn n_ctx(&self) -> u32 {
        self.n_ctx
    }

    pub fn n_batch(&self) -> u32 {
        self.n_batch
    }

    pub fn n_ubatch(&self) -> u32 {
        self.n_ubatch
    }

    /// How many sessions use the group.
    pub fn members(&self) -> usize {
        self.slots().members.len()
    }

    /// What the context holds (all slots together), by use and place.
    pub fn bytes(&self) -> Option<ContextBytes> {
        context_bytes(&self.engine().ctx)
    }
}

/// A session's place in its group: its slot or parked KV cache, and the logits of its last
/// evaluated position. Leaving the group (drop) empties its slot for the others.
pub struct Member {
    group: Arc<Group>,
    id: u64,
    logits: Vec<f32>,
    /// The most sessions one step of the current request carried (its own included).
    most_together: u32,
}

impl Member {
    /// Joins `group`, taking a free slot if there is one, with `state` (a saved KV cache) as
    /// its conversation, if given.
    pub fn join(group: &Arc<Group>, state: Option<Vec<u8>>) -> Result<Member> {
        let mut slots = group.slots();
        let id = slots.next_member;
        slots.next_member += 1;
        let free = slots.owner.iter().position(Option::is_none);
        let mut member = MemberSlot { parked: state, ..Default::default() };
        if let Some(slot) = free {
            group.take_slot(&mut member, slot, id, &mut slots);
            if member.lost {
                slots.owner[slot] = None;
                return fail(Internal, "llama.cpp refused the KV cache given to the new session");
            }
        }
        slots.members.insert(id, member);
        Ok(Member { group: group.clone(), id, logits: Vec::new(), most_together: 0 })
    }

    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }

    /// Waits until the member holds a slot (taking a free one, or lending the idle one used
    /// longest ago) and keeps it for the request. Fails with `Cancelled` when `abort` is.
    pub fn lease(&mut self, abort: &AbortState) -> Result<Lease> {
        let started = Instant::now();
        let group = &self.group;
        let mut slots = group.slots();
        let mut waited = false;
        loop {
            if abort.is_cancelled() {
                return fail(Cancelled, "the call was cancelled while it waited for a slot");
            }
            if slots.members[&self.id].slot.is_some() {
                break;
            }
            if let Some(slot) = slots.owner.iter().position(Option::is_none).or_else(|| group.lend_idle(&mut slots)) {
                let mut me = slots.members.remove(&self.id).expect("a member is in its group");
                group.take_slot(&mut me, slot, self.id, &mut slots);
                slots.members.insert(self.id, me);
                break;
            }
            waited = true;
            slots = group.wait(slots, POLL);
        }
        slots.clock += 1;
        let clock = slots.clock;
        let me = slots.members.get_mut(&self.id).expect("a member is in its group");
        me.leased = true;
        me.last_used = clock;
        let kv_lost = std::mem::take(&mut me.lost);
        slots.leased += 1;
        self.most_together = 0;
        let waited_ms = if waited { started.elapsed().as_secs_f64() * 1e3 } else { 0.0 };
        Ok(Lease { group: group.clone(), id: self.id, waited_ms, kv_lost })
    }

    /// The slot the member holds (during a lease it always has one).
    fn slot(&self) -> Option<usize> {
        self.group.slots().members[&self.id].slot
    }

    /// The logits of the member's last position evaluated with logits.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// The most sessions one step of the current request carried (its own included).
    pub fn most_together(&self) -> u32 {
        self.most_together
    }

    /// Removes positions `from..` of the member's KV cache (during a lease).
    pub fn forget_from(&self, from: i32) {
        if let Some(slot) = self.slot() {
            self.group.engine().ctx.forget_from(slot as i32, from);
        }
    }

    /// Empties the member's KV cache: the whole context when the member is its only slot's
    /// (as a session of its own always did: this also drops cells that a corrupt saved state
    /// gave negative positions, which removing the sequence's positions leaves behind, and
    /// which made later loads fail), else its sequence.
    pub fn clear(&self) {
        let mut slots = self.group.slots();
        let me = slots.members.get_mut(&self.id).expect("a member is in its group");
        me.parked = None;
        match me.slot {
            Some(_) if self.group.settings.n_seq == 1 => self.group.engine().ctx.clear_memory(),
            Some(slot) => self.group.engine().ctx.forget_from(slot as i32, 0),
            None => {}
        }
    }

    /// The member's KV cache as llama.cpp saves one sequence.
    pub fn state(&self) -> Result<Vec<u8>> {
        let slots = self.group.slots();
        let me = &slots.members[&self.id];
        match (me.slot, &me.parked) {
            (Some(slot), _) => self.group.engine().ctx.sequence_state(slot as i32),
            (None, Some(parked)) => Ok(parked.clone()),
            (None, None) => Ok(self.group.empty_state.clone()),
        }
    }

    /// Replaces the member's KV cache with `state` (during a lease); false when llama.cpp
    /// refuses it.
    pub fn set_state(&self, state: &[u8]) -> bool {
        self.slot().is_some_and(|slot| self.group.engine().ctx.set_sequence_state(slot as i32, state))
    }

    /// Bytes of the member's KV cache parked in host memory while its slot is lent.
    pub fn parked_bytes(&self) -> u64 {
        self.group.slots().members[&self.id].parked.as_ref().map_or(0, |p| p.len() as u64)
    }

    /// Encodes media chunk `index` and evaluates its embeddings at `n_past` in the member's
    /// slot (during a lease), alone: the other members' steps wait for it. With `logits_last`
    /// the logits of its last position are kept ([`Member::logits`]). Returns mtmd's status
    /// and the position after the media.
    pub fn eval_media(
        &mut self,
        projector: &Projector,
        abort: &Arc<AbortState>,
        chunks: &Chunks,
        index: usize,
        n_past: i32,
        logits_last: bool,
    ) -> Result<(i32, i32)> {
        let Some(slot) = self.slot() else { return fail(Internal, "media evaluated outside a request") };
        let engine = self.group.engine();
        self.group.abort.set(vec![abort.clone()]);
        let result = projector.eval_chunk(abort, &engine.ctx, chunks, index, (slot as i32, n_past), logits_last);
        self.group.abort.set(Vec::new());
        let (status, new_n_past) = result?;
        if status == 0 && logits_last {
            engine.ctx.copy_logits(-1, self.group.n_vocab, &mut self.logits)?;
        }
        Ok((status, new_n_past))
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut slots = self.group.slots();
        if let Some(me) = slots.members.remove(&self.id) {
            if let Some(slot) = me.slot {
                self.group.engine().ctx.forget_from(slot as i32, 0);
                slots.owner[slot] = None;
            }
        }
        drop(slots);
        self.group.changed.notify_all();
    }
}

impl Shared {
    /// The idle slot used longest ago, its KV cache parked in its owner's host memory.
    fn lend_idle(&self, slots: &mut Slots) -> Option<usize> {
        let (&owner, _) =
            slots.members.iter().filter(|(_, m)| m.slot.is_some() && !m.leased).min_by_key(|(_, m)| m.last_used)?;
        let m = slots.members.get_mut(&owner).expect("found above");
        let slot = m.slot.expect("found above");
        let engine = self.engine();
        // A KV cache that cannot be parked (no memory for it) is dropped: the owner's next
        // lease says so, and its request evaluates its conversation again.
        m.parked = engine.ctx.sequence_state(slot as i32).ok();
        m.lost = m.parked.is_none();
        engine.ctx.forget_from(slot as i32, 0);
        m.slot = None;
        slots.owner[slot] = None;
        Some(slot)
    }

    /// Gives `slot` to member `id`, with its parked KV cache, if any, put back there (when
    /// llama.cpp refuses it, the slot stays empty and the member's cache is marked lost).
    fn take_slot(&self, member: &mut MemberSlot, slot: usize, id: u64, slots: &mut Slots) {
        slots.owner[slot] = Some(id);
        member.slot = Some(slot);
        let Some(parked) = member.parked.take() else { return };
        let engine = self.engine();
        if !engine.ctx.set_sequence_state(slot as i32, &parked) {
            engine.ctx.forget_from(slot as i32, 0);
            member.lost = true;
        }
    }
}

/// A member's hold on its slot for one request: its steps count as expected by the others
/// (see `step.rs`) until it is dropped.
pub struct Lease {
    group: Arc<Group>,
    id: u64,
    waited_ms: f64,
    kv_lost: bool,
}

impl Lease {
    /// How long the request waited for a slot (0 when one was free).
    pub fn waited_ms(&self) -> f64 {
        self.waited_ms
    }

    /// Whether the member's KV cache was lost while its slot was lent: the slot is empty.
    pub fn kv_lost(&self) -> bool {
        self.kv_lost
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut slots = self.group.slots();
        if let Some(me) = slots.members.get_mut(&self.id) {
            me.leased = false;
        }
        slots.leased -= 1;
        drop(slots);
        self.group.changed.notify_all();
    }
}
