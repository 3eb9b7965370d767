//! Python logging's text lines (`logpipe.parse.textfmt`: `python`, `python_short`), one line
//! each. As for access lines, this scanner takes the plain part of the format (printable
//! ASCII, a message that is not an access or uvicorn line) and answers `None` for the rest,
//! which the Python road parses; multi-line events (tracebacks) are the Python road's too.

use super::clf::Cursor;
use super::time::{self, Stamp};

const LEVEL_WORDS: [&str; 9] = [
    "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL", "NOTSET", "TRACE",
];
const ALIASES: [(&str, &str); 8] = [
    ("warn", "warning"),
    ("err", "error"),
    ("crit", "critical"),
    ("information", "info"),
    ("informational", "info"),
    ("eror", "error"),
    ("dbug", "debug"),
    ("trce", "trace"),
];

/// One parsed line (`logger`, `function`, `lineno` only in the `python` format).
pub struct PyLine<'a> {
    pub timestamp: Stamp,
    pub level: String,
    pub logger: Option<&'a str>,
    pub message: &'a str,
    pub function: Option<&'a str>,
    pub lineno: Option<u64>,
}

/// `level_name`: lower case, common aliases folded.
fn level(name: &str) -> String {
    let low = name.to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(a, _)| *a == low)
        .map_or(low, |(_, b)| (*b).to_owned())
}

fn digits(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_digit)
}

fn num(b: &[u8]) -> i64 {
    b.iter().fold(0, |n, &d| n * 10 + i64::from(d - b'0'))
}

/// `ASCTIME` at the start of `line` followed by ` - `: (the timestamp text, the position after
/// the separator).
fn asctime(line: &str) -> Option<(&str, usize)> {
    let b = line.as_bytes();
    if b.len() < 22
        || !digits(&b[0..4])
        || b[4] != b'-'
        || !digits(&b[5..7])
        || b[7] != b'-'
        || !digits(&b[8..10])
        || !(b[10] == b' ' || b[10] == b'T')
        || !digits(&b[11..13])
        || b[13] != b':'
        || !digits(&b[14..16])
        || b[16] != b':'
        || !digits(&b[17..19])
    {
        return None;
    }
    let mut at = 19;
    if matches!(b[at], b',' | b'.') {
        let n = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if n == 0 || n > 9 {
            return None;
        }
        at += 1 + n;
    }
    let plain = at;
    let mut c = at + usize::from(b.get(at) == Some(&b' '));
    let offset = match b.get(c) {
        Some(b'Z') => Some(c + 1),
        Some(b'+' | b'-') if b.len() >= c + 5 && digits(&b[c + 1..c + 3]) => {
            c += 3;
            if b.get(c) == Some(&b':') && b.len() >= c + 3 && digits(&b[c + 1..c + 3]) {
                Some(c + 3)
            } else if b.len() >= c + 2 && digits(&b[c..c + 2]) {
                Some(c + 2)
            } else {
                None
            }
        }
        _ => None,
    };
    for end in offset.into_iter().chain([plain]) {
        if b[end..].starts_with(b" - ") {
            return Some((&line[..end], end + 3));
        }
    }
    None
}

/// `TimeConverter.asctime` on an `ASCTIME` text.
fn stamp(ts: &str, naive_utc: bool) -> Option<Stamp> {
    let b = ts.as_bytes();
    if b.len() == 23 && matches!(b[19], b',' | b'.') && b[10] == b' ' {
        let mut s = time::utc_stamp(
            num(&b[0..4]),
            num(&b[5..7]),
            num(&b[8..10]),
            num(&b[11..13]),
            num(&b[14..16]),
            num(&b[17..19]),
            0,
            0,
        )
        .filter(|_| naive_utc)?;
        s[20..23].copy_from_slice(&b[20..23]);
        return Some(s);
    }
    if b.len() == 27 && b[26] == b'Z' && b[10] == b'T' && b[19] == b'.' {
        return b.try_into().ok(); // taken as it is, as `TimeConverter.iso` does
    }
    let mut at = 19;
    let mut micros = 0u32;
    if matches!(b.get(at), Some(b',' | b'.')) {
        let n = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let frac = &b[at + 1..at + 1 + n.min(6)];
        micros = frac.iter().fold(0, |m, &d| m * 10 + u32::from(d - b'0'));
        for _ in frac.len()..6 {
            micros *= 10;
        }
        at += 1 + n;
    }
    if b.get(at) == Some(&b' ') {
        at += 1;
    }
    let offset = match b.get(at) {
        None => {
            if !naive_utc {
                return None;
            }
            0
        }
        Some(b'Z') => 0,
        Some(&sign) => {
            let d: Vec<u8> = b[at + 1..].iter().copied().filter(|&c| c != b':').collect();
            let m = num(&d[..2]) * 60 + num(&d[2..4]);
            if sign == b'-' {
                -m
            } else {
                m
            }
        }
    };
    time::utc_stamp(
        num(&b[0..4]),
        num(&b[5..7]),
        num(&b[8..10]),
        num(&b[11..13]),
        num(&b[14..16]),
        num(&b[17..19]),
        offset,
        micros,
    )
}

/// `[A-Z]+ *- ` at `c`: the level name.
fn level_field<'a>(c: &mut Cursor<'a>) -> Option<&'a str> {
    let n = c
        .rest()
        .iter()
        .take_while(|b| b.is_ascii_uppercase())
        .count();
    if n == 0 {
        return None;
    }
    let name = &c.s[c.pos..c.pos + n];
    c.pos += n;
    let spaces = c.rest().iter().take_while(|&&b| b == b' ').count();
    c.pos += spaces;
    c.eat(b"- ")?;
    Some(name)
}

/// `(func):(line) - ` at `c` (`[A-Za-z_]\w*` or `<\w+>`), or nothing (`c` unmoved); `Err`: a
/// line number too long for the JSON writer (the Python road's, which writes the safe form).
fn function<'a>(c: &mut Cursor<'a>) -> Result<Option<(&'a str, u64)>, ()> {
    let Some((n, d)) = function_span(c.rest()) else {
        return Ok(None);
    };
    let r = c.rest();
    let func = &c.s[c.pos..c.pos + n];
    let line = super::clf::number(&r[n + 1..n + 1 + d]).ok_or(())?;
    c.pos += n + 1 + d + 3;
    Ok(Some((func, line)))
}

/// The lengths of the function name and the line number of a `func:line - ` at the start of `r`.
fn function_span(r: &[u8]) -> Option<(usize, usize)> {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let n = match r.first() {
        Some(b'<') => {
            let w = r[1..].iter().take_while(|b| word(b)).count();
            (w > 0 && r.get(1 + w) == Some(&b'>')).then_some(w + 2)?
        }
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
            1 + r[1..].iter().take_while(|b| word(b)).count()
        }
        _ => return None,
    };
    if r.get(n) != Some(&b':') {
        return None;
    }
    let d = r[n + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
    if d == 0 || !r[n + 1 + d..].starts_with(b" - ") {
        return None;
    }
    Some((n, d))
}

/// A message the Python road reads more into (access or uvicorn lines logged through Python).
fn plain_message(msg: &str) -> bool {
    !msg.contains(" - Status: ") && !msg.contains(" HTTP/")
}

/// `python` (`full`) or `python_short` line; `None`: the Python road's.
pub fn parse(line: &str, full: bool, naive_utc: bool) -> Option<PyLine<'_>> {
    if !line.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    let (ts, at) = asctime(line)?;
    let timestamp = stamp(ts, naive_utc)?;
    let mut c = Cursor { s: line, pos: at };
    let logger = if full {
        let name = c.token()?;
        if LEVEL_WORDS.contains(&name) || !c.rest().starts_with(b"- ") {
            return None;
        }
        c.pos += 2;
        Some(name)
    } else {
        None
    };
    let lv = level_field(&mut c)?;
    let func = if full { function(&mut c).ok()? } else { None };
    let message = &line[c.pos..];
    if !plain_message(message) {
        return None;
    }
    Some(PyLine {
        timestamp,
        level: level(lv),
        logger,
        message,
        function: func.map(|f| f.0),
        lineno: func.map(|f| f.1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_short_lines() {
        let p = parse(
            "2026-11-24 06:50:49,123 - billing.api - WARN - create_invoice:88 - slow db: 1.2s",
            true,
            true,
        )
        .unwrap();
        assert_eq!(&p.timestamp, b"2026-11-24T06:50:49.123000Z");
        assert_eq!(
            (p.level.as_str(), p.logger, p.message, p.function, p.lineno),
            (
                "warning",
                Some("billing.api"),
                "slow db: 1.2s",
                Some("create_invoice"),
                Some(88)
            )
        );
        let s = parse(
            "2026-11-24T07:00:00.123456789+01:00 - INFO  - a - b",
            false,
            false,
        )
        .unwrap();
        assert_eq!(&s.timestamp, b"2026-11-24T06:00:00.123456Z");
        assert_eq!(s.message, "a - b");
        assert!(parse("2026-11-24 07:00:00,123 - INFO - x", false, false).is_none());
        assert!(parse("2026-11-24 07:00:00,123 - INFO - app - x", true, true).is_none());
    }
}
