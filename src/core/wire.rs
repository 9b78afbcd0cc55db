//! The byte layer under changelog values: LEB128 varints, zigzag, and a
//! bounds-checked reader, with the error every decode returns. A leaf: the
//! changelog's records and each state block's codec build on it, and it
//! knows neither.

/// Why a changelog record could not be read. The code is bounded, for
/// metric labels and logs; the message is for humans.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    #[error("value ends inside {what}")]
    Truncated { what: &'static str },
    #[error("{what} format {found} is newer than this binary supports ({supported}): upgrade care")]
    NewerFormat { what: &'static str, found: u8, supported: u8 },
    #[error("customer state block {id} version {found} is newer than this binary supports ({supported}): upgrade care")]
    NewerBlock { id: u8, found: u8, supported: u8 },
    #[error("customer state block {id} is unknown to this binary (it knows blocks 1–{known}): upgrade care")]
    UnknownBlock { id: u8, known: u8 },
    #[error("changelog key {0}")]
    BadKey(&'static str),
    #[error("corrupt value: {0}")]
    Corrupt(String),
}

impl CodecError {
    /// The bounded code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            CodecError::Truncated { .. } => "truncated",
            CodecError::NewerFormat { .. } | CodecError::NewerBlock { .. } => "newer_format",
            CodecError::UnknownBlock { .. } => "unknown_block",
            CodecError::BadKey(_) => "bad_key",
            CodecError::Corrupt(_) => "corrupt",
        }
    }
}

/// Zigzag: small magnitudes of either sign become small unsigned numbers.
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends `v` as an LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    put_varint(out, zigzag(v));
}

/// A cursor over untrusted bytes: every read checks bounds and says which
/// field ran out, so corrupt input is an error and never a panic.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if n > self.buf.len() {
            return Err(CodecError::Truncated { what });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            if shift == 63 && b > 1 {
                return Err(CodecError::Corrupt(format!("{what}: varint longer than 64 bits")));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Corrupt(format!("{what}: varint longer than 64 bits")))
    }

    pub(crate) fn zigzag(&mut self, what: &'static str) -> Result<i64, CodecError> {
        self.varint(what).map(unzigzag)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        u32::try_from(self.varint(what)?).map_err(|_| CodecError::Corrupt(format!("{what} exceeds u32")))
    }

    pub(crate) fn usize(&mut self, what: &'static str) -> Result<usize, CodecError> {
        usize::try_from(self.varint(what)?).map_err(|_| CodecError::Corrupt(format!("{what} exceeds usize")))
    }

    pub(crate) fn u32_le(&mut self, what: &'static str) -> Result<u32, CodecError> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(crate) fn f32_le(&mut self, what: &'static str) -> Result<f32, CodecError> {
        self.array(what).map(f32::from_le_bytes)
    }

    pub(crate) fn f64_le(&mut self, what: &'static str) -> Result<f64, CodecError> {
        self.array(what).map(f64::from_le_bytes)
    }

    /// Bytes left over where a section should have ended are corruption.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), CodecError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(CodecError::Corrupt(format!("{n} bytes left over after {what}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_zigzag_round_trip_at_the_edges() {
        for v in [0, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 1_767_225_600_000, -1_767_225_600_000] {
            let mut out = Vec::new();
            put_zigzag(&mut out, v);
            assert_eq!(Reader::new(&out).zigzag("v"), Ok(v));
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        let mut max = Vec::new();
        put_varint(&mut max, u64::MAX);
        assert_eq!(max.len(), 10);
        let overlong = [0xff; 10];
        assert_eq!(Reader::new(&overlong).varint("v").map_err(|e| e.code()), Err("corrupt"));
    }
}
