//! The record of what the session's KV cache holds, item by item, so that a request evaluates
//! only what the cache does not already hold.

use crate::llama::Token;

/// One entry of the KV cache: a text token, or a media item known by its content id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Token(Token),
    Media { id: String, n_pos: i32 },
}

impl Item {
    /// Positions the item takes.
    pub fn n_pos(&self) -> i32 {
        match self {
            Item::Token(_) => 1,
            Item::Media { n_pos, .. } => *n_pos,
        }
    }
}

/// The items in the KV cache (sequence 0), in order, and the logits that followed a prefix of
/// them, kept so that repeating a request samples from the very same numbers.
#[derive(Clone, Default)]
pub struct CacheRecord {
    items: Vec<Item>,
    n_pos: i32,
    prompt_logits: Option<(usize, Vec<f32>)>,
}

impl CacheRecord {
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Positions in use.
    pub fn n_pos(&self) -> i32 {
        self.n_pos
    }

    pub fn push(&mut self, item: Item, n_pos_after: i32) {
        self.items.push(item);
        self.n_pos = n_pos_after;
    }

    /// Forgets everything after the first `len` items; returns the position where they end.
    pub fn truncate(&mut self, len: usize) -> i32 {
        self.items.truncate(len);
        self.n_pos = self.items.iter().map(Item::n_pos).sum();
        if self.prompt_logits.as_ref().is_some_and(|(n, _)| *n > len) {
            self.prompt_logits = None;
        }
        self.n_pos
    }

    pub fn clear(&mut self) {
        *self = CacheRecord::default();
    }

    /// Whether the cache holds the media item `id`.
    pub fn holds_media(&self, id: &str) -> bool {
        self.items.iter().any(|item| matches!(item, Item::Media { id: held, .. } if held == id))
    }

    /// How many leading items `request` shares with the cache.
    pub fn common_prefix<'a>(&self, request: impl Iterator<Item = &'a Item>) -> usize {
        self.items.iter().zip(request).take_while(|(a, b)| a == b).count()
    }

    pub fn save_logits(&mut self, logits: Vec<f32>) {
        self.prompt_logits = Some((self.items.len(), logits));
    }

    /// The logits kept after exactly `len` items, if any.
    pub fn logits_after(&self, len: usize) -> Option<&[f32]> {
        self.prompt_logits.as_ref().filter(|(n, _)| *n == len).map(|(_, l)| l.as_slice())
    }

    /// Replaces the contents (after a saved state was loaded).
    pub fn restore(&mut self, items: Vec<Item>) {
        self.clear();
        self.n_pos = items.iter().map(Item::n_pos).sum();
        self.items = items;
    }
}
