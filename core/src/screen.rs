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

pub struct Screen {
    fold: [u8; 256],
    /// The table's two bits as bitsets indexed by a native-endian bigram (8 KiB each, so both
    /// stay in the L1 cache): `starts` = begins a trigram (bit 0), `ends` = ends one (bit 1).
    starts: Box<[u64; 1024]>,
    ends: Box<[u64; 1024]>,
    needles: Vec<Vec<u8>>,
    shapes: Vec<Shape>,
    pairs: Vec<(usize, usize)>,
    /// See `with_userinfo_rule`.
    userinfo: bool,
}

fn bit(set: &[u64; 1024], i: usize) -> bool {
    set[i >> 6] >> (i & 63) & 1 != 0
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
        let mut starts = Box::new([0u64; 1024]);
        let mut ends = Box::new([0u64; 1024]);
        for (i, &bits) in lut.iter().enumerate() {
            starts[i >> 6] |= u64::from(bits & 1) << (i & 63);
            ends[i >> 6] |= u64::from((bits >> 1) & 1) << (i & 63);
        }
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
            starts,
            ends,
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
    /// One pass over the line: each byte is folded once, the trigram test looks up each bigram
    /// once (does the previous bigram start a trigram and this one end it), and the runs of
    /// folded digits are measured on the way. `scratch` is kept for the literal search, which
    /// only literals of no digit shape need.
    pub fn flags(&self, line: &[u8], scratch: &mut Vec<u8>) -> bool {
        if line.is_empty() {
            return false;
        }
        let fold = &self.fold;
        let (starts, ends) = (&*self.starts, &*self.ends);
        let mut runs = ZeroRuns::default();
        let (mut run, mut before) = (0usize, 0usize);
        // Two padding newlines, as the Python prefilter appends: every bigram has a successor.
        let mut prev = fold[line[0] as usize];
        let mut prev_starts = false;
        for (i, &b) in line.iter().chain(b"\n\n".iter()).enumerate().skip(1) {
            let c = fold[b as usize];
            let gram = u16::from_ne_bytes([prev, c]) as usize;
            // the trigram at i-2..=i: the previous bigram starts one and this one ends it
            if prev_starts
                && bit(ends, gram)
                && !(self.userinfo
                    && line.get(i - 2..=i) == Some(b"://".as_slice())
                    && !userinfo_follows(&line[i + 1..]))
            {
                return true;
            }
            prev_starts = bit(starts, gram);
            if prev == b'0' {
                run += 1;
                if run > runs.longest {
                    runs.longest = run;
                }
                for &(a, b) in &self.pairs {
                    if run == b && before >= a && !runs.pairs.contains(&(a, b)) {
                        runs.pairs.push((a, b));
                    }
                }
            } else {
                before = if prev == b'_' { run } else { 0 };
                run = 0;
            }
            prev = c;
        }
        self.needles
            .iter()
            .zip(&self.shapes)
            .any(|(n, shape)| match *shape {
                // An escape can join digit groups into a card the scrubber sees ("1234\\n5678..."):
                // with one on the line, any long run flags it.
                Shape::Zeros(k) if k >= 13 => {
                    runs.longest >= k && (line.contains(&b'\\') || digit_run_card(line))
                }
                Shape::Zeros(k) => runs.longest >= k,
                Shape::Pair(a, b) => runs.pairs.contains(&(a, b)),
                Shape::Other => {
                    scratch.clear();
                    scratch.extend(line.iter().map(|&b| fold[b as usize]));
                    find(scratch, n)
                }
            })
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

/// Runs of '0' in a folded line: the longest, and which `Pair` literals occur.
#[derive(Default)]
struct ZeroRuns {
    longest: usize,
    pairs: Vec<(usize, usize)>,
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
        let mut scratch = Vec::new();
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
        let mut scratch = Vec::new();
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
        let mut scratch = Vec::new();
        let referrer = b"\"GET / HTTP/1.1\" 200 5 \"https://shop.example/a@b\" \"curl\"";
        assert!(plain.flags(referrer, &mut scratch));
        assert!(!refined.flags(referrer, &mut scratch));
        assert!(refined.flags(b"\"https://u:p@shop.example/\"", &mut scratch));
        assert!(refined.flags(b"https://shop/ then ftp://me@host", &mut scratch));
    }
}
