//! NDJSON records -> Fluentd PackedForward entries: `[EventTime, record]` in msgpack, grouped
//! by tag and cut into chunks, the bytes `EntryPacker.chunks` (the Python reference) makes of
//! the same records.
//!
//! Values are packed as ormsgpack/msgpack-python pack the objects orjson decodes: the smallest
//! unsigned form for integers >= 0, the smallest signed form below, floats as float 64, str8
//! and up for text. The EventTime comes from `@timestamp` when it is the tailer's form
//! (`YYYY-MM-DDTHH:MM:SS[.digits]Z`, a real date, seconds within 32 bits); any other value is
//! handed to the caller (the Python parser, which also decides "now" for unreadable ones).
//! Tags are the caller's too: it maps each distinct tuple of the fields the tag template reads
//! to a group (id, tag); groups come out in id order, records in file order within a group.

use std::collections::HashMap;

use crate::tokens::{lines, unescape, Parsed, Tok};

/// fixarray(2) + fixext8 with ext type 0 (EventTime).
pub const ENTRY_PREFIX: [u8; 3] = [0x92, 0xd7, 0x00];

/// The raw JSON values a record's tag depends on (`None`: absent).
pub struct TagFields<'a> {
    pub kind: Option<&'a [u8]>,
    pub has_status: bool,
    pub has_method: bool,
    pub level: Option<&'a [u8]>,
    pub plain: Vec<Option<&'a [u8]>>,
}

/// One chunk of entries of one tag.
#[derive(Debug, PartialEq)]
pub struct Chunk {
    pub group: u64,
    pub entries: Vec<u8>,
    pub count: usize,
}

/// How big chunks get (the Python packer's `chunk_bytes` / `chunk_records`).
pub struct Limits {
    pub bytes: usize,
    pub records: usize,
}

/// Append `v` as msgpack the way msgpack-python packs a Python int.
pub fn write_int(out: &mut Vec<u8>, v: i128) {
    if v >= 0 {
        let u = v as u64;
        if u < 0x80 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else {
        let s = v as i64;
        if s >= -32 {
            out.push(s as i8 as u8);
        } else if s >= -128 {
            out.extend_from_slice(&[0xd0, s as i8 as u8]);
        } else if s >= -32768 {
            out.push(0xd1);
            out.extend_from_slice(&(s as i16).to_be_bytes());
        } else if s >= -(1 << 31) {
            out.push(0xd2);
            out.extend_from_slice(&(s as i32).to_be_bytes());
        } else {
            out.push(0xd3);
            out.extend_from_slice(&s.to_be_bytes());
        }
    }
}

fn write_head(out: &mut Vec<u8>, n: usize, fix: u8, fix_max: usize, c16: u8, c32: u8) {
    if n <= fix_max {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(c16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(c32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// Append UTF-8 text as a msgpack str.
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// Append the record tokenized in `p` (from `line`) as msgpack.
pub fn write_record(out: &mut Vec<u8>, line: &[u8], p: &Parsed, scratch: &mut Vec<u8>) {
    for tok in &p.toks {
        match *tok {
            Tok::Obj(n) => write_head(out, n, 0x80, 15, 0xde, 0xdf),
            Tok::Arr(n) => write_head(out, n, 0x90, 15, 0xdc, 0xdd),
            Tok::Str(a, b, false) => write_str(out, &line[a..b]),
            Tok::Str(a, b, true) => {
                scratch.clear();
                unescape(&line[a..b], scratch).expect("validated while parsing");
                write_str(out, scratch);
            }
            Tok::Int(v) => write_int(out, v as i128),
            Tok::UInt(v) => write_int(out, v as i128),
            Tok::Float(f) => {
                out.push(0xcb);
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Tok::Bool(b) => out.push(if b { 0xc3 } else { 0xc2 }),
            Tok::Null => out.push(0xc0),
        }
    }
}

fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        s.iter()
            .fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0')),
    )
}

/// (seconds, nanoseconds) of a `@timestamp` JSON value in the tailer's form, `None` otherwise.
pub fn event_time(raw: &[u8]) -> Option<(u32, u32)> {
    if raw.len() < 22 || raw[0] != b'"' || raw.contains(&b'\\') {
        return None;
    }
    event_time_text(&raw[1..raw.len() - 1])
}

/// (seconds, nanoseconds) of timestamp text in the tailer's form
/// (`YYYY-MM-DDTHH:MM:SS[.digits]Z`, a real date, seconds within 32 bits), `None` otherwise.
pub fn event_time_text(t: &[u8]) -> Option<(u32, u32)> {
    if t.len() < 20 {
        return None;
    }
    if t[4] != b'-' || t[7] != b'-' || t[10] != b'T' || t[13] != b':' || t[16] != b':' {
        return None;
    }
    if *t.last()? != b'Z' {
        return None;
    }
    let nanos = match t.len() {
        20 => 0,
        n if n > 21 && t[19] == b'.' => {
            let frac = &t[20..n - 1];
            let kept = &frac[..frac.len().min(9)];
            digits(frac)?;
            digits(kept)? * 10u64.pow(9 - kept.len() as u32)
        }
        _ => return None,
    };
    let (y, mo, d) = (digits(&t[0..4])?, digits(&t[5..7])?, digits(&t[8..10])?);
    let (h, mi, s) = (
        digits(&t[11..13])?,
        digits(&t[14..16])?,
        digits(&t[17..19])?,
    );
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let dim = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    if d < 1 || d > dim[mo as usize] + u64::from(mo == 2 && leap) {
        return None;
    }
    // days since 1970-01-01 of a proleptic Gregorian date (the civil-to-days formula)
    let (y, m) = (y as i64 - i64::from(mo <= 2), mo as i64);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d as i64 - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + (h * 3600 + mi * 60 + s) as i64;
    if !(0..1i64 << 32).contains(&secs) {
        return None;
    }
    Some((secs as u32, nanos as u32))
}

/// Builds entry chunks; `plain` names the tag template's fields read straight from a record.
pub struct EntryEncoder {
    pub plain: Vec<Vec<u8>>,
    parsed: Parsed,
    scratch: Vec<u8>,
}

impl EntryEncoder {
    pub fn new(plain: Vec<Vec<u8>>) -> Self {
        EntryEncoder {
            plain,
            parsed: Parsed::default(),
            scratch: Vec::new(),
        }
    }

    /// Chunks of `data` (records, each ending in a newline). `time` answers the 8 EventTime
    /// bytes of a timestamp this module does not read itself (`None`: absent); `group` the group
    /// id of a tag tuple. `Ok(None)`: a record must take the Python road.
    pub fn encode<E>(
        &mut self,
        data: &[u8],
        limits: &Limits,
        time: &mut impl FnMut(Option<&[u8]>) -> Result<[u8; 8], E>,
        group: &mut impl FnMut(&TagFields) -> Result<u64, E>,
    ) -> Result<Option<Vec<Chunk>>, E> {
        if data.is_empty() {
            return Ok(Some(Vec::new()));
        }
        if data.last() != Some(&b'\n') {
            return Ok(None);
        }
        // every entry packed once, in file order; then gathered per group
        let mut packed: Vec<u8> = Vec::with_capacity(data.len() + data.len() / 8);
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut groups: Vec<u64> = Vec::new();
        let mut ids: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut key = Vec::new();
        for line in lines(data) {
            if self.parsed.parse(line).is_none() {
                return Ok(None);
            }
            let p = &self.parsed;
            // one pass over the top-level members for the ones the time and the tag read
            let (mut ts, mut kind, mut level) = (None, None, None);
            let (mut has_status, mut has_method) = (false, false);
            let mut plain: Vec<Option<&[u8]>> = vec![None; self.plain.len()];
            let mut buf = Vec::new();
            for m in &p.members {
                let value = &line[m.val_start..m.val_end];
                let name = p.text(line, m.key, &mut buf);
                match name {
                    b"@timestamp" => ts = Some(value),
                    b"event.kind" => kind = Some(value),
                    b"status" => has_status = true,
                    b"method" => has_method = true,
                    b"level" => level = Some(value),
                    _ => {}
                }
                for (slot, f) in plain.iter_mut().zip(&self.plain) {
                    if name == f.as_slice() {
                        *slot = Some(value);
                    }
                }
            }
            let start = packed.len();
            packed.extend_from_slice(&ENTRY_PREFIX);
            match ts.and_then(event_time) {
                Some((s, n)) => {
                    packed.extend_from_slice(&s.to_be_bytes());
                    packed.extend_from_slice(&n.to_be_bytes());
                }
                None => packed.extend_from_slice(&time(ts)?),
            }
            let fields = TagFields {
                kind,
                has_status,
                has_method,
                level,
                plain,
            };
            key.clear();
            let flags = [fields.has_status as u8, fields.has_method as u8];
            for part in [fields.kind, Some(&flags[..]), fields.level]
                .into_iter()
                .chain(fields.plain.iter().copied())
            {
                match part {
                    Some(v) => {
                        key.push(1);
                        key.extend_from_slice(v);
                    }
                    None => key.push(0),
                }
                key.push(0xff);
            }
            let gid = match ids.get(&key) {
                Some(&g) => g,
                None => {
                    let g = group(&fields)?;
                    ids.insert(key.clone(), g);
                    g
                }
            };
            write_record(&mut packed, line, p, &mut self.scratch);
            spans.push((start, packed.len()));
            groups.push(gid);
        }
        let mut order: Vec<usize> = (0..spans.len()).collect();
        order.sort_by_key(|&i| groups[i]); // stable: file order within a group
        let mut chunks = Vec::new();
        let first_target = limits.records.max(1);
        let mut at = 0;
        while at < order.len() {
            let gid = groups[order[at]];
            let end = at
                + order[at..]
                    .iter()
                    .take_while(|&&i| groups[i] == gid)
                    .count();
            let mut target = first_target;
            let mut start = at;
            while start < end {
                let stop = (start + target).min(end);
                let mut entries = Vec::new();
                for &i in &order[start..stop] {
                    let (a, b) = spans[i];
                    entries.extend_from_slice(&packed[a..b]);
                }
                let count = stop - start;
                target = (count as u128 * limits.bytes as u128 / entries.len().max(1) as u128)
                    .min(limits.records as u128)
                    .max(1) as usize;
                chunks.push(Chunk {
                    group: gid,
                    entries,
                    count,
                });
                start = stop;
            }
            at = end;
        }
        Ok(Some(chunks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_take_the_smallest_form() {
        let cases: [(i128, &[u8]); 8] = [
            (0, &[0]),
            (127, &[0x7f]),
            (128, &[0xcc, 0x80]),
            (65536, &[0xce, 0, 1, 0, 0]),
            (-1, &[0xff]),
            (-33, &[0xd0, 0xdf]),
            (-129, &[0xd1, 0xff, 0x7f]),
            (
                u64::MAX as i128,
                &[0xcf, 255, 255, 255, 255, 255, 255, 255, 255],
            ),
        ];
        for (v, want) in cases {
            let mut out = Vec::new();
            write_int(&mut out, v);
            assert_eq!(out, want, "{v}");
        }
    }

    #[test]
    fn event_time_of_the_tailer_form_only() {
        assert_eq!(
            event_time(br#""1970-01-01T00:00:01.5Z""#),
            Some((1, 500_000_000))
        );
        assert_eq!(
            event_time(br#""2026-11-24T07:15:27.0291671234Z""#),
            Some((1_795_504_527, 29_167_123))
        );
        assert_eq!(
            event_time(br#""2024-02-29T00:00:00Z""#),
            Some((1_709_164_800, 0))
        );
        for odd in [
            r#""2026-02-29T00:00:00Z""#,
            r#""2026-11-24T07:15:60Z""#,
            r#""2026-11-24T07:15:27.Z""#,
            r#""2026-11-24T07:15:27+00:00""#,
            r#""1969-12-31T23:59:59Z""#,
            r#""2106-02-07T06:28:16Z""#,
            "1700000000",
        ] {
            assert_eq!(event_time(odd.as_bytes()), None, "{odd}");
        }
    }

    #[test]
    fn groups_in_id_order_and_chunks_by_size() {
        let data = b"{\"@timestamp\":\"1970-01-01T00:00:01Z\",\"s\":\"b\"}\n\
            {\"s\":\"a\"}\n{\"s\":\"b\",\"n\":1}\n";
        let mut enc = EntryEncoder::new(vec![b"s".to_vec()]);
        let mut times = 0;
        let chunks = enc
            .encode(
                data,
                &Limits {
                    bytes: 1 << 20,
                    records: 1,
                },
                &mut |ts| {
                    assert!(ts.is_none());
                    times += 1;
                    Ok::<_, ()>([0, 0, 0, 9, 0, 0, 0, 0])
                },
                &mut |f| Ok(if f.plain[0] == Some(b"\"a\"") { 0 } else { 1 }),
            )
            .unwrap()
            .unwrap();
        assert_eq!(times, 2);
        let groups: Vec<u64> = chunks.iter().map(|c| c.group).collect();
        assert_eq!(groups, vec![0, 1, 1]);
        assert_eq!(
            chunks[0].entries,
            [
                &ENTRY_PREFIX[..],
                &[0, 0, 0, 9, 0, 0, 0, 0],
                b"\x81\xa1s\xa1a"
            ]
            .concat()
        );
        assert_eq!(
            chunks[1].entries,
            [
                &ENTRY_PREFIX[..],
                &[0, 0, 0, 1, 0, 0, 0, 0],
                b"\x82\xaa@timestamp\xb41970-01-01T00:00:01Z\xa1s\xa1b"
            ]
            .concat()
        );
    }
}
