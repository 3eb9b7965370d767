//! The incremental line splitter against a plain reference, in arbitrary chunkings.
//!
//! Input: byte 0 picks `max_line` (small, so over-long lines are common), byte 1 seeds the chunk
//! sizes, byte 2 the starting offset; the rest is the file. Invariants: the lines tile the file
//! exactly (offsets), every chunking gives the same lines as one whole read, and texts and tags
//! are exactly what `reference` computes line by line.
//!
//! Shared by the fuzz target and the core's stable replay test (`core/tests/fuzz_replay.rs`).

use _core::split::{Line, Splitter, Tag};

/// The splitter's contract, written out per line: split at `\n` (a last line without one
/// counts), drop NULs (`_nul_bytes`), keep the first `max_line` bytes (`_truncated`), decode
/// with replacement (`_invalid_utf8`), drop one trailing CR.
fn reference(data: &[u8], base: u64, max_line: usize) -> Vec<Line> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let (raw, end) = match data[pos..].iter().position(|&b| b == b'\n') {
            Some(i) => (&data[pos..pos + i], pos + i + 1),
            None => (&data[pos..], data.len()),
        };
        let mut tags = Vec::new();
        let mut bytes: Vec<u8> = raw.iter().copied().filter(|&b| b != 0).collect();
        if bytes.len() != raw.len() {
            tags.push(Tag::NulBytes);
        }
        let cut = bytes.len() > max_line;
        bytes.truncate(max_line);
        let mut text = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                tags.push(Tag::InvalidUtf8);
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        if cut {
            tags.push(Tag::Truncated);
        }
        if text.ends_with('\r') {
            text.pop();
        }
        out.push(Line {
            start: base + pos as u64,
            end: base + end as u64,
            text,
            tags,
        });
        pos = end;
    }
    out
}

/// Feed `data` in the given chunk sizes (cycled), checking the resume point after every feed.
fn run(data: &[u8], base: u64, max_line: usize, sizes: &[usize]) -> Vec<Line> {
    let mut s = Splitter::new(base, max_line);
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut k = 0usize;
    while at < data.len() {
        let n = sizes[k % sizes.len()].min(data.len() - at);
        k += 1;
        s.feed(&data[at..at + n], &mut out);
        at += n;
        assert_eq!(s.offset, base + at as u64, "offset after a feed");
        let done = out.last().map_or(base, |l| l.end);
        assert_eq!(
            s.consumed(),
            done,
            "resume point = end of the last line out"
        );
        assert!(s.consumed() <= s.offset);
        assert_eq!(s.pending_bytes(), s.offset - s.consumed());
    }
    s.finish(&mut out);
    assert_eq!(
        s.consumed(),
        base + data.len() as u64,
        "finish emits everything"
    );
    out
}

/// One fuzz input: panics when an invariant breaks.
pub fn check(input: &[u8]) {
    if input.len() < 3 {
        return;
    }
    let max_line = if input[0] < 0xC0 {
        1 + (input[0] % 48) as usize
    } else {
        1 << 20
    };
    let base = u64::from(input[2]) * 4093;
    let data = &input[3..];
    let want = reference(data, base, max_line);
    // tiling
    let mut at = base;
    for l in &want {
        assert_eq!(l.start, at);
        assert!(l.end > l.start);
        at = l.end;
    }
    assert_eq!(at, base + data.len() as u64);

    let whole = run(data, base, max_line, &[usize::MAX]);
    assert_eq!(whole, want, "one read");
    let bytewise = run(data, base, max_line, &[1]);
    assert_eq!(bytewise, want, "byte by byte");
    // chunk sizes from a small generator seeded by byte 1
    let mut x = u32::from(input[1]) | 0x9E37_0000;
    let sizes: Vec<usize> = (0..16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            1 + (x % (2 * max_line.min(64) as u32 + 3)) as usize
        })
        .collect();
    let chunked = run(data, base, max_line, &sizes);
    assert_eq!(chunked, want, "chunked {sizes:?}");
}
