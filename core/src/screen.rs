//! The scrub screen: which lines could hold anything the scrubber would change.
//!
//! It runs the tables `logpipe.scrub` builds for its own batch prefilter (the case fold and the
//! trigram table, plus the card-shaped literals), handed over at construction, so both sides read
//! one rule table. The screen is a superset of the scrubber's per-line check: a line it passes is
//! one the scrubber would leave alone; a line it flags goes to the scrubber (Python) as it is.

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
        let bigram = |p: usize| lut[u16::from_ne_bytes([f[p], f[p + 1]]) as usize];
        for p in 0..line.len() {
            if bigram(p) & (bigram(p + 1) >> 1) & 1 != 0 {
                return true;
            }
        }
        let folded = &f[..line.len()];
        self.needles.iter().any(|n| find(folded, n))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen() -> Screen {
        let fold: Vec<u8> = (0u16..256)
            .map(|c| {
                if (65..=90).contains(&c) {
                    c as u8 + 32
                } else {
                    c as u8
                }
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
        assert!(s.flags(b"x0000000000000", &mut scratch));
        assert!(!s.flags(b"", &mut scratch));
    }

    #[test]
    fn refuses_tables_of_the_wrong_size() {
        assert!(Screen::new(&[0; 10], &[0; 65_536], vec![]).is_err());
        assert!(Screen::new(&[0; 256], &[0; 10], vec![]).is_err());
    }
}
