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
    /// Indexed by a native-endian bigram: bit 0 = starts a trigram, bit 1 = ends one.
    lut: Vec<u8>,
    needles: Vec<Vec<u8>>,
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
        Ok(Screen {
            fold,
            lut: lut.to_vec(),
            needles,
        })
    }

    /// Whether `line` could need scrubbing (its bytes as in the file, no newline).
    pub fn flags(&self, line: &[u8], scratch: &mut Vec<u8>) -> bool {
        scratch.clear();
        scratch.extend(line.iter().map(|&b| self.fold[b as usize]));
        // Two padding newlines, as the Python prefilter appends: every bigram has a successor.
        scratch.extend_from_slice(b"\n\n");
        let f = scratch.as_slice();
        let lut = &self.lut;
        // trigram at p: bigram p starts one (bit 0) and bigram p+1 ends one (bit 1)
        let mut here = lut[u16::from_ne_bytes([f[0], f[1]]) as usize];
        for w in f[1..].windows(2).take(line.len()) {
            let next = lut[u16::from_ne_bytes([w[0], w[1]]) as usize];
            if here & (next >> 1) & 1 != 0 {
                return true;
            }
            here = next;
        }
        let folded = &f[..line.len()];
        self.needles.iter().any(|n| {
            if n.len() >= 13 && n.iter().all(|&b| b == b'0') {
                // An escape can join digit groups into a card the scrubber sees ("1234\\n5678..."):
                // with one on the line, any run flags it.
                find(folded, n) && (line.contains(&b'\\') || digit_run_card(line))
            } else {
                find(folded, n)
            }
        })
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
    hay.len() >= needle.len() && hay.windows(needle.len()).any(|w| w == needle)
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
    fn refuses_tables_of_the_wrong_size() {
        assert!(Screen::new(&[0; 10], &[0; 65_536], vec![]).is_err());
        assert!(Screen::new(&[0; 256], &[0; 10], vec![]).is_err());
    }
}
