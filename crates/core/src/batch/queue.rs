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
    /// has queued, or the oldest entry waited `GATHER`.
    pub(super) fn ready(&self, leased: usize) -> bool {
        !self.running
            && self
                .waiting
                .front()
                .is_some_and(|oldest| self.waiting.len() >= leased || oldest.since.elapsed() >= GATHER)
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
