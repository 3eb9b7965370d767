//! Bit-parallel digit runs for the scrub screen: which bytes of a line are ASCII digits and which
//! are separators (what the scrubber's fold maps to '0' and '_'), one bit per byte, so "a run of
//! k digits" and "a run of a digits, a separator, a run of b digits" are a few shifts and ANDs
//! per 64 bytes instead of a branchy byte loop (hex request ids mix digits and letters at random).

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;
const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of each byte of `word` that is zero (exact: no carry crosses a byte).
fn zero_bytes(word: u64) -> u64 {
    !(((word & LOW7) + LOW7) | word) & HIGH
}

/// The high bit of each byte of `word` that is an ASCII digit.
fn digit_bytes(word: u64) -> u64 {
    let t = word ^ (ONES * u64::from(b'0')); // a digit becomes 0..=9
    !(((t & LOW7) + ONES * 0x76) | t) & HIGH
}

/// The high bit of each byte of `word` that is ' ', '-' or '_'.
fn sep_bytes(word: u64) -> u64 {
    zero_bytes(word ^ (ONES * u64::from(b' ')))
        | zero_bytes(word ^ (ONES * u64::from(b'-')))
        | zero_bytes(word ^ (ONES * u64::from(b'_')))
}

/// Byte high bits -> one bit per byte (bit i = byte i).
fn pack(high: u64) -> u64 {
    (high >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// One bit per byte of a line (bit i of word i / 64 = byte i), reused from line to line.
#[derive(Default)]
pub struct DigitBits {
    digits: Vec<u64>,
    seps: Vec<u64>,
    tmp: Vec<u64>,
    other: Vec<u64>,
}

impl DigitBits {
    /// Load `line`; `seps` only when a separator shape will be asked about.
    pub fn fill(&mut self, line: &[u8], seps: bool) {
        self.digits.clear();
        self.seps.clear();
        let (mut d, mut s) = (0u64, 0u64);
        let mut words = line.chunks_exact(8);
        for (k, part) in words.by_ref().enumerate() {
            let word = u64::from_le_bytes(part.try_into().expect("8 bytes"));
            let shift = 8 * (k % 8);
            d |= pack(digit_bytes(word)) << shift;
            if seps {
                s |= pack(sep_bytes(word)) << shift;
            }
            if k % 8 == 7 {
                self.digits.push(d);
                self.seps.push(s);
                (d, s) = (0, 0);
            }
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut bytes = [0u8; 8];
            bytes[..rest.len()].copy_from_slice(rest);
            let word = u64::from_le_bytes(bytes);
            let shift = 8 * ((line.len() / 8) % 8);
            d |= pack(digit_bytes(word)) << shift;
            if seps {
                s |= pack(sep_bytes(word)) << shift;
            }
        }
        if line.len() % 64 != 0 {
            self.digits.push(d);
            self.seps.push(s);
        }
    }

    /// Load `line` by a class table (`class[b]`: 1 = digit, 2 = separator), for a fold that
    /// classes bytes otherwise than ASCII digits and ' ', '-', '_'.
    pub fn fill_by(&mut self, line: &[u8], class: &[u8; 256]) {
        self.digits.clear();
        self.seps.clear();
        for block in line.chunks(64) {
            let (mut d, mut s) = (0u64, 0u64);
            for (i, &b) in block.iter().enumerate() {
                d |= u64::from(class[b as usize] == 1) << i;
                s |= u64::from(class[b as usize] == 2) << i;
            }
            self.digits.push(d);
            self.seps.push(s);
        }
    }

    /// Whether `k` digits stand in a row.
    pub fn has_run(&mut self, k: usize) -> bool {
        let mut tmp = std::mem::take(&mut self.tmp);
        runs_ending(&self.digits, k, &mut tmp);
        let found = tmp.iter().any(|&w| w != 0);
        self.tmp = tmp;
        found
    }

    /// Whether `a` digits, one separator and `b` digits stand in a row.
    pub fn has_pair(&mut self, a: usize, b: usize) -> bool {
        let (mut ends, mut starts) = (
            std::mem::take(&mut self.tmp),
            std::mem::take(&mut self.other),
        );
        runs_ending(&self.digits, a, &mut ends);
        runs_starting(&self.digits, b, &mut starts);
        let n = self.digits.len();
        let found = (0..n).any(|t| {
            let before = ends[t] << 1 | if t > 0 { ends[t - 1] >> 63 } else { 0 };
            let after = starts[t] >> 1 | if t + 1 < n { starts[t + 1] << 63 } else { 0 };
            before & self.seps[t] & after != 0
        });
        self.tmp = ends;
        self.other = starts;
        found
    }
}

/// `out` = bit i set when bits i-k+1..=i of `bits` are all set (a run of `k` ends at i).
fn runs_ending(bits: &[u64], k: usize, out: &mut Vec<u64>) {
    out.clear();
    out.extend_from_slice(bits);
    let mut len = 1;
    while len < k {
        let s = len.min(k - len);
        // from the top down: word t reads words t and below as they were before this step
        for t in (0..out.len()).rev() {
            out[t] &= shifted_up(out, t, s);
        }
        len += s;
    }
}

/// `out` = bit i set when bits i..i+k-1 of `bits` are all set (a run of `k` starts at i).
fn runs_starting(bits: &[u64], k: usize, out: &mut Vec<u64>) {
    out.clear();
    out.extend_from_slice(bits);
    let mut len = 1;
    while len < k {
        let s = len.min(k - len);
        // from the bottom up: word t reads words t and above as they were before this step
        for t in 0..out.len() {
            out[t] &= shifted_down(out, t, s);
        }
        len += s;
    }
}

/// Word `t` of the multi-word bitset `v` shifted towards higher bits by `s` (any s).
fn shifted_up(v: &[u64], t: usize, s: usize) -> u64 {
    let (q, r) = (s / 64, s % 64);
    let word = |i: Option<usize>| i.map_or(0, |i| v[i]);
    let hi = word(t.checked_sub(q));
    let lo = word(t.checked_sub(q + 1));
    if r == 0 {
        hi
    } else {
        hi << r | lo >> (64 - r)
    }
}

/// Word `t` of the multi-word bitset `v` shifted towards lower bits by `s` (any s).
fn shifted_down(v: &[u64], t: usize, s: usize) -> u64 {
    let (q, r) = (s / 64, s % 64);
    let word = |i: usize| v.get(i).copied().unwrap_or(0);
    let lo = word(t + q);
    let hi = word(t + q + 1);
    if r == 0 {
        lo
    } else {
        lo >> r | hi << (64 - r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain reading: the longest run of digits, and whether a-sep-b occurs.
    fn reference(line: &[u8], a: usize, b: usize) -> (usize, bool) {
        let digit = |i: usize| line.get(i).is_some_and(u8::is_ascii_digit);
        let sep = |i: usize| matches!(line.get(i), Some(b' ' | b'-' | b'_'));
        let (mut longest, mut run) = (0, 0);
        for i in 0..line.len() {
            run = if digit(i) { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        let pair =
            (a..line.len()).any(|i| sep(i) && (i - a..i).all(digit) && (i + 1..=i + b).all(digit));
        (longest, pair)
    }

    fn lines() -> Vec<Vec<u8>> {
        // a small deterministic generator: digits, separators and letters at every alignment
        let alphabet = b"0123456789 -_xa\\\"";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut out = Vec::new();
        for len in 0..300 {
            let mut line = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let dense = (state >> 40) % 4 != 0; // mostly digits, so long runs happen
                let pick = if dense {
                    (state >> 8) % 10
                } else {
                    (state >> 8) % alphabet.len() as u64
                };
                line.push(alphabet[pick as usize]);
            }
            out.push(line);
        }
        out
    }

    #[test]
    fn runs_and_pairs_agree_with_the_plain_reading() {
        let mut bits = DigitBits::default();
        for line in lines() {
            bits.fill(&line, true);
            let (longest, _) = reference(&line, 1, 1);
            for k in [1, 2, 4, 13, 19, 64, 65, 70, 130] {
                assert_eq!(
                    bits.has_run(k),
                    longest >= k,
                    "run {k} in {:?}",
                    String::from_utf8_lossy(&line)
                );
            }
            for (a, b) in [(4, 4), (4, 6), (1, 1), (13, 2), (2, 70)] {
                assert_eq!(
                    bits.has_pair(a, b),
                    reference(&line, a, b).1,
                    "pair {a},{b} in {:?}",
                    String::from_utf8_lossy(&line)
                );
            }
        }
    }

    #[test]
    fn byte_classes_are_exact() {
        for b in 0u8..=255 {
            let word = u64::from_le_bytes([b; 8]);
            assert_eq!(digit_bytes(word) == HIGH, b.is_ascii_digit(), "{b}");
            assert_eq!(
                sep_bytes(word) == HIGH,
                matches!(b, b' ' | b'-' | b'_'),
                "{b}"
            );
            assert_eq!(
                pack(digit_bytes(word)),
                if b.is_ascii_digit() { 0xff } else { 0 }
            );
        }
        assert_eq!(pack(0x0000_0000_0000_0080), 1);
        assert_eq!(pack(0x8000_0000_0000_0000), 0x80);
    }
}
