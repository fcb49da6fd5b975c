//! Little-endian reading of a byte slice, for the project's binary formats (GGUF headers, saved
//! state files): every read is bounds-checked and says what it was reading.

/// A read past the end of the bytes: what was being read, and the length the bytes would need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Short {
    pub what: String,
    pub needed: u64,
}

/// A cursor over a byte slice.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// Offset of the next byte to read.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Moves to offset `pos` (at most the length).
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.bytes.len());
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], Short> {
        match usize::try_from(n).ok().filter(|&n| n <= self.remaining()) {
            Some(n) => {
                let out = &self.bytes[self.pos..self.pos + n];
                self.pos += n;
                Ok(out)
            }
            None => Err(Short { what: what.to_string(), needed: (self.pos as u64).saturating_add(n) }),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Short> {
        Ok(self.take(N as u64, what)?.try_into().expect("take returns N bytes"))
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, Short> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u16(&mut self, what: &str) -> Result<u16, Short> {
        self.array(what).map(u16::from_le_bytes)
    }
    pub fn u32(&mut self, what: &str) -> Result<u32, Short> {
        self.array(what).map(u32::from_le_bytes)
    }
    pub fn i32(&mut self, what: &str) -> Result<i32, Short> {
        self.array(what).map(i32::from_le_bytes)
    }
    pub fn u64(&mut self, what: &str) -> Result<u64, Short> {
        self.array(what).map(u64::from_le_bytes)
    }
    pub fn i64(&mut self, what: &str) -> Result<i64, Short> {
        self.array(what).map(i64::from_le_bytes)
    }
    pub fn f32(&mut self, what: &str) -> Result<f32, Short> {
        self.array(what).map(f32::from_le_bytes)
    }
    pub fn f64(&mut self, what: &str) -> Result<f64, Short> {
        self.array(what).map(f64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_stops_at_the_end() {
        let mut r = Reader::new(&[1, 0, 0, 0, 2, 0]);
        assert_eq!(r.u32("a"), Ok(1));
        assert_eq!(r.u32("b"), Err(Short { what: "b".into(), needed: 8 }));
        assert_eq!(r.u16("c"), Ok(2));
        assert_eq!(r.take(u64::MAX, "d").unwrap_err().needed, u64::MAX);
    }
}
