//! The scrub screen: which lines could hold anything the scrubber would change.
//!
//! It runs the tables `logpipe.scrub` builds for its own batch prefilter (the case fold and the
//! trigram table, plus the card-shaped literals), handed over at construction, so both sides read
//! one rule table. The screen is a superset of the scrubber's per-line check: a line it passes is
//! one the scrubber would leave alone; a line it flags goes to the scrubber (Python) as it is.
//!
//! One refinement over the literals: a run of 13+ digits (a hex request id holds one in a few
//! percent of lines) only counts when the scrubber's card rule could take it whole, i.e. 13-19
//! digits standing apart (no letter or digit right before or after, a JSON escape's letter
//! counting as a separator) and passing Luhn, which is the scrubber's own test.

use crate::digits::DigitBits;

pub struct Screen {
    fold: [u8; 256],
    /// The trigram table over *raw* bigrams, indexed `b0 | b1 << 8` with the fold applied at
    /// construction, so the scan does one load per byte: bit 0 = the folded bigram begins a
    /// trigram, bit 1 = it ends one.
    grams: Box<[u8; 65_536]>,
    /// 1 for bytes that fold to '0', 2 for those that fold to '_'; None when those are exactly the
    /// ASCII digits and ' ', '-', '_' (the scrubber's fold), which `DigitBits` reads word-wise.
    class: Option<Box<[u8; 256]>>,
    needles: Vec<Vec<u8>>,
    shapes: Vec<Shape>,
    pairs: Vec<(usize, usize)>,
    /// See `with_userinfo_rule`.
    userinfo: bool,
}

/// What `Screen::flags` reuses from line to line.
#[derive(Default)]
pub struct Scratch {
    folded: Vec<u8>,
    bits: DigitBits,
}

impl Screen {
    /// `fold`: 256 bytes; `lut`: 65,536 bytes; `needles`: literals searched in the folded text.
    pub fn new(fold: &[u8], lut: &[u8], needles: Vec<Vec<u8>>) -> Result<Self, String> {
        let fold: [u8; 256] = fold
            .try_into()
            .map_err(|_| format!("fold table has {} bytes, not 256", fold.len()))?;
        if lut.len() != 65_536 {
            return Err(format!("trigram table has {} bytes, not 65536", lut.len()));
        }
        if needles.iter().any(|n| n.is_empty()) {
            return Err("empty literal in the scrub screen".into());
        }
        let mut grams = Box::new([0u8; 65_536]);
        for (raw, slot) in grams.iter_mut().enumerate() {
            let folded = u16::from_ne_bytes([fold[raw & 0xff], fold[raw >> 8]]);
            *slot = lut[folded as usize] & 3;
        }
        let mut class = Box::new([0u8; 256]);
        for (b, c) in class.iter_mut().enumerate() {
            *c = match fold[b] {
                b'0' => 1,
                b'_' => 2,
                _ => 0,
            };
        }
        let standard = (0..=255u8).all(|b| {
            let want = match b {
                b'0'..=b'9' => 1,
                b' ' | b'-' | b'_' => 2,
                _ => 0,
            };
            class[b as usize] == want
        });
        let class = (!standard).then_some(class);
        let shapes: Vec<Shape> = needles.iter().map(|n| Shape::of(n)).collect();
        let pairs = shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Pair(a, b) => Some((*a, *b)),
                _ => None,
            })
            .collect();
        Ok(Screen {
            fold,
            grams,
            class,
            needles,
            shapes,
            pairs,
            userinfo: false,
        })
    }

    /// Count a `://` trigram only where the scrubber's own URL-userinfo hint holds (`://`, then
    /// no `/?#@` or line break before an `@`), as the card rule does for digit runs: every
    /// referrer of an access line holds `://`. Only for records whose key names are fixed (a
    /// text parser's), since an extra sensitive key could also begin with `://`.
    pub fn with_userinfo_rule(mut self) -> Self {
        self.userinfo = true;
        self
    }

    /// Whether `line` could need scrubbing (its bytes as in the file, no newline).
    ///
    /// Two passes: the trigram test (one table load per byte), then the digit shapes on one
    /// bit per byte (`DigitBits`).
    pub fn flags(&self, line: &[u8], scratch: &mut Scratch) -> bool {
        if line.is_empty() {
            return false;
        }
        if self.trigram(line) {
            return true;
        }
        let bits = &mut scratch.bits;
        match &self.class {
            None => bits.fill(line, !self.pairs.is_empty()),
            Some(class) => bits.fill_by(line, class),
        }
        self.needles
            .iter()
            .zip(&self.shapes)
            .any(|(n, shape)| match *shape {
                // An escape can join digit groups into a card the scrubber sees ("1234\\n5678..."):
                // with one on the line, any long run flags it.
                Shape::Zeros(k) if k >= 13 => {
                    bits.has_run(k) && (line.contains(&b'\\') || digit_run_card(line))
                }
                Shape::Zeros(k) => bits.has_run(k),
                Shape::Pair(a, b) => bits.has_pair(a, b),
                Shape::Other => {
                    let folded = &mut scratch.folded;
                    folded.clear();
                    folded.extend(line.iter().map(|&b| self.fold[b as usize]));
                    find(folded, n)
                }
            })
    }

    /// Whether a trigram of the table occurs in the folded `line` followed by two padding
    /// newlines (as the Python prefilter appends): bigram i-1 begins one and bigram i ends it.
    fn trigram(&self, line: &[u8]) -> bool {
        let grams = &*self.grams;
        let gram = |a: u8, b: u8| grams[a as usize | (b as usize) << 8];
        let mut begins = 0u8;
        for (i, w) in line.windows(2).enumerate() {
            let g = gram(w[0], w[1]);
            if begins & (g >> 1) != 0 && self.counts(line, i + 1) {
                return true;
            }
            begins = g & 1;
        }
        let last = line[line.len() - 1];
        for (k, (a, b)) in [(last, b'\n'), (b'\n', b'\n')].into_iter().enumerate() {
            let g = gram(a, b);
            if begins & (g >> 1) != 0 && self.counts(line, line.len() + k) {
                return true;
            }
            begins = g & 1;
        }
        false
    }

    /// Whether the trigram ending at byte `i` (of the padded line) counts: always, except a
    /// `://` without credentials after it under `with_userinfo_rule`.
    fn counts(&self, line: &[u8], i: usize) -> bool {
        !(self.userinfo
            && line.get(i - 2..=i) == Some(b"://".as_slice())
            && !userinfo_follows(&line[i + 1..]))
    }
}

/// `[^/?#@\t\r\n]*@` at the start of `rest` (the scrubber's `_USERINFO_HINT` after `://`).
fn userinfo_follows(rest: &[u8]) -> bool {
    for &b in rest {
        match b {
            b'@' => return true,
            b'/' | b'?' | b'#' | b'\t' | b'\r' | b'\n' => return false,
            _ => {}
        }
    }
    false
}

/// The literal shapes the scrubber's card literals have on the folded view (digits fold to
/// '0', separators to '_'), found in one pass instead of a search per literal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `0` × k
    Zeros(usize),
    /// `0` × a, `_`, `0` × b
    Pair(usize, usize),
    Other,
}

impl Shape {
    fn of(needle: &[u8]) -> Shape {
        let zeros = |s: &[u8]| !s.is_empty() && s.iter().all(|&b| b == b'0');
        if zeros(needle) {
            return Shape::Zeros(needle.len());
        }
        match needle.iter().position(|&b| b == b'_') {
            Some(i) if zeros(&needle[..i]) && zeros(&needle[i + 1..]) => {
                Shape::Pair(i, needle.len() - i - 1)
            }
            _ => Shape::Other,
        }
    }
}

/// Whether some run of ASCII digits in `line` could be a card number to the scrubber's card rule:
/// 13-19 digits, not glued to a letter or digit on either side (a byte >= 0x80 may be a letter:
/// counted as glue-free, to stay a superset), passing Luhn.
fn digit_run_card(line: &[u8]) -> bool {
    let mut p = 0;
    while p < line.len() {
        if !line[p].is_ascii_digit() {
            p += 1;
            continue;
        }
        let start = p;
        while p < line.len() && line[p].is_ascii_digit() {
            p += 1;
        }
        let run = &line[start..p];
        if !(13..=19).contains(&run.len()) {
            continue;
        }
        // A letter right before blocks the match, unless it is a JSON escape's letter ("\n1234...")
        // that the scrubber reads as a separator.
        let glued_before = start > 0
            && line[start - 1].is_ascii_alphanumeric()
            && !(start > 1 && line[start - 2] == b'\\');
        let glued_after = p < line.len() && line[p].is_ascii_alphanumeric();
        if !glued_before && !glued_after && luhn(run) {
            return true;
        }
    }
    false
}

fn luhn(digits: &[u8]) -> bool {
    let parity = digits.len() % 2;
    let mut total = 0u32;
    for (i, &c) in digits.iter().enumerate() {
        let mut d = (c - b'0') as u32;
        if i % 2 == parity {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        total += d;
    }
    total % 10 == 0
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if hay.len() < needle.len() {
        return false;
    }
    // byte by byte, no memcmp call: most candidate positions (digits) fail within a few bytes
    (0..=hay.len() - needle.len()).any(|i| {
        hay[i] == first
            && hay[i + 1..i + needle.len()]
                .iter()
                .zip(rest)
                .all(|(a, b)| a == b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen() -> Screen {
        let fold: Vec<u8> = (0u16..256)
            .map(|c| match c {
                65..=90 => c as u8 + 32,
                48..=57 => b'0',
                _ => c as u8,
            })
            .collect();
        let mut lut = vec![0u8; 65_536];
        let gram = b"tok";
        lut[u16::from_ne_bytes([gram[0], gram[1]]) as usize] |= 1;
        lut[u16::from_ne_bytes([gram[1], gram[2]]) as usize] |= 2;
        Screen::new(&fold, &lut, vec![b"0000000000000".to_vec()]).unwrap()
    }

    #[test]
    fn flags_a_trigram_in_any_case_and_passes_clean_lines() {
        let s = screen();
        let mut scratch = Scratch::default();
        assert!(s.flags(b"a TOKen here", &mut scratch));
        assert!(!s.flags(b"to k", &mut scratch));
        assert!(s.flags(b"card 4111111111111111", &mut scratch));
        assert!(!s.flags(b"id ab4111111111111111", &mut scratch));
        assert!(s.flags(b"id ab4111111111111111 \\n", &mut scratch));
        assert!(!s.flags(b"", &mut scratch));
    }

    #[test]
    fn digit_runs_count_only_when_a_card_could_stand_there() {
        assert!(digit_run_card(b"card 4111111111111111 x"));
        assert!(!digit_run_card(b"card 4111111111111112 x")); // Luhn fails
        assert!(!digit_run_card(b"id a4111111111111111")); // inside a longer token
        assert!(digit_run_card(b"\\n4111111111111111")); // after a JSON escape
        assert!(!digit_run_card(b"41111111111111110000")); // 20 digits
    }

    #[test]
    fn literal_shapes_are_found_in_one_pass() {
        assert!(Shape::of(b"0000_0000") == Shape::Pair(4, 4));
        assert!(Shape::of(b"ab") == Shape::Other);
        let fold: Vec<u8> = (0u16..256)
            .map(|c| match c {
                65..=90 => c as u8 + 32,
                48..=57 => b'0',
                32 | 45 => b'_',
                _ => c as u8,
            })
            .collect();
        let s = Screen::new(
            &fold,
            &[0u8; 65_536],
            vec![b"0000_0000".to_vec(), b"000000000".to_vec(), b"ab".to_vec()],
        )
        .unwrap();
        let mut scratch = Scratch::default();
        assert!(s.flags(b"x 1234-567890 y", &mut scratch));
        assert!(s.flags(b"x 1234 5678", &mut scratch));
        assert!(!s.flags(b"123-4567x1234--5678", &mut scratch));
        assert!(s.flags(b"12-123456789", &mut scratch));
        assert!(!s.flags(b"12-12345678", &mut scratch));
        assert!(s.flags(b"xAB", &mut scratch));
        assert!(!s.flags(b"a b", &mut scratch));
    }

    #[test]
    fn refuses_tables_of_the_wrong_size() {
        assert!(Screen::new(&[0; 10], &[0; 65_536], vec![]).is_err());
        assert!(Screen::new(&[0; 256], &[0; 10], vec![]).is_err());
    }

    #[test]
    fn userinfo_rule_counts_a_url_only_with_credentials() {
        let fold: Vec<u8> = (0u16..256).map(|c| c as u8).collect();
        let mut lut = vec![0u8; 65_536];
        lut[u16::from_ne_bytes(*b":/") as usize] |= 1;
        lut[u16::from_ne_bytes(*b"//") as usize] |= 2;
        let plain = Screen::new(&fold, &lut, vec![b"qqq".to_vec()]).unwrap();
        let refined = Screen::new(&fold, &lut, vec![b"qqq".to_vec()])
            .unwrap()
            .with_userinfo_rule();
        let mut scratch = Scratch::default();
        let referrer = b"\"GET / HTTP/1.1\" 200 5 \"https://shop.example/a@b\" \"curl\"";
        assert!(plain.flags(referrer, &mut scratch));
        assert!(!refined.flags(referrer, &mut scratch));
        assert!(refined.flags(b"\"https://u:p@shop.example/\"", &mut scratch));
        assert!(refined.flags(b"https://shop/ then ftp://me@host", &mut scratch));
    }
}
