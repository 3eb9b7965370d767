//! nginx/Apache access lines, Common and Combined Log Format (`logpipe.parse.clf`).
//!
//! `CLF_RE` there is a backtracking regex; this is a hand-written scanner for the part of its
//! language where the match is unique and plain: printable ASCII only, no backslash inside the
//! request string, durations with at most 6 integer and 3 fraction digits, sizes of at most 18
//! digits. Inside that part the two agree field for field (the property tests in
//! `tests/test_core_text.py` hold them to it); a line outside it is `None` and takes the Python
//! road, which parses it, second-chances it or tags it as before.

use super::time::{self, Stamp};

/// One parsed access line, borrowing from the line.
#[derive(Debug, PartialEq, Eq)]
pub struct Access<'a> {
    pub timestamp: Stamp,
    pub method: Option<&'a str>,
    /// The URI without its query string.
    pub path: Option<&'a str>,
    pub status: u16,
    /// `duration_ms` in whole milliseconds (the float Python computes is exactly this).
    pub duration_ms: Option<u64>,
    pub client_ip: &'a str,
    pub user_agent: Option<&'a str>,
    pub bytes: u64,
    pub referrer: Option<&'a str>,
    pub remote_user: Option<&'a str>,
}

pub(super) struct Cursor<'a> {
    pub(super) s: &'a str,
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn rest(&self) -> &'a [u8] {
        &self.s.as_bytes()[self.pos..]
    }
    pub(super) fn eat(&mut self, lit: &[u8]) -> Option<()> {
        self.rest().starts_with(lit).then(|| self.pos += lit.len())
    }
    /// A run of non-space bytes (at least one), which must be followed by a space.
    pub(super) fn token(&mut self) -> Option<&'a str> {
        let n = self.rest().iter().position(|&b| b == b' ')?;
        if n == 0 {
            return None;
        }
        let t = &self.s[self.pos..self.pos + n];
        self.pos += n + 1;
        Some(t)
    }
    /// Quoted text with backslash escapes, up to (not including) its closing quote.
    fn quoted(&mut self) -> Option<&'a str> {
        let r = self.rest();
        let mut i = 0;
        while i < r.len() {
            match r[i] {
                b'"' => {
                    let t = &self.s[self.pos..self.pos + i];
                    self.pos += i;
                    return Some(t);
                }
                b'\\' if i + 1 < r.len() => i += 2,
                b'\\' => return None,
                _ => i += 1,
            }
        }
        None
    }
}

pub(super) fn number(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 18 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// `I.F` seconds -> milliseconds, within the exact range (`I`: 0-6 digits, `F`: 0-3 digits,
/// one of them non-empty); `Err` when the text is a duration the core will not convert.
fn millis(int: &[u8], frac: &[u8]) -> Result<u64, ()> {
    if int.len() > 6 || frac.len() > 3 || (int.is_empty() && frac.is_empty()) {
        return Err(());
    }
    let whole = if int.is_empty() {
        0
    } else {
        number(int).ok_or(())?
    };
    let mut part = if frac.is_empty() {
        0
    } else {
        number(frac).ok_or(())?
    };
    for _ in frac.len()..3 {
        part *= 10;
    }
    Ok(whole * 1000 + part)
}

/// The request string: `METHOD URI[ PROTO]` (method, path) or anything else (None, None).
fn request(req: &str) -> (Option<&str>, Option<&str>) {
    let b = req.as_bytes();
    let m = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if m == 0 || b.get(m) != Some(&b' ') {
        return (None, None);
    }
    let rest = &req[m + 1..];
    let (uri, proto) = match rest.find(' ') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if uri.is_empty() || proto.is_some_and(|p| p.is_empty() || p.contains(' ')) {
        return (None, None);
    }
    let path = uri.split_once('?').map_or(uri, |(p, _)| p);
    (Some(&req[..m]), Some(path))
}

/// The request time after the standard fields: `rt` (` I.F` then only spaces) or, failing that,
/// the last space-separated token of the rest when it is digits with one dot. `Err`: a duration
/// outside the exact range (the Python road computes it).
fn duration(rest: &[u8]) -> Result<Option<u64>, ()> {
    let trimmed = &rest[..rest.len() - rest.iter().rev().take_while(|&&b| b == b' ').count()];
    if trimmed.is_empty() {
        return Ok(None);
    }
    let token = match trimmed.iter().rposition(|&b| b == b' ') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    };
    let Some(dot) = token.iter().position(|&b| b == b'.') else {
        return Ok(None);
    };
    let (int, frac) = (&token[..dot], &token[dot + 1..]);
    if !int.iter().chain(frac).all(u8::is_ascii_digit) || (int.is_empty() && frac.is_empty()) {
        return Ok(None);
    }
    millis(int, frac).map(Some)
}

/// Parse one access line; `None` when the core cannot vouch for the result.
pub fn parse<'a>(line: &'a str, naive_utc: bool, last: &mut time::Last) -> Option<Access<'a>> {
    if !line.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    let mut c = Cursor { s: line, pos: 0 };
    let client_ip = c.token()?;
    let _ident = c.token()?;
    let user = c.token()?;
    c.eat(b"[")?;
    let close = c.rest().iter().position(|&b| b == b']')?;
    if close == 0 {
        return None;
    }
    let ts = &c.rest()[..close];
    let timestamp = last.clf(ts, naive_utc)?;
    c.pos += close;
    c.eat(b"] \"")?;
    let q = c.rest().iter().position(|&b| b == b'"' || b == b'\\')?;
    if c.rest()[q] == b'\\' {
        return None;
    }
    let (method, path) = request(&line[c.pos..c.pos + q]);
    c.pos += q;
    c.eat(b"\" ")?;
    let r = c.rest();
    if r.len() < 4 || !r[..3].iter().all(u8::is_ascii_digit) || r[3] != b' ' {
        return None;
    }
    let status = r[..3]
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    c.pos += 4;
    let bytes = if c.rest().first() == Some(&b'-') {
        c.pos += 1;
        0
    } else {
        let n = c.rest().iter().take_while(|b| b.is_ascii_digit()).count();
        let v = number(&c.rest()[..n])?;
        c.pos += n;
        v
    };
    let mut pair = None;
    let mark = c.pos;
    if c.eat(b" \"").is_some() {
        let refr = c.quoted();
        let ua = refr.and_then(|r| c.eat(b"\" \"").and_then(|_| c.quoted()).map(|u| (r, u)));
        match ua.and_then(|p| c.eat(b"\"").map(|_| p)) {
            Some(p) => pair = Some(p),
            None => c.pos = mark,
        }
    }
    let duration_ms = duration(c.rest()).ok()?;
    let (referrer, user_agent) = match pair {
        Some((r, u)) => ((r != "-").then_some(r), (u != "-").then_some(u)),
        None => (None, None),
    };
    Some(Access {
        timestamp,
        method,
        path,
        status,
        duration_ms,
        client_ip,
        user_agent,
        bytes,
        referrer,
        remote_user: (user != "-").then_some(user),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str, naive_utc: bool) -> Option<Access<'_>> {
        super::parse(line, naive_utc, &mut time::Last::default())
    }

    #[test]
    fn combined_line_with_request_time() {
        let a = parse(
            r#"10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif?x=1 HTTP/1.0" 200 2326 "http://r/" "UA \"q\"" 0.012"#,
            true,
        )
        .unwrap();
        assert_eq!(a.method, Some("GET"));
        assert_eq!(a.path, Some("/a.gif"));
        assert_eq!(a.status, 200);
        assert_eq!(a.bytes, 2326);
        assert_eq!(a.duration_ms, Some(12));
        assert_eq!(a.referrer, Some("http://r/"));
        assert_eq!(a.user_agent, Some(r#"UA \"q\""#));
        assert_eq!(a.remote_user, Some("frank"));
    }

    #[test]
    fn odd_requests_keep_status_and_size() {
        let a = parse(
            r#"::1 - - [10/Oct/2000:13:55:36 +0000] "\x16\x03" 400 -"#,
            true,
        );
        assert!(a.is_none(), "a backslash in the request: the Python road");
        let a = parse(r#"::1 - - [10/Oct/2000:13:55:36 +0000] "-" 400 -"#, true).unwrap();
        assert_eq!((a.method, a.path, a.bytes), (None, None, 0));
        assert_eq!(a.remote_user, None);
    }

    #[test]
    fn lines_outside_the_plain_part_take_the_python_road() {
        let ok = r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5"#;
        assert!(parse(ok, true).is_some());
        assert!(parse(&ok.replace("200", "2000"), true).is_none());
        assert!(parse(&ok.replace(" 5", " 1234567890123456789"), true).is_none());
        assert!(parse(&format!("{ok} 1.0001"), true).is_none());
        assert!(parse(&ok.replace("1.2.3.4", "1.2.3.\u{e9}"), true).is_none());
        assert_eq!(
            parse(&format!("{ok} 1.5  "), true).unwrap().duration_ms,
            Some(1500)
        );
        assert_eq!(
            parse(&format!("{ok} x .5"), true).unwrap().duration_ms,
            Some(500)
        );
    }
}
