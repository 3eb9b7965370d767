//! A full JSON tokenizer for the sink encoders: one NDJSON record -> a flat token list, read the
//! way orjson reads it (so what the encoders make of a line is what Python would make of
//! `orjson.loads(line)`).
//!
//! Unlike `json::scan_object` (the tail road's narrow fast path), it takes all of JSON: `\u`
//! escapes with surrogate pairs, exponents, integers of any length (beyond 64 bits they become
//! floats, as orjson makes them). It refuses what orjson refuses or reads differently from the
//! text: invalid UTF-8, lone surrogates, non-finite numbers, nesting deeper than orjson's
//! limit, and duplicate keys (orjson keeps the last value at the first place: the encoders
//! leave such a record to the Python road rather than mirror that).

use std::collections::HashSet;

/// orjson's nesting limit for `loads`.
pub const MAX_DEPTH: usize = 1024;

/// One token. Containers give their member count; an object's members follow as key, value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tok {
    Obj(usize),
    Arr(usize),
    /// A string: the range of its contents (between the quotes) and whether it holds escapes.
    Str(usize, usize, bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Null,
}

/// A top-level member of the record: its key token, where the pair starts (the key's quote),
/// and its value's token and byte range.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    pub key: usize,
    pub pair_start: usize,
    pub val: usize,
    pub val_start: usize,
    pub val_end: usize,
}

/// A tokenized record: `toks[0]` is the top-level object.
#[derive(Default)]
pub struct Parsed {
    pub toks: Vec<Tok>,
    pub members: Vec<Member>,
    scratch: Vec<u8>,
}

impl Parsed {
    /// Tokenize one line (no newline); `None` when it is not one JSON object orjson reads as is.
    pub fn parse(&mut self, line: &[u8]) -> Option<()> {
        self.toks.clear();
        self.members.clear();
        std::str::from_utf8(line).ok()?;
        let mut p = Parser {
            src: line,
            pos: 0,
            toks: &mut self.toks,
            scratch: &mut self.scratch,
        };
        p.ws();
        if p.peek()? != b'{' {
            return None;
        }
        p.object(1, Some(&mut self.members))?;
        p.ws();
        (p.pos == line.len()).then_some(())
    }

    /// The decoded text of string token `i` of `line`, borrowed when it holds no escapes.
    pub fn text<'a>(&self, line: &'a [u8], i: usize, buf: &'a mut Vec<u8>) -> &'a [u8] {
        match self.toks[i] {
            Tok::Str(a, b, false) => &line[a..b],
            Tok::Str(a, b, true) => {
                buf.clear();
                unescape(&line[a..b], buf).expect("validated while parsing");
                buf
            }
            _ => b"",
        }
    }

    /// The top-level member named `key` (keys compared decoded).
    pub fn member(&self, line: &[u8], key: &[u8]) -> Option<&Member> {
        let mut buf = Vec::new();
        self.members.iter().find(|m| match self.toks[m.key] {
            Tok::Str(a, b, false) => &line[a..b] == key,
            _ => {
                let t = self.text(line, m.key, &mut buf);
                t == key
            }
        })
    }
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    toks: &'a mut Vec<Tok>,
    scratch: &'a mut Vec<u8>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1, None),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true", Tok::Bool(true)),
            b'f' => self.literal(b"false", Tok::Bool(false)),
            b'n' => self.literal(b"null", Tok::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], tok: Tok) -> Option<()> {
        if !self.src[self.pos..].starts_with(word) {
            return None;
        }
        self.pos += word.len();
        self.toks.push(tok);
        Some(())
    }

    fn number(&mut self) -> Option<()> {
        let src = self.src;
        let start = self.pos;
        let mut p = start;
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
        let mut float = false;
        if src.get(p) == Some(&b'.') {
            p += 1;
            let d = p;
            while matches!(src.get(p), Some(b'0'..=b'9')) {
                p += 1;
            }
            if p == d {
                return None;
            }
            float = true;
        }
        if matches!(src.get(p), Some(b'e' | b'E')) {
            p += 1;
            if matches!(src.get(p), Some(b'+' | b'-')) {
                p += 1;
            }
            let d = p;
            while matches!(src.get(p), Some(b'0'..=b'9')) {
                p += 1;
            }
            if p == d {
                return None;
            }
            float = true;
        }
        let text = std::str::from_utf8(&src[start..p]).ok()?;
        self.pos = p;
        let tok = if float {
            None
        } else if text.starts_with('-') {
            text.parse::<i64>().ok().map(Tok::Int)
        } else {
            text.parse::<u64>().ok().map(Tok::UInt)
        };
        let tok = match tok {
            Some(t) => t,
            None => {
                // a float, or an integer beyond 64 bits (orjson reads those as floats too)
                let f: f64 = text.parse().ok()?;
                if !f.is_finite() {
                    return None;
                }
                Tok::Float(f)
            }
        };
        self.toks.push(tok);
        Some(())
    }

    /// A string token; returns its index.
    fn string(&mut self) -> Option<usize> {
        let src = self.src;
        let a = self.pos + 1;
        let mut p = a;
        let mut esc = false;
        loop {
            let run = memchr::memchr2(b'"', b'\\', src.get(p..)?)?;
            if src[p..p + run].iter().any(|&b| b < 0x20) {
                return None;
            }
            p += run;
            if src[p] == b'"' {
                break;
            }
            esc = true;
            p += 2;
        }
        if esc {
            self.scratch.clear();
            unescape(&src[a..p], self.scratch)?;
        }
        self.pos = p + 1;
        self.toks.push(Tok::Str(a, p, esc));
        Some(self.toks.len() - 1)
    }

    fn object(&mut self, depth: usize, mut top: Option<&mut Vec<Member>>) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let at = self.toks.len();
        self.toks.push(Tok::Obj(0));
        self.pos += 1;
        self.ws();
        let mut keys: Vec<usize> = Vec::new();
        if self.peek()? != b'}' {
            loop {
                if self.peek()? != b'"' {
                    return None;
                }
                let pair_start = self.pos;
                let key = self.string()?;
                keys.push(key);
                self.ws();
                if self.peek()? != b':' {
                    return None;
                }
                self.pos += 1;
                self.ws();
                let val = self.toks.len();
                let val_start = self.pos;
                self.value(depth)?;
                if let Some(members) = top.as_deref_mut() {
                    members.push(Member {
                        key,
                        pair_start,
                        val,
                        val_start,
                        val_end: self.pos,
                    });
                }
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.pos += 1;
                        self.ws();
                    }
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        self.pos += 1;
        if self.has_duplicates(&keys) {
            return None;
        }
        self.toks[at] = Tok::Obj(keys.len());
        Some(())
    }

    fn has_duplicates(&mut self, keys: &[usize]) -> bool {
        if keys.len() < 2 {
            return false;
        }
        let src = self.src;
        let decoded = |i: usize| -> Vec<u8> {
            match self.toks[i] {
                Tok::Str(a, b, false) => src[a..b].to_vec(),
                Tok::Str(a, b, _) => {
                    let mut out = Vec::new();
                    unescape(&src[a..b], &mut out);
                    out
                }
                _ => Vec::new(),
            }
        };
        let any_escaped = keys
            .iter()
            .any(|&k| matches!(self.toks[k], Tok::Str(_, _, true)));
        if any_escaped {
            let mut seen = HashSet::new();
            return !keys.iter().all(|&k| seen.insert(decoded(k)));
        }
        let raw = |k: usize| match self.toks[k] {
            Tok::Str(a, b, _) => &src[a..b],
            _ => b"" as &[u8],
        };
        if keys.len() <= 16 {
            // a cheap fingerprint (length, first and last byte) first; full compares only on a match
            let print = |k: usize| {
                let n = raw(k);
                (n.len(), n.first().copied(), n.last().copied())
            };
            let prints: Vec<_> = keys.iter().map(|&k| print(k)).collect();
            for i in 1..keys.len() {
                for j in 0..i {
                    if prints[i] == prints[j] && raw(keys[i]) == raw(keys[j]) {
                        return true;
                    }
                }
            }
            return false;
        }
        let mut seen = HashSet::with_capacity(keys.len());
        !keys.iter().all(|&k| seen.insert(raw(k)))
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let at = self.toks.len();
        self.toks.push(Tok::Arr(0));
        self.pos += 1;
        self.ws();
        let mut n = 0;
        if self.peek()? != b']' {
            loop {
                self.value(depth)?;
                n += 1;
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.pos += 1;
                        self.ws();
                    }
                    b']' => break,
                    _ => return None,
                }
            }
        }
        self.pos += 1;
        self.toks[at] = Tok::Arr(n);
        Some(())
    }
}

/// The lines of NDJSON `data` (each ended by a newline; the final one is required).
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', data).map(move |end| {
        let line = &data[start..end];
        start = end + 1;
        line
    })
}

fn hex4(s: &[u8]) -> Option<u32> {
    if s.len() < 4 {
        return None;
    }
    let mut v = 0u32;
    for &c in &s[..4] {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// JSON string contents -> UTF-8 bytes appended to `out`; `None` on a bad escape or a lone
/// surrogate (orjson refuses both).
pub fn unescape(s: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            let run = s[i..]
                .iter()
                .position(|&b| b == b'\\')
                .unwrap_or(s.len() - i);
            out.extend_from_slice(&s[i..i + run]);
            i += run;
            continue;
        }
        let e = *s.get(i + 1)?;
        i += 2;
        let ch = match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(&s[i..])?;
                i += 4;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if s.get(i) != Some(&b'\\') || s.get(i + 1) != Some(&b'u') {
                        return None;
                    }
                    let lo = hex4(&s[i + 2..])?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..0xE000).contains(&hi) {
                    return None;
                } else {
                    hi
                };
                char::from_u32(code)?
            }
            _ => return None,
        };
        let mut b = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(line: &str) -> Option<Vec<Tok>> {
        let mut p = Parsed::default();
        p.parse(line.as_bytes())?;
        Some(p.toks.clone())
    }

    #[test]
    fn reads_json_as_orjson_does() {
        assert_eq!(
            toks(r#"{"a":[1,-2,1.5,1e2,true,null],"b":{}}"#).unwrap(),
            vec![
                Tok::Obj(2),
                Tok::Str(2, 3, false),
                Tok::Arr(6),
                Tok::UInt(1),
                Tok::Int(-2),
                Tok::Float(1.5),
                Tok::Float(100.0),
                Tok::Bool(true),
                Tok::Null,
                Tok::Str(31, 32, false),
                Tok::Obj(0),
            ]
        );
        assert_eq!(
            toks(r#"{"n":18446744073709551616}"#).unwrap()[2],
            Tok::Float(18446744073709551616.0)
        );
        assert_eq!(toks(r#"{"n":-0}"#).unwrap()[2], Tok::Int(0));
    }

    #[test]
    fn refuses_what_orjson_refuses_or_reads_otherwise() {
        for bad in [
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00x"}"#,
            r#"{"a":1e400}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"a":01}"#,
            r#"{"a":1,}"#,
            r#"[1]"#,
            "{\"a\":\"\t\"}",
            r#"{"a":"\x"}"#,
        ] {
            assert!(toks(bad).is_none(), "{bad}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(2000), "]".repeat(2000));
        assert!(toks(&deep).is_none());
    }

    #[test]
    fn unescapes_pairs_and_short_forms() {
        let mut out = Vec::new();
        unescape(br#"a\n\u00e9\ud83d\ude00\/"#, &mut out).unwrap();
        assert_eq!(out, "a\né😀/".as_bytes());
    }

    #[test]
    fn finds_top_level_members_by_decoded_key() {
        let line = br#"{"x":{"_id":1},"\u005fid":"k"}"#;
        let mut p = Parsed::default();
        p.parse(line).unwrap();
        let m = p.member(line, b"_id").unwrap();
        assert_eq!(&line[m.val_start..m.val_end], br#""k""#);
    }
}
