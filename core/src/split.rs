//! Bytes appended to a file -> complete lines with byte offsets, decoded and tagged.
//!
//! The same contract as `logpipe/tail/lines.py` (the Python splitter stays the reference the
//! tests compare against): a partial last line is held back until its newline arrives (or
//! `finish` at EOF); an over-long line keeps its first `max_line` bytes and is tagged
//! `_truncated` while the rest is skipped up to its newline; NUL bytes are removed (tagged
//! `_nul_bytes`); invalid UTF-8 is replaced (tagged `_invalid_utf8`); one trailing CR is
//! dropped. Tags keep the Python splitter's order, since they end up in records as a list.

/// A marker on a line, in the order the Python splitter lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    NulBytes,
    InvalidUtf8,
    Truncated,
}

impl Tag {
    pub fn name(self) -> &'static str {
        match self {
            Tag::NulBytes => "_nul_bytes",
            Tag::InvalidUtf8 => "_invalid_utf8",
            Tag::Truncated => "_truncated",
        }
    }
}

/// One complete line: file offsets `start..end` (end is past its newline) and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub start: u64,
    pub end: u64,
    pub text: String,
    pub tags: Vec<Tag>,
}

/// Incremental splitter for one file, starting at byte `offset`.
pub struct Splitter {
    /// File offset just past the last byte fed.
    pub offset: u64,
    max_line: usize,
    part: Vec<u8>,
    part_start: u64,
    skipping: bool,
    head: Vec<u8>,
    head_nul: bool,
    part_removed: u64,
}

impl Splitter {
    pub fn new(offset: u64, max_line_bytes: usize) -> Self {
        Splitter {
            offset,
            max_line: max_line_bytes.max(1),
            part: Vec::new(),
            part_start: offset,
            skipping: false,
            head: Vec::new(),
            head_nul: false,
            part_removed: 0,
        }
    }

    /// Offset up to which every line has been emitted (a safe resume point).
    pub fn consumed(&self) -> u64 {
        self.part_start
    }

    pub fn pending_bytes(&self) -> u64 {
        self.offset - self.part_start
    }

    /// Take the next bytes of the file; append the lines they complete to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Line>) {
        if data.is_empty() {
            return;
        }
        if self.skipping {
            let nl = memchr(b'\n', data);
            let upto = nl.unwrap_or(data.len());
            if data[..upto].contains(&0) {
                self.head_nul = true;
            }
            let Some(nl) = nl else {
                self.offset += data.len() as u64;
                return;
            };
            let end = self.offset + nl as u64 + 1;
            self.emit_truncated(out, end);
            data = &data[nl + 1..];
            self.offset = end;
            if data.is_empty() {
                return;
            }
        }
        let mut buf = std::mem::take(&mut self.part);
        buf.extend_from_slice(data);
        let mut base = self.part_start;
        let first_extra = self.part_removed;
        self.offset += data.len() as u64;
        let (mut rest, mut removed) = match memrchr(b'\n', &buf) {
            Some(last_nl) => {
                split_region(&buf[..last_nl], base, self.max_line, out, first_extra);
                base += last_nl as u64 + 1 + first_extra;
                (buf[last_nl + 1..].to_vec(), 0)
            }
            None => (buf, first_extra),
        };
        self.part_start = base;
        if rest.len() > self.max_line && rest.contains(&0) {
            // A copytruncate hole: drop its NULs now (offsets are tracked apart from the bytes).
            let before = rest.len();
            rest.retain(|&b| b != 0);
            removed += (before - rest.len()) as u64;
        }
        if rest.len() > self.max_line {
            self.skipping = true;
            rest.truncate(self.max_line);
            self.head = rest;
            self.head_nul = removed > 0;
            self.part = Vec::new();
            self.part_removed = 0;
        } else {
            self.part = rest;
            self.part_removed = removed;
        }
    }

    /// EOF of a file read once: emit the unfinished last line as it is.
    pub fn finish(&mut self, out: &mut Vec<Line>) {
        if self.skipping {
            let end = self.offset;
            self.emit_truncated(out, end);
        } else if !self.part.is_empty() || self.part_removed > 0 {
            let part = std::mem::take(&mut self.part);
            let before = out.len();
            split_region(
                &part,
                self.part_start,
                self.max_line,
                out,
                self.part_removed,
            );
            if out.len() > before {
                let last = out.len() - 1;
                out[last].end = self.offset; // no newline after the last line
            }
            self.part_removed = 0;
            self.part_start = self.offset;
        }
    }

    fn emit_truncated(&mut self, out: &mut Vec<Line>, end: u64) {
        let head = std::mem::take(&mut self.head);
        let (text, mut tags) = decode_one(&head);
        if self.head_nul && !tags.contains(&Tag::NulBytes) {
            tags.insert(0, Tag::NulBytes);
        }
        tags.push(Tag::Truncated);
        out.push(Line {
            start: self.part_start,
            end,
            text,
            tags,
        });
        self.skipping = false;
        self.part = Vec::new();
        self.part_start = end;
    }
}

fn decode_one(raw: &[u8]) -> (String, Vec<Tag>) {
    let mut tags = Vec::new();
    let cleaned;
    let mut raw = raw;
    if raw.contains(&0) {
        cleaned = raw.iter().copied().filter(|&b| b != 0).collect::<Vec<u8>>();
        raw = &cleaned;
        tags.push(Tag::NulBytes);
    }
    let mut text = match std::str::from_utf8(raw) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            tags.push(Tag::InvalidUtf8);
            String::from_utf8_lossy(raw).into_owned()
        }
    };
    if text.ends_with('\r') {
        text.pop();
    }
    (text, tags)
}

/// Split `region` (whole lines without the final newline) starting at file offset `base`.
/// `first_extra` NUL bytes were already removed from the first line: its span in the file is
/// that much longer than its bytes here (and it is tagged).
fn split_region(region: &[u8], base: u64, max_line: usize, out: &mut Vec<Line>, first_extra: u64) {
    let mut start = base;
    for (i, raw) in region.split(|&b| b == b'\n').enumerate() {
        let span = raw.len() as u64 + if i == 0 { first_extra } else { 0 };
        let end = start + span + 1;
        let mut tags = Vec::new();
        let cleaned;
        let mut raw = raw;
        if raw.contains(&0) {
            // before the length check: a NUL run is not content
            cleaned = raw.iter().copied().filter(|&b| b != 0).collect::<Vec<u8>>();
            raw = &cleaned;
            tags.push(Tag::NulBytes);
        }
        let cut = raw.len() > max_line;
        if cut {
            raw = &raw[..max_line];
        }
        let (text, more) = decode_one(raw);
        tags.extend(more);
        if cut {
            // last, as for a line cut across reads: the order must not depend on the chunking
            tags.push(Tag::Truncated);
        }
        if i == 0 && first_extra > 0 && !tags.contains(&Tag::NulBytes) {
            tags.insert(0, Tag::NulBytes);
        }
        out.push(Line {
            start,
            end,
            text,
            tags,
        });
        start = end;
    }
}

pub fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn memrchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().rposition(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&[u8]], max: usize) -> Vec<Line> {
        let mut s = Splitter::new(0, max);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut out);
        }
        s.finish(&mut out);
        out
    }

    #[test]
    fn lines_keep_offsets_across_chunks() {
        let out = split_all(&[b"ab", b"c\nde\r\n", b"f"], 100);
        let got: Vec<_> = out
            .iter()
            .map(|l| (l.start, l.end, l.text.as_str()))
            .collect();
        assert_eq!(got, vec![(0, 4, "abc"), (4, 8, "de"), (8, 9, "f")]);
    }

    #[test]
    fn over_long_line_is_cut_and_tagged() {
        let out = split_all(&[b"0123456789", b"abc\nok\n"], 4);
        assert_eq!(out[0].text, "0123");
        assert_eq!(out[0].tags, vec![Tag::Truncated]);
        assert_eq!((out[0].start, out[0].end), (0, 14));
        assert_eq!(out[1].text, "ok");
    }

    #[test]
    fn nul_and_invalid_utf8_are_tagged_in_order() {
        let out = split_all(&[b"a\x00\xffb\n"], 100);
        assert_eq!(out[0].text, "a\u{fffd}b");
        assert_eq!(out[0].tags, vec![Tag::NulBytes, Tag::InvalidUtf8]);
    }

    #[test]
    fn copytruncate_hole_is_dropped_but_counted_in_offsets() {
        let mut data = vec![0u8; 50];
        data.extend_from_slice(b"x\n");
        let out = split_all(&[&data], 10);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "x");
        assert_eq!((out[0].start, out[0].end), (0, 52));
        assert_eq!(out[0].tags, vec![Tag::NulBytes]);
    }
}
