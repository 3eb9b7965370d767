//! Scrub a whole JSON document: `orjson.dumps(Scrubber.scrub_value(orjson.loads(line)))` in one
//! native pass, for lines orjson wrote (the emit side renders with orjson, then scrubs here).
//!
//! The walk is Python's: a sensitive key's value is redacted whatever it holds; other keys are
//! scrubbed as text (a renamed key moves to the end of its object, as `record[new] =
//! record.pop(old)` does); strings are scrubbed; integers of 13-19 digits that pass Luhn become
//! card tokens. Numbers are copied as written. Anything outside what orjson writes (a lone
//! surrogate escape, trailing bytes) returns None, and the caller takes the Python road.

use std::borrow::Cow;

use crate::scrub::{luhn_ok, mask_ip, python_float_repr, Scrubber};

const MAX_DEPTH: usize = 128;

enum V<'a> {
    Null,
    Bool(bool),
    Num(&'a [u8]),
    Str(Cow<'a, str>),
    Arr(Vec<V<'a>>),
    Obj(Vec<(Cow<'a, str>, V<'a>)>),
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> P<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Option<V<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Some(V::Obj(items));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return None;
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    items.push((k, v));
                    self.ws();
                    match self.s.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(V::Obj(items));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Some(V::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.s.get(self.i)? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(V::Arr(items));
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => Some(V::Str(self.string()?)),
            b't' => self.word(b"true", V::Bool(true)),
            b'f' => self.word(b"false", V::Bool(false)),
            b'n' => self.word(b"null", V::Null),
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let text = &self.s[start..self.i];
                std::str::from_utf8(text).ok()?.parse::<f64>().ok()?;
                Some(V::Num(text))
            }
            _ => None,
        }
    }

    fn word(&mut self, w: &[u8], v: V<'a>) -> Option<V<'a>> {
        if self.s[self.i..].starts_with(w) {
            self.i += w.len();
            Some(v)
        } else {
            None
        }
    }

    fn string(&mut self) -> Option<Cow<'a, str>> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'"' => {
                    let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                    self.i += 1;
                    return Some(Cow::Borrowed(text));
                }
                b'\\' => break,
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        // escapes: decode into an owned string
        let mut out: Vec<u8> = self.s[start..self.i].to_vec();
        while self.i < self.s.len() {
            let c = self.s[self.i];
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).ok().map(Cow::Owned),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.i..self.i + 2)? != b"\\u" {
                                    return None;
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return None;
                            } else {
                                hi
                            };
                            let ch = char::from_u32(cp)?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                c => out.push(c),
            }
        }
        None
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }
}

fn is_int(text: &[u8]) -> bool {
    !text.iter().any(|c| matches!(c, b'.' | b'e' | b'E'))
}

/// Python's `str(value)` of a JSON number.
fn number_str(text: &[u8]) -> String {
    let t = std::str::from_utf8(text).unwrap_or("0");
    if is_int(text) {
        if let Ok(n) = t.parse::<i128>() {
            return n.to_string();
        }
    }
    python_float_repr(t.parse::<f64>().unwrap_or(0.0))
}

impl Scrubber {
    fn redact_value<'a>(&self, v: V<'a>) -> V<'a> {
        match v {
            V::Null | V::Bool(_) => v,
            V::Str(s) => {
                if self.is_token(&s) {
                    V::Str(s)
                } else if self.pseudonym() {
                    V::Str(Cow::Owned(self.token("secret", &s)))
                } else {
                    V::Str(Cow::Borrowed("[REDACTED]"))
                }
            }
            V::Num(t) if self.pseudonym() => {
                V::Str(Cow::Owned(self.token("secret", &number_str(t))))
            }
            _ => V::Str(Cow::Borrowed("[REDACTED]")),
        }
    }

    fn scrub_v<'a>(&self, v: V<'a>) -> V<'a> {
        match v {
            V::Str(s) => V::Str(match self.scrub_text(&s) {
                Cow::Borrowed(_) => s,
                Cow::Owned(o) => Cow::Owned(o),
            }),
            V::Arr(items) => V::Arr(items.into_iter().map(|x| self.scrub_v(x)).collect()),
            V::Obj(items) => V::Obj(self.scrub_obj(items)),
            V::Num(t) if is_int(t) => {
                let digits: &[u8] = t.strip_prefix(b"-").unwrap_or(t);
                if (13..=19).contains(&digits.len()) && luhn_ok(digits) {
                    V::Str(Cow::Owned(self.token_bytes("card", digits)))
                } else {
                    V::Num(t)
                }
            }
            other => other,
        }
    }

    fn scrub_obj<'a>(&self, mut items: Vec<(Cow<'a, str>, V<'a>)>) -> Vec<(Cow<'a, str>, V<'a>)> {
        let mut renames: Vec<(String, String)> = Vec::new();
        for item in items.iter_mut() {
            let v = std::mem::replace(&mut item.1, V::Null);
            if self.is_sensitive_key(&item.0) {
                item.1 = self.redact_value(v);
                continue;
            }
            if let Cow::Owned(new) = self.scrub_text(&item.0) {
                if new != *item.0 {
                    renames.push((item.0.to_string(), new));
                }
            }
            item.1 = self.scrub_v(v);
        }
        for (old, new) in renames {
            let Some(at) = items.iter().position(|(k, _)| **k == *old) else {
                continue;
            };
            let (_, v) = items.remove(at);
            match items.iter_mut().find(|(k, _)| **k == *new) {
                Some(slot) => slot.1 = v,
                None => items.push((Cow::Owned(new), v)),
            }
        }
        items
    }

    /// Scrub one JSON document (orjson's output) into `out`, compact, with a trailing newline when
    /// the input had one; `mask_client_ip` also masks a top-level `client_ip` afterwards, as the
    /// emit writer does. None: not a document this walk vouches for (`out` is then untouched).
    pub fn scrub_json(&self, line: &[u8], mask_client_ip: bool, out: &mut Vec<u8>) -> Option<()> {
        if !(mask_client_ip && contains_client_ip(line)) && self.line_is_clean(line) {
            // orjson's output is already compact: nothing to change, nothing to re-render
            out.extend_from_slice(line);
            return Some(());
        }
        let mut p = P { s: line, i: 0 };
        let v = p.value(0)?;
        p.ws();
        if p.i != line.len() {
            return None;
        }
        let mut v = self.scrub_v(v);
        if mask_client_ip {
            if let V::Obj(items) = &mut v {
                if let Some((_, V::Str(ip))) = items.iter_mut().find(|(k, _)| k == "client_ip") {
                    if !ip.is_empty() {
                        let masked =
                            mask_ip(ip).unwrap_or_else(|| self.scrub_text(ip).into_owned());
                        *ip = Cow::Owned(masked);
                    }
                }
            }
        }
        write_v(&v, out);
        if line.last() == Some(&b'\n') {
            out.push(b'\n');
        }
        Some(())
    }
}

fn contains_client_ip(line: &[u8]) -> bool {
    line.windows(11).any(|w| w == b"\"client_ip\"")
}

fn write_v(v: &V<'_>, out: &mut Vec<u8>) {
    match v {
        V::Null => out.extend_from_slice(b"null"),
        V::Bool(true) => out.extend_from_slice(b"true"),
        V::Bool(false) => out.extend_from_slice(b"false"),
        V::Num(t) => out.extend_from_slice(t),
        V::Str(s) => write_str(out, s),
        V::Arr(items) => {
            out.push(b'[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_v(x, out);
            }
            out.push(b']');
        }
        V::Obj(items) => {
            out.push(b'{');
            for (i, (k, x)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_v(x, out);
            }
            out.push(b'}');
        }
    }
}

/// A JSON string as orjson writes it: `"`, `\` and control characters escaped, the rest raw.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            8 => b"\\b",
            12 => b"\\f",
            c if c < 0x20 => b"",
            _ => continue,
        };
        out.extend_from_slice(&b[run..i]);
        run = i + 1;
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(c >> 4) as usize]);
            out.push(HEX[(c & 15) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
}
