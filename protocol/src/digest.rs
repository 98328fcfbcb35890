//! 32-byte blake3 digests, printed as lowercase hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ProtocolError;

/// A 32-byte digest (blake3 unless a type says otherwise). Displays as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest([u8; 32]);

impl Digest {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// blake3 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Digest(*blake3::hash(data).as_bytes())
    }

    /// blake3 of canonical bytes that already start with a domain tag (see [`crate::Canon`]).
    pub fn of_canonical(bytes: &[u8]) -> Self {
        Self::of(bytes)
    }

    /// The 64 lowercase hex digits, in a stack buffer: digests are printed into every record,
    /// receipt and dataset row, and this spares a heap string each time.
    fn hex(&self) -> HexText {
        let mut buf = [0u8; 64];
        // 32 bytes always fill 64 digits exactly; the error case cannot occur.
        let _ = hex::encode_to_slice(self.0, &mut buf);
        HexText(buf)
    }
}

/// The 64 hex digits of a digest.
struct HexText([u8; 64]);

impl HexText {
    fn as_str(&self) -> &str {
        // Hex digits only (ASCII): never fails.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).map_err(|e| ProtocolError::BadEncoding {
            what: "digest",
            why: e.to_string(),
        })?;
        Ok(Digest(out))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.hex().as_str())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_hex_encode() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for case in 0..200u32 {
            let mut bytes = [0u8; 32];
            for b in bytes.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            if case == 0 {
                bytes = [0; 32];
            } else if case == 1 {
                bytes = [0xff; 32];
            }
            let d = Digest(bytes);
            let text = hex::encode(bytes);
            assert_eq!(d.to_string(), text);
            assert_eq!(serde_json::to_string(&d).ok(), Some(format!("\"{text}\"")));
            assert_eq!(text.parse::<Digest>().ok(), Some(d));
        }
    }
}
