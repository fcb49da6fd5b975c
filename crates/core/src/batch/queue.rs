//! The queue of shared steps: the tokens members handed in, which of them the next step takes,
//! and the outcomes of finished steps (see `step.rs` for how it is used).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::llama::Token;
use crate::util::abort::AbortState;
use crate::util::error::Error;

/// The longest a step waits for members inside a request to queue their tokens.
pub(super) const GATHER: Duration = Duration::from_millis(10);

/// Tokens queued for the next steps, and the outcomes of finished ones.
#[derive(Default)]
pub(super) struct Queue {
    pub(super) waiting: VecDeque<Queued>,
    pub(super) done: HashMap<u64, Done>,
    pub(super) next_ticket: u64,
    /// Whether a step is being evaluated now.
    pub(super) running: bool,
    /// When the last step ended: members that were in it need a moment to sample and queue
    /// again, and the wait for them counts from here.
    pub(super) last_step_end: Option<Instant>,
}

/// One member's tokens, waiting for steps.
pub(super) struct Queued {
    pub(super) ticket: u64,
    pub(super) seq: i32,
    pub(super) tokens: Vec<Token>,
    pub(super) first_pos: i32,
    /// Tokens already evaluated by earlier steps.
    pub(super) taken: usize,
    pub(super) logits_last: bool,
    pub(super) abort: Arc<AbortState>,
    /// The member's logits buffer, filled by the step that evaluates the last token.
    pub(super) logits: Vec<f32>,
    pub(super) since: Instant,
    /// Whether the running step carries some of these tokens.
    pub(super) in_step: bool,
}

pub(super) struct Done {
    pub(super) outcome: std::result::Result<i32, Error>,
    pub(super) logits: Vec<f32>,
    pub(super) together: u32,
}

/// What one step takes from a queued entry.
pub(super) struct Part {
    pub(super) ticket: u64,
    pub(super) seq: i32,
    pub(super) tokens: Vec<Token>,
    pub(super) first_pos: i32,
    /// Whether this part ends the entry (its logits, if wanted, come from this step).
    pub(super) last: bool,
    pub(super) logits_last: bool,
    pub(super) logits: Option<Vec<f32>>,
}

impl Queue {
    /// Whether a step should start now: something is queued, and every member inside a request
    /// has queued, or `GATHER` passed since the oldest entry arrived or the last step ended,
    /// whichever is later (entries that waited through a step do not make the members of that
    /// step miss the next one: they would split into cohorts that take turns).
    pub(super) fn ready(&self, leased: usize) -> bool {
        let everyone = !self.running && self.waiting.len() >= leased.max(1);
        everyone || self.gather_left().is_some_and(|left| left.is_zero())
    }

    /// How long the queue still waits for members to queue before it is ready anyway (`None`:
    /// nothing is queued, or a step is running).
    pub(super) fn gather_left(&self) -> Option<Duration> {
        let oldest = self.waiting.front().filter(|_| !self.running)?;
        let from = self.last_step_end.map_or(oldest.since, |end| end.max(oldest.since));
        Some(GATHER.saturating_sub(from.elapsed()))
    }

    /// Takes the next step's parts: every entry's next token first (members generating), then
    /// the rest in arrival order, up to `room` tokens.
    pub(super) fn take(&mut self, mut room: usize) -> Vec<Part> {
        let mut order: Vec<usize> = (0..self.waiting.len()).collect();
        order.sort_by_key(|&i| (self.waiting[i].tokens.len() - self.waiting[i].taken > 1, i));
        let mut parts = Vec::new();
        for i in order {
            if room == 0 {
                break;
            }
            let q = &mut self.waiting[i];
            let n = (q.tokens.len() - q.taken).min(room);
            let last = q.taken + n == q.tokens.len();
            parts.push(Part {
                ticket: q.ticket,
                seq: q.seq,
                tokens: q.tokens[q.taken..q.taken + n].to_vec(),
                first_pos: q.first_pos + q.taken as i32,
                last,
                logits_last: q.logits_last && last,
                logits: (q.logits_last && last).then(|| std::mem::take(&mut q.logits)),
            });
            q.in_step = true;
            room -= n;
        }
        parts
    }
}
