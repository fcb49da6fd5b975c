//! Turns generated token pieces into text for the caller: only whole UTF-8 characters are handed
//! out, invalid bytes become U+FFFD, and text that may be the start of a stop string is held
//! back until it is known not to be one.

use crate::session::report::StopReason;

/// Collects the answer and streams it to a callback.
pub struct TextStream<'a> {
    pending: Vec<u8>,
    text: String,
    emitted: usize,
    stopped: bool,
    stops: &'a [String],
    on_text: &'a mut dyn FnMut(&str) -> bool,
}

/// What the caller of `push` should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop(StopReason),
}

impl<'a> TextStream<'a> {
    pub fn new(stops: &'a [String], on_text: &'a mut dyn FnMut(&str) -> bool) -> Self {
        TextStream { pending: Vec::new(), text: String::new(), emitted: 0, stopped: false, stops, on_text }
    }

    /// Adds the bytes of one token.
    pub fn push(&mut self, bytes: &[u8]) -> Flow {
        self.pending.extend_from_slice(bytes);
        let search_from = self.text.len().saturating_sub(self.longest_stop());
        self.release_whole_chars(false);
        if let Some(at) = self.find_stop(search_from) {
            self.text.truncate(at);
            let flow = match self.emit(self.text.len()) {
                Flow::Continue => Flow::Stop(StopReason::StopString),
                stop => stop,
            };
            self.stopped = true;
            return flow;
        }
        let safe = self.text.len() - self.held_back();
        self.emit(safe)
    }

    /// Hands out everything still held (an unfinished character becomes U+FFFD) unless the
    /// stream was stopped, and returns the whole text: exactly what was streamed.
    pub fn finish(mut self) -> String {
        if !self.stopped {
            self.release_whole_chars(true);
            let _ = self.emit(self.text.len());
        }
        self.text.truncate(self.emitted);
        self.text
    }

    /// Moves the complete characters of `pending` into `text`.
    fn release_whole_chars(&mut self, at_end: bool) {
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    push_without_nul(&mut self.text, s);
                    self.pending.clear();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    push_without_nul(&mut self.text, std::str::from_utf8(&self.pending[..valid]).expect("checked"));
                    match e.error_len() {
                        Some(bad) => {
                            self.text.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                        None if at_end => {
                            self.text.push('\u{FFFD}');
                            self.pending.clear();
                            return;
                        }
                        None => {
                            self.pending.drain(..valid);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The bytes of a character the pieces so far leave unfinished (empty after a whole one).
    pub fn unfinished(&self) -> &[u8] {
        &self.pending
    }

    fn longest_stop(&self) -> usize {
        self.stops.iter().map(String::len).max().unwrap_or(0)
    }

    fn find_stop(&self, from: usize) -> Option<usize> {
        let from = floor_char_boundary(&self.text, from);
        self.stops.iter().filter_map(|s| self.text[from..].find(s.as_str()).map(|i| from + i)).min()
    }

    /// Bytes at the end of the text that could begin a stop string.
    fn held_back(&self) -> usize {
        let tail = &self.text[self.emitted..];
        self.stops
            .iter()
            .flat_map(|s| (1..s.len()).rev().filter(move |&k| s.is_char_boundary(k) && tail.ends_with(&s[..k])).take(1))
            .max()
            .unwrap_or(0)
    }

    fn emit(&mut self, upto: usize) -> Flow {
        if upto <= self.emitted {
            return Flow::Continue;
        }
        let keep_going = (self.on_text)(&self.text[self.emitted..upto]);
        self.emitted = upto;
        if keep_going {
            Flow::Continue
        } else {
            self.stopped = true;
            Flow::Stop(StopReason::Callback)
        }
    }
}

fn push_without_nul(text: &mut String, s: &str) {
    if s.contains('\0') {
        text.push_str(&s.replace('\0', "\u{FFFD}"));
    } else {
        text.push_str(s);
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[&[u8]], stops: &[&str]) -> (Vec<String>, String, Option<StopReason>) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut got = Vec::new();
        let mut cb = |s: &str| {
            got.push(s.to_string());
            true
        };
        let mut stream = TextStream::new(&stops, &mut cb);
        let mut reason = None;
        for p in pieces {
            if let Flow::Stop(r) = stream.push(p) {
                reason = Some(r);
                break;
            }
        }
        let text = stream.finish();
        (got, text, reason)
    }

    #[test]
    fn split_characters_are_held_until_whole() {
        let euro = "€".as_bytes();
        let (got, text, _) = run(&[b"a", &euro[..1], &euro[1..2], &euro[2..], b"b"], &[]);
        assert_eq!(got, vec!["a", "€", "b"]);
        assert_eq!(text, "a€b");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let (got, text, _) = run(&[b"x\xff", b"\xe2\x82"], &[]);
        assert_eq!(text, "x\u{FFFD}\u{FFFD}");
        assert!(got.iter().all(|s| !s.is_empty()));
    }

    #[test]
    fn nul_becomes_a_replacement_character() {
        let (_, text, _) = run(&[b"a\0b"], &[]);
        assert_eq!(text, "a\u{FFFD}b");
    }

    #[test]
    fn stop_string_across_pieces_is_cut_and_never_streamed() {
        let (got, text, reason) = run(&[b"hello EN", b"D there"], &["END"]);
        assert_eq!(text, "hello ");
        assert_eq!(got.concat(), "hello ");
        assert_eq!(reason, Some(StopReason::StopString));
    }

    #[test]
    fn held_back_prefix_is_released_when_it_is_not_a_stop() {
        let (got, text, reason) = run(&[b"ab E", b"x"], &["END"]);
        assert_eq!(got, vec!["ab ", "Ex"]);
        assert_eq!(text, "ab Ex");
        assert_eq!(reason, None);
    }
}
