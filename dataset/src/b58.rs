//! Base58 (Bitcoin alphabet) text of keys and signatures, as `gleaner_protocol`'s `Display` prints
//! it and its `FromStr` parses it, but faster: every row carries a 64-byte node signature in
//! base58, and the `bs58` crate's digit-at-a-time conversion was a sixth of the export's encoding
//! time. This converts 32 bits at a time against limbs of five base58 digits. Results are
//! identical (tested against the protocol's `Display` and `FromStr`).

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// 58^5: five digits per limb; `LIMB * 2^32 + 2^32` fits in a `u64`.
const LIMB: u64 = 656_356_768;
/// Limbs for the largest input encoded here (64 bytes: at most 88 digits).
const MAX_LIMBS: usize = 18;
/// Largest input: a signature.
const MAX_BYTES: usize = 64;

/// `bytes` in base58. Inputs longer than 64 bytes are not needed here and return `None`.
pub(crate) fn encode(bytes: &[u8]) -> Option<String> {
    if bytes.len() > MAX_BYTES {
        return None;
    }
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    let rest = bytes.get(zeros..)?;
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
    // Digits, most significant first, without the number's leading zero digits.
    let mut digits = Vec::with_capacity(5 * used);
    for &limb in limbs.iter().take(used).rev() {
        let mut d = [0u8; 5];
        let mut v = limb;
        for slot in d.iter_mut().rev() {
            *slot = (v % 58) as u8;
            v /= 58;
        }
        digits.extend_from_slice(&d);
    }
    let significant = digits.iter().take_while(|&&d| d == 0).count();
    let mut out = String::with_capacity(zeros + digits.len() - significant);
    out.extend(std::iter::repeat_n('1', zeros));
    for &d in digits.get(significant..)? {
        out.push(char::from(*ALPHABET.get(usize::from(d))?));
    }
    Some(out)
}

/// The 64 bytes whose base58 text is `text`, when `text` is plainly that (alphabet characters
/// only, exactly 64 bytes); `None` otherwise, and callers then parse with the protocol's
/// `FromStr`, which also trims, and reports errors. Whenever this returns bytes, they are what
/// the protocol's parser returns.
pub(crate) fn decode_64(text: &str) -> Option<[u8; 64]> {
    // Longest text of 64 bytes: 64 leading '1's or 88 digits.
    if text.len() > 88 {
        return None;
    }
    let digits = text.as_bytes();
    let zeros = digits.iter().take_while(|&&d| d == b'1').count();
    // Little-endian 32-bit limbs of the number.
    let mut limbs = [0u64; 17];
    let mut used = 0usize;
    for chunk in digits.get(zeros..)?.chunks(5) {
        let mut value = 0u64;
        let mut scale = 1u64;
        for &d in chunk {
            let v = ALPHABET.iter().position(|&a| a == d)? as u64;
            value = value * 58 + v;
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
    let mut number = Vec::with_capacity(4 * used);
    for &limb in limbs.iter().take(used).rev() {
        number.extend_from_slice(&(limb as u32).to_be_bytes());
    }
    let significant = number.iter().take_while(|&&b| b == 0).count();
    let number = number.get(significant..)?;
    if zeros + number.len() != 64 {
        return None;
    }
    let mut out = [0u8; 64];
    out.get_mut(zeros..)?.copy_from_slice(number);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gleaner_protocol::{PublicKey, Signature};

    /// A small deterministic generator for the random cases.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    #[test]
    fn decodes_as_the_protocol_parser() {
        let mut next = xorshift(0x0bad_cafe_f00d_1234u64);
        for case in 0..5_000 {
            let mut sig = [0u8; 64];
            for b in sig.iter_mut() {
                *b = next() as u8;
            }
            let zeros = if case % 5 == 0 {
                (next() % 65) as usize
            } else {
                0
            };
            sig.iter_mut().take(zeros).for_each(|b| *b = 0);
            let text = Signature::from_bytes(sig).to_string();
            assert_eq!(decode_64(&text), Some(sig), "{text}");
            // Mangled texts: whatever this returns must be what the parser returns.
            let mut chars: Vec<char> = text.chars().collect();
            match case % 4 {
                0 => {
                    chars.pop();
                }
                1 => chars.push('z'),
                2 => chars.insert(0, '1'),
                _ => {
                    let k = (next() % chars.len().max(1) as u64) as usize;
                    if let Some(c) = chars.get_mut(k) {
                        *c = char::from(ALPHABET[(next() % 58) as usize]);
                    }
                }
            }
            let mangled: String = chars.into_iter().collect();
            if let Some(bytes) = decode_64(&mangled) {
                let parsed: Signature = mangled.parse().unwrap();
                assert_eq!(parsed.as_bytes(), &bytes, "{mangled}");
            }
        }
        for odd in ["", " x", "0OIl", &"1".repeat(64), &"1".repeat(65), "zzzz"] {
            if let Some(bytes) = decode_64(odd) {
                let parsed: Signature = odd.parse().unwrap();
                assert_eq!(parsed.as_bytes(), &bytes);
            }
        }
        assert_eq!(decode_64(&"1".repeat(64)), Some([0; 64]));
    }

    #[test]
    fn equals_the_protocol_text() {
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
            let s = Signature::from_bytes(sig);
            assert_eq!(encode(&sig).as_deref(), Some(s.to_string().as_str()));
            let mut key = [0u8; 32];
            key.copy_from_slice(&sig[..32]);
            let k = PublicKey::from_bytes(key);
            assert_eq!(encode(&key).as_deref(), Some(k.to_string().as_str()));
            for n in [0usize, 1, 2, 5, 31] {
                let _ = encode(&sig[..n]);
            }
        }
        assert_eq!(encode(&[]).as_deref(), Some(""));
        assert_eq!(encode(&[0]).as_deref(), Some("1"));
        assert_eq!(encode(&[0, 0, 1]).as_deref(), Some("112"));
        assert_eq!(encode(&[57]).as_deref(), Some("z"));
        assert_eq!(encode(&[58]).as_deref(), Some("21"));
        assert!(encode(&[1; 65]).is_none());
    }
}
