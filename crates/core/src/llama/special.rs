//! Where a text read with special tokens can be cut so that its spans tokenize to the same
//! tokens as the whole.
//!
//! llama.cpp's tokenizer first splits a text at the texts of the vocabulary's special tokens
//! (control, user-defined and unknown), each special token in turn, longest first, finding its
//! occurrences in what is still plain text. That partition costs the number of occurrences
//! times the number of fragments so far, seconds for a megabyte of special texts
//! (docs/reliability.md); tokenized in spans of a few KB, the same text takes milliseconds.
//!
//! A cut is safe right after an occurrence of a special token's text that overlaps no other
//! occurrence of any special text: whichever order the partition takes, that occurrence becomes
//! the special token, and the plain text after it becomes a fragment of its own, which the
//! tokenizers of type SPM and BPE tokenize alone, as they tokenize a text that starts a call
//! (SPM puts its space prefix after a special token as at the start). Occurrences of tokens
//! that strip the whitespace next to them, or whose text is whitespace, are not cut at.

/// A special token's text and whether a cut may follow it.
pub struct SpecialText {
    pub text: Vec<u8>,
    /// False for tokens that strip whitespace around them, and for whitespace texts.
    pub cut_after: bool,
}

/// The special texts of a vocabulary in a trie, searched at every byte of a text.
pub struct Specials {
    /// Node 0 is the root; each node's children by byte, and whether a text ends there (and
    /// whether a cut may follow it).
    nodes: Vec<Node>,
}

#[derive(Default)]
struct Node {
    children: Vec<(u8, u32)>,
    ends: Option<bool>,
}

impl Specials {
    pub fn new(texts: impl IntoIterator<Item = SpecialText>) -> Specials {
        let mut nodes = vec![Node::default()];
        for special in texts {
            let mut at = 0usize;
            for &b in &special.text {
                at = match nodes[at].children.iter().find(|(c, _)| *c == b) {
                    Some(&(_, next)) => next as usize,
                    None => {
                        nodes.push(Node::default());
                        let next = nodes.len() - 1;
                        nodes[at].children.push((b, next as u32));
                        next
                    }
                };
            }
            // A text twice (two tokens of one text) may be cut after only if both allow it.
            let ends = &mut nodes[at].ends;
            *ends = Some(ends.unwrap_or(true) && special.cut_after);
        }
        Specials { nodes }
    }

    /// Byte offsets at which `text` can be cut (see the module's comment), each at least
    /// `min_span` bytes after the one before (and after the start), in order.
    pub fn cuts(&self, text: &[u8], min_span: usize) -> Vec<usize> {
        let mut cuts = Vec::new();
        let mut last_cut = 0;
        // An occurrence nothing overlapped so far: its end, and whether a cut may follow it.
        let mut candidate: Option<(usize, bool)> = None;
        // The furthest end of the occurrences that started before this position.
        let mut reach = 0;
        // The ends of the occurrences that start at this position.
        let mut found: Vec<(usize, bool)> = Vec::new();
        for start in 0..text.len() {
            found.clear();
            let mut at = 0;
            for (i, &b) in text[start..].iter().enumerate() {
                let Some(&(_, next)) = self.nodes[at].children.iter().find(|(c, _)| *c == b) else { break };
                at = next as usize;
                if let Some(cut_after) = self.nodes[at].ends {
                    found.push((start + i + 1, cut_after));
                }
            }
            match candidate {
                // Nothing started inside it: it stands alone.
                Some((end, cut_after)) if start >= end => {
                    if cut_after && end - last_cut >= min_span {
                        cuts.push(end);
                        last_cut = end;
                    }
                    candidate = None;
                }
                Some(_) if !found.is_empty() => candidate = None,
                _ => {}
            }
            if let [only] = found[..] {
                if reach <= start && candidate.is_none() {
                    candidate = Some(only);
                }
            }
            reach = found.iter().map(|&(end, _)| end).fold(reach, usize::max);
        }
        if let Some((end, true)) = candidate {
            if end < text.len() && end - last_cut >= min_span {
                cuts.push(end);
            }
        }
        cuts
    }
}

#[cfg(test)]
mod tests {
    use super::{SpecialText, Specials};

    fn specials(texts: &[(&str, bool)]) -> Specials {
        Specials::new(texts.iter().map(|&(t, cut_after)| SpecialText { text: t.as_bytes().to_vec(), cut_after }))
    }

    #[test]
    fn cuts_follow_special_texts_that_nothing_overlaps() {
        let s = specials(&[("<s>", true), ("<b>", false), ("s><", true)]);
        // After each lone <s>; not after <b> (it strips whitespace); not where s>< overlaps.
        assert_eq!(s.cuts(b"ab<s>cd<s>ef", 1), [5, 10]);
        assert_eq!(s.cuts(b"ab<b>cd<s>", 1), Vec::<usize>::new(), "none after <b>, none at the end");
        assert_eq!(s.cuts(b"a<s><s>b", 1), Vec::<usize>::new(), "<s><s> holds s><, which overlaps both");
        assert_eq!(s.cuts(b"a<s>b<s>c<s>d", 5), [8], "at least 5 bytes apart, and from the start");
        let nested = specials(&[("<|a|>", true), ("|a", true)]);
        assert_eq!(nested.cuts(b"x<|a|>y", 1), Vec::<usize>::new(), "|a inside <|a|> overlaps it");
        assert_eq!(nested.cuts(b"x|ay<|a|", 1), [3, 7], "in a partial <|a|>, |a stands alone");
    }
}
