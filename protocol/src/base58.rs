//! Base58 (Bitcoin alphabet) text of keys and signatures, computed on the stack.
//!
//! Every record, receipt and dataset row carries a node key and a signature in base58, so this
//! text is made and read millions of times: by the validator decoding every record it receives,
//! by the exporter writing every row, by a lab verifying every row. The `bs58` crate converts
//! one digit at a time through a heap buffer; this converts 32 bits at a time against limbs of
//! five base58 digits and writes into a fixed buffer. The text is identical to `bs58`'s (tested),
//! and [`decode`] only answers for plain canonical text, so `FromStr` keeps `bs58` as the
//! reference for everything else, including its error messages.

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// 58^5: five digits per limb; `LIMB * 2^32 + 2^32` fits in a `u64`.
const LIMB: u64 = 656_356_768;
/// Largest value handled: a signature.
const MAX_BYTES: usize = 64;
/// Limbs of five digits for the largest input (64 bytes: at most 88 digits).
const MAX_LIMBS: usize = 18;
/// Longest text: 88 digits for 64 bytes (64 leading zero bytes give 64 `1`s).
const MAX_TEXT: usize = 90;

/// The value of each byte as a base58 digit, or 0xff.
static DIGIT: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Base58 text in a fixed buffer (no allocation).
#[derive(Clone, Copy)]
pub(crate) struct Text {
    buf: [u8; MAX_TEXT],
    len: usize,
}

impl Text {
    pub(crate) fn as_str(&self) -> &str {
        // The buffer holds alphabet characters only (ASCII), so this never fails.
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

/// `bytes` in base58 (`N` at most [`MAX_BYTES`], checked at compile time).
pub(crate) fn encode<const N: usize>(bytes: &[u8; N]) -> Text {
    const { assert!(N <= MAX_BYTES) };
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    let rest = bytes.get(zeros..).unwrap_or_default();
    // Little-endian limbs of the number `rest` (big-endian bytes).
    let mut limbs = [0u64; MAX_LIMBS];
    let mut used = 0usize;
    // A first partial chunk so the remaining chunks are whole 32-bit words.
    let head = rest.len() % 4;
    let (first, words) = rest.split_at(head);
    let mut feed = |word: u64, shift: u32| {
        let mut carry = word;
        for limb in limbs.iter_mut().take(used) {
            let x = (*limb << shift) + carry;
            *limb = x % LIMB;
            carry = x / LIMB;
        }
        while carry > 0 && used < MAX_LIMBS {
            if let Some(limb) = limbs.get_mut(used) {
                *limb = carry % LIMB;
            }
            carry /= LIMB;
            used += 1;
        }
    };
    if !first.is_empty() {
        let word = first.iter().fold(0u64, |w, &b| (w << 8) | u64::from(b));
        feed(word, 8 * head as u32);
    }
    for w in words.chunks_exact(4) {
        let word = w.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        feed(word, 32);
    }
    // Digit characters, most significant first, then the number's leading zero digits (`1`)
    // dropped.
    let mut digits = [b'1'; 5 * MAX_LIMBS];
    for (slot, &limb) in digits
        .chunks_exact_mut(5)
        .zip(limbs.iter().take(used).rev())
    {
        let mut v = limb;
        for d in slot.iter_mut().rev() {
            *d = ALPHABET[(v % 58) as usize];
            v /= 58;
        }
    }
    let digits = digits.get(..5 * used).unwrap_or_default();
    let significant = digits.iter().take_while(|&&d| d == b'1').count();
    let digits = digits.get(significant..).unwrap_or_default();
    // The zero bytes' `1`s are already in the buffer; at most 88 characters for 64 bytes.
    let mut text = Text {
        buf: [b'1'; MAX_TEXT],
        len: (zeros + digits.len()).min(MAX_TEXT),
    };
    let tail = text.buf.get_mut(zeros..).unwrap_or_default();
    for (slot, &d) in tail.iter_mut().zip(digits) {
        *slot = d;
    }
    text
}

/// The `N` bytes whose base58 text is `text`, when `text` is plainly that: alphabet characters
/// only, a number that fills exactly `N` bytes with its leading `1`s. `None` otherwise: the
/// caller then asks `bs58`, which also reports why. Whenever this returns bytes, they are what
/// `bs58` decodes (tested).
pub(crate) fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    const { assert!(N <= MAX_BYTES) };
    // Longest text of N bytes: N leading '1's, or the digits of the largest number (at most
    // 1.37 digits per byte, rounded up).
    if text.len() > N * 137 / 100 + 1 {
        return None;
    }
    let digits = text.as_bytes();
    let zeros = digits.iter().take_while(|&&d| d == b'1').count();
    // Little-endian 32-bit limbs of the number.
    let mut limbs = [0u64; MAX_BYTES / 4 + 1];
    let mut used = 0usize;
    for chunk in digits.get(zeros..)?.chunks(5) {
        let mut value = 0u64;
        let mut scale = 1u64;
        for &d in chunk {
            let v = DIGIT[usize::from(d)];
            if v == 0xff {
                return None;
            }
            value = value * 58 + u64::from(v);
            scale *= 58;
        }
        let mut carry = value;
        for limb in limbs.iter_mut().take(used) {
            let x = *limb * scale + carry;
            *limb = x & 0xffff_ffff;
            carry = x >> 32;
        }
        while carry > 0 {
            *limbs.get_mut(used)? = carry & 0xffff_ffff;
            carry >>= 32;
            used += 1;
        }
    }
    // The number's big-endian bytes, without leading zero bytes.
    let mut number = [0u8; 4 * (MAX_BYTES / 4 + 1)];
    for (slot, &limb) in number
        .chunks_exact_mut(4)
        .zip(limbs.iter().take(used).rev())
    {
        slot.copy_from_slice(&(limb as u32).to_be_bytes());
    }
    let number = number.get(..4 * used)?;
    let significant = number.iter().take_while(|&&b| b == 0).count();
    let number = number.get(significant..)?;
    if zeros + number.len() != N {
        return None;
    }
    let mut out = [0u8; N];
    out.get_mut(zeros..)?.copy_from_slice(number);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator for the random cases.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    fn reference<const N: usize>(text: &str) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        match bs58::decode(text).onto(&mut out) {
            Ok(n) if n == N => Some(out),
            _ => None,
        }
    }

    fn check_decode<const N: usize>(next: &mut impl FnMut() -> u64, case: usize) {
        let mut bytes = [0u8; N];
        for b in bytes.iter_mut() {
            *b = next() as u8;
        }
        let zeros = if case.is_multiple_of(5) {
            (next() % (N as u64 + 1)) as usize
        } else {
            0
        };
        bytes.iter_mut().take(zeros).for_each(|b| *b = 0);
        let text = bs58::encode(bytes).into_string();
        assert_eq!(decode::<N>(&text), Some(bytes), "{text}");
        // Mangled texts: whatever this returns must be what bs58 returns.
        let mut chars: Vec<char> = text.chars().collect();
        match case % 5 {
            0 => {
                chars.pop();
            }
            1 => chars.push('z'),
            2 => chars.insert(0, '1'),
            3 => chars.insert(0, '0'),
            _ => {
                let k = (next() % chars.len().max(1) as u64) as usize;
                if let Some(c) = chars.get_mut(k) {
                    *c = char::from(ALPHABET[(next() % 58) as usize]);
                }
            }
        }
        let mangled: String = chars.into_iter().collect();
        if let Some(bytes) = decode::<N>(&mangled) {
            assert_eq!(reference::<N>(&mangled), Some(bytes), "{mangled}");
        }
    }

    #[test]
    fn decodes_as_bs58() {
        let mut next = xorshift(0x0bad_cafe_f00d_1234u64);
        for case in 0..5_000 {
            check_decode::<64>(&mut next, case);
            check_decode::<32>(&mut next, case);
        }
        for odd in ["", " x", "0OIl", "zzzz", "1 1", "é"] {
            assert_eq!(decode::<64>(odd), None, "{odd}");
            assert_eq!(decode::<32>(odd), None, "{odd}");
        }
        assert_eq!(decode::<64>(&"1".repeat(64)), Some([0; 64]));
        assert_eq!(decode::<64>(&"1".repeat(65)), None);
        assert_eq!(decode::<32>(&"1".repeat(32)), Some([0; 32]));
        // The largest values, and one past them.
        let max = bs58::encode([0xff; 32]).into_string();
        assert_eq!(decode::<32>(&max), Some([0xff; 32]));
        assert_eq!(decode::<32>(&format!("{max}z")), None);
        assert_eq!(decode::<32>(&"z".repeat(200)), None);
    }

    /// The first `N` bytes of `src`, encoded here and by `bs58`.
    fn check_encode<const N: usize>(src: &[u8; 64]) {
        let mut part = [0u8; N];
        part.copy_from_slice(&src[..N]);
        assert_eq!(
            encode(&part).as_str(),
            bs58::encode(part).into_string(),
            "{part:?}"
        );
    }

    #[test]
    fn encodes_as_bs58() {
        let mut next = xorshift(0x1234_5678_9abc_def0u64);
        for case in 0..5_000 {
            let mut sig = [0u8; 64];
            for b in sig.iter_mut() {
                *b = next() as u8;
            }
            // Leading zero bytes, all-zero and all-0xff inputs.
            let zeros = match case % 7 {
                0 => 0,
                1 => 1,
                2 => 3,
                3 => (next() % 65) as usize,
                _ => 0,
            };
            sig.iter_mut().take(zeros).for_each(|b| *b = 0);
            if case == 1 {
                sig = [0xff; 64];
            }
            check_encode::<64>(&sig);
            check_encode::<32>(&sig);
            check_encode::<31>(&sig);
            check_encode::<5>(&sig);
            check_encode::<2>(&sig);
            check_encode::<1>(&sig);
            check_encode::<0>(&sig);
        }
        assert_eq!(encode(&[]).as_str(), "");
        assert_eq!(encode(&[0]).as_str(), "1");
        assert_eq!(encode(&[0, 0, 1]).as_str(), "112");
        assert_eq!(encode(&[57]).as_str(), "z");
        assert_eq!(encode(&[58]).as_str(), "21");
        assert_eq!(encode(&[0u8; 64]).as_str(), "1".repeat(64));
    }
}
