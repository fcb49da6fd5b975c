//! Shared steps: the members of a group that are evaluating tokens hand them to a queue, and
//! the group's thread ([`Shared::serve`]; for a group of one slot, the member's own thread)
//! evaluates everything queued in one `llama_decode`, then hands each its logits.
//!
//! The queue is ready when every member inside a request has queued its tokens, or `GATHER`
//! after the oldest entry arrived or the last step ended (see `queue.rs`): members that
//! generate arrive at about the same time after each step (each samples its next token
//! meanwhile), so they go together; a member busy elsewhere (encoding an image, in a slow
//! callback) delays the others by `GATHER` at most. A step takes each member's next token
//! first, then prompt tokens in arrival order, up to `n_batch`; a prompt longer than the room
//! left goes in parts, over several steps.

use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use crate::batch::queue::{Done, Queued};
use crate::batch::{Member, Shared, Slots, POLL};
use crate::llama::context::{EVAL_ABORTED, EVAL_NO_SLOT, EVAL_OK};
use crate::llama::Token;
use crate::util::abort::AbortState;
use crate::util::error::Result;
use crate::util::log;

impl Member {
    /// Evaluates `tokens` of this member's conversation at positions `first_pos..` (during a
    /// lease), in steps shared with the other members; with `logits_last`, the logits of the
    /// last one are kept ([`Member::logits`]). Returns llama_decode's code: `EVAL_ABORTED` when
    /// `abort` was cancelled before its tokens were all evaluated.
    pub fn eval(
        &mut self,
        tokens: &[Token],
        first_pos: i32,
        logits_last: bool,
        abort: &Arc<AbortState>,
    ) -> Result<i32> {
        let Some(seq) = self.slot() else { return Ok(EVAL_NO_SLOT) };
        let group = self.group.clone();
        let mut slots = group.slots();
        let ticket = slots.queue.next_ticket;
        slots.queue.next_ticket += 1;
        slots.queue.waiting.push_back(Queued {
            ticket,
            seq: seq as i32,
            tokens: tokens.to_vec(),
            first_pos,
            taken: 0,
            logits_last,
            abort: abort.clone(),
            logits: std::mem::take(&mut self.logits),
            since: Instant::now(),
            in_step: false,
        });
        group.changed.notify_all();
        loop {
            if let Some(done) = slots.queue.done.remove(&ticket) {
                self.logits = done.logits;
                self.most_together = self.most_together.max(done.together);
                return done.outcome;
            }
            if group.worker.is_none() && slots.queue.ready(slots.leased) {
                slots = group.run_step(slots);
                continue;
            }
            let mine = slots.queue.waiting.iter().position(|q| q.ticket == ticket);
            if let Some(i) = mine.filter(|&i| !slots.queue.waiting[i].in_step && abort.is_cancelled()) {
                let q = slots.queue.waiting.remove(i).expect("found above");
                self.logits = q.logits;
                return Ok(EVAL_ABORTED);
            }
            let timeout = slots.queue.gather_left().filter(|t| !t.is_zero()).map_or(POLL, |t| t.min(POLL));
            slots = group.wait(slots, timeout);
        }
    }
}

impl Shared {
    /// The loop of a group's decode thread (groups of more than one slot): runs each step as
    /// soon as the queue is ready, until the group is dropped.
    pub(super) fn serve(&self) {
        let mut slots = self.slots();
        while !slots.shutdown {
            if slots.queue.ready(slots.leased) {
                slots = self.run_step(slots);
                continue;
            }
            slots = match slots.queue.gather_left() {
                Some(left) => self.wait(slots, left),
                None => self.changed.wait(slots).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }

    /// Evaluates one step of what is queued: takes the parts (with the slot lock held), then
    /// evaluates them with the context's lock alone (a member evaluating media holds it; the
    /// others can still queue and cancel meanwhile), then posts each finished entry's outcome.
    fn run_step<'a>(&'a self, mut slots: MutexGuard<'a, Slots>) -> MutexGuard<'a, Slots> {
        slots.queue.running = true;
        let mut parts = slots.queue.take(self.n_batch as usize);
        let calls: Vec<Arc<AbortState>> =
            slots.queue.waiting.iter().filter(|q| q.in_step).map(|q| q.abort.clone()).collect();
        drop(slots);

        let together = parts.len() as u32;
        let mut guard = self.engine();
        self.abort.set(calls);
        let engine = &mut *guard;
        engine.batch.clear();
        let indices: Vec<usize> =
            parts.iter().map(|p| engine.batch.push(&p.tokens, p.first_pos, p.seq, p.logits_last)).collect();
        let mut outcome = log::in_step(&self.abort, || engine.ctx.eval(&mut engine.batch));
        self.abort.set(Vec::new());
        if let Ok(EVAL_OK) = outcome {
            for (part, &index) in parts.iter_mut().zip(&indices) {
                if let Some(logits) = part.logits.as_mut() {
                    if let Err(e) = engine.ctx.copy_logits(index as i32, self.n_vocab, logits) {
                        outcome = Err(e);
                    }
                }
            }
        }
        drop(guard);

        let mut slots = self.slots();
        for part in parts {
            let Some(i) = slots.queue.waiting.iter().position(|q| q.ticket == part.ticket) else { continue };
            let q = &mut slots.queue.waiting[i];
            q.in_step = false;
            q.taken += part.tokens.len();
            let failed = !matches!(outcome, Ok(EVAL_OK));
            if part.last || failed {
                let q = slots.queue.waiting.remove(i).expect("found above");
                let logits = part.logits.unwrap_or(q.logits);
                slots.queue.done.insert(part.ticket, Done { outcome: outcome.clone(), logits, together });
            }
        }
        slots.queue.running = false;
        slots.queue.last_step_end = Some(Instant::now());
        self.changed.notify_all();
        slots
    }
}
