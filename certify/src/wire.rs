//! The SSH wire encoding (RFC 4251 §5): `uint32`, `string` and `mpint`, read with every
//! length checked against what is left, so hostile blobs give errors and never panic.

/// A blob ended early or held a value that cannot be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed SSH data: {0}")]
pub struct WireError(pub &'static str);

/// Reads fields from a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError("a field is longer than the data left"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// A big-endian `uint32`.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `string`: a `uint32` length and that many bytes.
    pub fn string(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }

    /// A `string` that must be UTF-8 (names).
    pub fn text(&mut self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.string()?).map_err(|_| WireError("a name is not UTF-8"))
    }

    /// A non-negative `mpint`, as its big-endian magnitude without leading zeros.
    pub fn mpint(&mut self) -> Result<&'a [u8], WireError> {
        let b = self.string()?;
        if b.first().is_some_and(|x| x & 0x80 != 0) {
            return Err(WireError("a negative integer"));
        }
        let zeros = b.iter().take_while(|x| **x == 0).count();
        Ok(&b[zeros..])
    }

    /// What is left.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails unless everything was read.
    pub fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError("trailing bytes"))
        }
    }
}

/// Builds a blob.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// A `uint32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A `string`.
    pub fn string(&mut self, b: &[u8]) -> &mut Self {
        // Every blob here is far below 4 GiB (keys, signatures, digests).
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(b);
        self
    }

    /// A non-negative `mpint` from a big-endian magnitude.
    pub fn mpint(&mut self, magnitude: &[u8]) -> &mut Self {
        let zeros = magnitude.iter().take_while(|x| **x == 0).count();
        let m = &magnitude[zeros..];
        if m.first().is_some_and(|x| x & 0x80 != 0) {
            let mut v = Vec::with_capacity(m.len() + 1);
            v.push(0);
            v.extend_from_slice(m);
            self.string(&v)
        } else {
            self.string(m)
        }
    }

    /// The blob.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_past_the_end_are_errors() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1]);
        assert!(r.string().is_err());
        let mut r = Reader::new(&[0, 0]);
        assert!(r.u32().is_err());
        let mut r = Reader::new(&[0, 0, 0, 1, 0x80]);
        assert!(r.mpint().is_err());
    }

    #[test]
    fn mpints_round_trip() {
        let mut w = Writer::default();
        w.mpint(&[0, 0, 0x80, 1]).mpint(&[0x7f]).mpint(&[]);
        let blob = w.into_inner();
        assert_eq!(blob[..7], [0, 0, 0, 3, 0, 0x80, 1]);
        let mut r = Reader::new(&blob);
        assert_eq!(r.mpint().unwrap(), &[0x80, 1]);
        assert_eq!(r.mpint().unwrap(), &[0x7f]);
        assert_eq!(r.mpint().unwrap(), &[] as &[u8]);
        r.finish().unwrap();
    }
}
