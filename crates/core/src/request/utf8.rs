//! Keeping grammar-constrained answers valid UTF-8. llama.cpp's grammar decodes token bytes
//! leniently: it accepts overlong forms, surrogates and lead bytes F5 to FF as characters. The
//! text stream turns such bytes into U+FFFD, one per byte, so a string the grammar counted as
//! 12 characters could reach the caller longer (a JSON Schema's `maxLength` broken). While a
//! grammar is active, tokens that would make the answer invalid UTF-8 are ruled out before the
//! grammar sees them.

use crate::llama::{Model, Token};
use crate::util::error::Result;

/// The text of every token of a vocabulary, as generation prints it.
pub(crate) struct Utf8Guard {
    bytes: Vec<u8>,
    /// Token `t`'s text is `bytes[ends[t - 1]..ends[t]]` (from 0 for token 0).
    ends: Vec<usize>,
    /// Whether token `t`'s text, after a complete character, keeps the text valid UTF-8 (a
    /// character it leaves unfinished may still be finished validly).
    fits_alone: Vec<bool>,
    /// Reused by `keeps_valid`.
    scratch: Vec<u8>,
}

impl Utf8Guard {
    pub(crate) fn of(model: &Model) -> Result<Utf8Guard> {
        let (mut bytes, mut ends, mut fits_alone) = (Vec::new(), Vec::new(), Vec::new());
        let mut piece = Vec::new();
        for token in 0..model.n_vocab() {
            model.token_piece(token as Token, &mut piece)?;
            fits_alone.push(valid_so_far(&piece));
            bytes.extend_from_slice(&piece);
            ends.push(bytes.len());
        }
        Ok(Utf8Guard { bytes, ends, fits_alone, scratch: Vec::new() })
    }

    /// Whether `token` keeps valid UTF-8 a text that ends with `unfinished`, the bytes of a
    /// character not yet complete (empty after a complete one).
    pub(crate) fn keeps_valid(&mut self, unfinished: &[u8], token: usize) -> bool {
        if unfinished.is_empty() {
            return self.fits_alone[token];
        }
        let start = if token == 0 { 0 } else { self.ends[token - 1] };
        self.scratch.clear();
        self.scratch.extend_from_slice(unfinished);
        self.scratch.extend_from_slice(&self.bytes[start..self.ends[token]]);
        valid_so_far(&self.scratch)
    }
}

/// Whether `bytes` is valid UTF-8, except perhaps for an unfinished character at the end.
fn valid_so_far(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::valid_so_far;

    #[test]
    fn unfinished_characters_are_valid_so_far_and_invalid_bytes_are_not() {
        assert!(valid_so_far(b"abc"));
        assert!(valid_so_far("é".as_bytes()));
        assert!(valid_so_far(&"€".as_bytes()[..2]), "an unfinished character");
        assert!(!valid_so_far(b"\xC0\x80"), "an overlong form");
        assert!(!valid_so_far(b"\xED\xA0\x80"), "a surrogate");
        assert!(!valid_so_far(b"\xF8"), "a lead byte beyond F4");
        assert!(!valid_so_far(b"\x80"), "a continuation byte without a lead");
        assert!(!valid_so_far(b"\xE2\x82A"), "a character cut short");
    }
}
