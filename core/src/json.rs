//! A strict JSON object scanner for the fast road: validates one line, writes it compact, and
//! records where each top-level member is.
//!
//! It accepts a deliberately narrow subset of what orjson accepts, so that whatever it accepts
//! means the same thing to both: no `\u` escapes, no escaped keys, no exponents and no number
//! longer than 18 characters (always within orjson's integer range), no duplicate keys at any
//! depth, nesting at most `MAX_DEPTH`. Anything else returns `None` and the line takes the
//! Python road, which is the reference.

pub const MAX_DEPTH: usize = 64;

/// Bytes that end a plain run inside a string: the quote, a backslash, control characters.
const STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};
const MAX_NUMBER: usize = 18;

/// What a top-level value is (the fast-path checks need to know a few of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    Num,
    Bool,
    Null,
    Obj,
    Arr,
}

/// One top-level member: its key (as in the source: keys never hold escapes here) and its value's
/// range in the compact output.
#[derive(Clone, Debug)]
pub struct Member {
    pub key: (usize, usize),
    pub value: (usize, usize),
    pub kind: Kind,
}

/// A scanned object: `compact` holds `{...}` without insignificant whitespace.
#[derive(Default)]
pub struct Scanned {
    pub compact: Vec<u8>,
    pub members: Vec<Member>,
    /// The top-level keys by hash (open addressing, `EMPTY` = free, a power-of-two length at
    /// least twice the members): the render and the tap ask for a dozen keys per record, and
    /// the duplicate-key check asks for every key.
    slots: Vec<u32>,
    /// Keys of the nested objects being scanned, one run per open object (the duplicate check).
    nested: Vec<(usize, usize)>,
}

const EMPTY: u32 = u32::MAX;
const MIN_SLOTS: usize = 64;

fn key_hash(key: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for &b in key {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h as usize
}

/// The top-level members and their hash index, as `Scanner::object` fills them.
struct TopKeys<'a> {
    members: &'a mut Vec<Member>,
    slots: &'a mut Vec<u32>,
}

impl TopKeys<'_> {
    /// Whether `key` (in `out`) is already a member.
    fn has(&self, out: &[u8], key: &[u8]) -> bool {
        find(self.members, self.slots, out, key).is_some()
    }

    fn push(&mut self, out: &[u8], member: Member) {
        if 2 * (self.members.len() + 1) > self.slots.len() {
            let size = (self.slots.len() * 2).max(MIN_SLOTS);
            self.slots.clear();
            self.slots.resize(size, EMPTY);
            for i in 0..self.members.len() {
                let (a, b) = self.members[i].key;
                place(self.slots, &out[a..b], i);
            }
        }
        let (a, b) = member.key;
        place(self.slots, &out[a..b], self.members.len());
        self.members.push(member);
    }
}

fn place(slots: &mut [u32], key: &[u8], index: usize) {
    let mask = slots.len() - 1;
    let mut at = key_hash(key) & mask;
    while slots[at] != EMPTY {
        at = (at + 1) & mask;
    }
    slots[at] = index as u32;
}

fn find<'m>(members: &'m [Member], slots: &[u32], out: &[u8], key: &[u8]) -> Option<&'m Member> {
    if slots.is_empty() {
        return None;
    }
    let mask = slots.len() - 1;
    let mut at = key_hash(key) & mask;
    loop {
        let i = slots[at];
        if i == EMPTY {
            return None;
        }
        let m = &members[i as usize];
        if &out[m.key.0..m.key.1] == key {
            return Some(m);
        }
        at = (at + 1) & mask;
    }
}

impl Scanned {
    pub fn key(&self, m: &Member) -> &[u8] {
        &self.compact[m.key.0..m.key.1]
    }
    pub fn value(&self, m: &Member) -> &[u8] {
        &self.compact[m.value.0..m.value.1]
    }
    pub fn get(&self, key: &[u8]) -> Option<&Member> {
        find(&self.members, &self.slots, &self.compact, key)
    }
}

struct Scanner<'a> {
    src: &'a [u8],
    pos: usize,
    out: &'a mut Vec<u8>,
    nested: &'a mut Vec<(usize, usize)>,
}

/// Scan `line` into `into` (cleared first). `None`: not an object the fast road can vouch for.
pub fn scan_object(line: &[u8], into: &mut Scanned) -> Option<()> {
    into.compact.clear();
    into.members.clear();
    into.nested.clear();
    if !into.slots.is_empty() {
        into.slots.fill(EMPTY);
    }
    let mut s = Scanner {
        src: line,
        pos: 0,
        out: &mut into.compact,
        nested: &mut into.nested,
    };
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    let mut top = TopKeys {
        members: &mut into.members,
        slots: &mut into.slots,
    };
    s.object(0, Some(&mut top))?;
    s.ws();
    if s.pos != line.len() {
        return None;
    }
    Some(())
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Option<Kind> {
        match self.peek()? {
            b'{' => self.object(depth + 1, None).map(|_| Kind::Obj),
            b'[' => self.array(depth + 1).map(|_| Kind::Arr),
            b'"' => self.string().map(|_| Kind::Str),
            b't' => self.literal(b"true").map(|_| Kind::Bool),
            b'f' => self.literal(b"false").map(|_| Kind::Bool),
            b'n' => self.literal(b"null").map(|_| Kind::Null),
            b'-' | b'0'..=b'9' => self.number().map(|_| Kind::Num),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.src[self.pos..].starts_with(word) {
            self.out.extend_from_slice(word);
            self.pos += word.len();
            Some(())
        } else {
            None
        }
    }

    fn number(&mut self) -> Option<()> {
        let start = self.pos;
        let src = self.src;
        let mut p = self.pos;
        if src.get(p) == Some(&b'-') {
            p += 1;
        }
        match src.get(p)? {
            b'0' => p += 1,
            b'1'..=b'9' => {
                while matches!(src.get(p), Some(b'0'..=b'9')) {
                    p += 1;
                }
            }
            _ => return None,
        }
        if src.get(p) == Some(&b'.') {
            p += 1;
            let digits = p;
            while matches!(src.get(p), Some(b'0'..=b'9')) {
                p += 1;
            }
            if p == digits {
                return None;
            }
        }
        if matches!(src.get(p), Some(b'e' | b'E')) || p - start > MAX_NUMBER {
            return None; // valid JSON, but orjson's reading of it is left to the reference road
        }
        self.out.extend_from_slice(&src[start..p]);
        self.pos = p;
        Some(())
    }

    /// A string, copied with its quotes; returns the range of its contents in the output.
    fn string(&mut self) -> Option<(usize, usize)> {
        let src = self.src;
        let mut p = self.pos + 1;
        loop {
            while p < src.len() && !STRING_STOP[src[p] as usize] {
                p += 1;
            }
            match *src.get(p)? {
                b'"' => break,
                b'\\' => match *src.get(p + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => p += 2,
                    _ => return None, // \u (or an invalid escape): the reference road decides
                },
                c if c < 0x20 => return None,
                _ => p += 1,
            }
        }
        let body = &src[self.pos + 1..p];
        if !body.is_ascii() && std::str::from_utf8(body).is_err() {
            return None; // not UTF-8: the reference road decodes it with replacement and tags it
        }
        let begin = self.out.len() + 1;
        self.out.extend_from_slice(&src[self.pos..=p]);
        self.pos = p + 1;
        Some((begin, self.out.len() - 1))
    }

    fn object(&mut self, depth: usize, mut top: Option<&mut TopKeys>) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.pos += 1;
        self.out.push(b'{');
        let keys_from = self.nested.len(); // this object's keys, when nested
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            self.out.push(b'}');
            return Some(());
        }
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            let name = &self.out[key.0..key.1];
            let repeated = match top.as_deref() {
                Some(top) => top.has(self.out, name),
                None => self.nested[keys_from..]
                    .iter()
                    .any(|k| &self.out[k.0..k.1] == name),
            };
            if repeated || name.contains(&b'\\') {
                return None; // an escaped or repeated key: the reference road decides
            }
            if top.is_none() {
                self.nested.push(key);
            }
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.pos += 1;
            self.out.push(b':');
            self.ws();
            let vstart = self.out.len();
            let kind = self.value(depth)?;
            if let Some(top) = top.as_deref_mut() {
                let member = Member {
                    key,
                    value: (vstart, self.out.len()),
                    kind,
                };
                top.push(self.out, member);
            }
            self.ws();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    self.out.push(b',');
                    self.ws();
                }
                b'}' => {
                    self.pos += 1;
                    self.out.push(b'}');
                    self.nested.truncate(keys_from);
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.pos += 1;
        self.out.push(b'[');
        self.ws();
        if self.peek()? == b']' {
            self.pos += 1;
            self.out.push(b']');
            return Some(());
        }
        loop {
            self.value(depth)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    self.out.push(b',');
                    self.ws();
                }
                b']' => {
                    self.pos += 1;
                    self.out.push(b']');
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// Append `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(line: &str) -> Option<String> {
        let mut s = Scanned::default();
        scan_object(line.as_bytes(), &mut s)?;
        Some(String::from_utf8(s.compact).unwrap())
    }

    #[test]
    fn writes_compact_and_finds_members() {
        let mut s = Scanned::default();
        scan_object(br#" { "a" : [1, 2.5, {"b": null}], "c":"x\"y" } "#, &mut s).unwrap();
        assert_eq!(s.compact, br#"{"a":[1,2.5,{"b":null}],"c":"x\"y"}"#);
        let c = s.get(b"c").unwrap();
        assert_eq!(s.value(c), br#""x\"y""#);
        assert_eq!(c.kind, Kind::Str);
    }

    #[test]
    fn leaves_what_it_cannot_vouch_for_to_the_reference() {
        for bad in [
            r#"{"a":"\u0041"}"#,
            r#"{"a":1e3}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"o":{"k":1,"k":2}}"#,
            r#"{"a":12345678901234567890}"#,
            r#"{"a":01}"#,
            r#"{"a":1,}"#,
            r#"[1]"#,
            r#"{"a":1} x"#,
            "{\"a\":\"tab\there\"}",
        ] {
            assert_eq!(compact(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_are_found_and_repeats_refused_past_the_first_table_size() {
        let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
        let body: Vec<String> = keys.iter().map(|k| format!("\"{k}\":1")).collect();
        let line = format!("{{{}}}", body.join(","));
        let mut s = Scanned::default();
        scan_object(line.as_bytes(), &mut s).unwrap();
        assert!(keys.iter().all(|k| s.get(k.as_bytes()).is_some()));
        assert!(s.get(b"k200").is_none() && s.get(b"").is_none());
        let repeated = format!("{{{},\"k150\":2}}", body.join(","));
        assert!(scan_object(repeated.as_bytes(), &mut s).is_none());
        // the table of a long line does not leak into the next, short one
        scan_object(br#"{"a":1}"#, &mut s).unwrap();
        assert!(s.get(b"k1").is_none() && s.get(b"a").is_some());
    }

    #[test]
    fn sibling_objects_may_share_keys_but_not_repeat_them() {
        assert!(compact(r#"{"a":{"k":1},"b":{"k":2},"k":3}"#).is_some());
        assert!(compact(r#"{"a":{"k":1,"o":{"k":2}},"b":[{"k":1},{"k":2}]}"#).is_some());
        assert!(compact(r#"{"a":{"x":{"k":1},"k":2,"k":3}}"#).is_none());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let line = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(compact(&line), None);
    }

    #[test]
    fn strings_are_escaped_for_json() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\n\u{1}é");
        assert_eq!(out, b"\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"");
    }
}
