//! Text formats in the core: a line of a known text format -> one enriched NDJSON record, the
//! same bytes the Python road (`logpipe.parse` + `logpipe.enrich` + orjson) writes for it.
//!
//! Each format's scanner takes the plain part of its format and answers `None` for the rest,
//! which goes the Python way (that road also counts and tags the lines no parser understands).

pub mod clf;
pub mod multiline;
pub mod pyfmt;
mod pyuni;
pub mod time;

use crate::record::{write_enrichment, Origin};

/// The text formats the core parses (names as in `logpipe.parse.FORMATS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `common` and `combined`: one scanner, as in `logpipe.parse.clf`.
    Clf,
    /// `python` (`%(asctime)s - %(name)s - %(levelname)s - [%(funcName)s:%(lineno)d - ]%(message)s`).
    Python,
    /// `python_short` (`%(asctime)s - %(levelname)s - %(message)s`).
    PythonShort,
}

impl Format {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "common" | "combined" => Some(Format::Clf),
            "python" => Some(Format::Python),
            "python_short" => Some(Format::PythonShort),
            _ => None,
        }
    }
}

/// What the metrics tap reads of a fast record.
pub struct TapView<'a> {
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    pub status: Option<u16>,
    pub duration_ms: Option<u64>,
    pub level: Option<String>,
}

/// One line (read at file offset `start`) -> its record in `out`; `None` (and `out` untouched)
/// when it must take the Python road.
pub fn render<'a>(
    fmt: Format,
    line: &'a str,
    start: u64,
    origin: &Origin,
    naive_utc: bool,
    last: &mut time::Last,
    out: &mut Vec<u8>,
) -> Option<TapView<'a>> {
    match fmt {
        Format::Clf => {
            let a = clf::parse(line, naive_utc, last)?;
            render_access(&a, line, start, origin, out);
            Some(TapView {
                method: a.method,
                path: a.path,
                status: Some(a.status),
                duration_ms: a.duration_ms,
                level: None,
            })
        }
        Format::Python | Format::PythonShort => {
            let p = pyfmt::parse(line, fmt == Format::Python, naive_utc)?;
            render_python(&p, start, origin, out);
            Some(TapView {
                method: None,
                path: None,
                status: None,
                duration_ms: None,
                level: Some(p.level),
            })
        }
    }
}

/// `PythonParser`/`PythonShortParser`'s record, in their key order.
fn render_python(p: &pyfmt::PyLine, start: u64, origin: &Origin, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"@timestamp\":\"");
    out.extend_from_slice(&p.timestamp);
    out.extend_from_slice(b"\",\"level\":");
    write_str(out, &p.level);
    if let Some(name) = p.logger {
        key(out, b"logger");
        write_str(out, name);
    }
    key(out, b"message");
    write_str(out, p.message);
    if let (Some(f), Some(n)) = (p.function, p.lineno) {
        key(out, b"function");
        write_str(out, f);
        key(out, b"lineno");
        int(out, n);
    }
    write_enrichment(start, origin, out);
}

fn key(out: &mut Vec<u8>, k: &[u8]) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(k);
    out.extend_from_slice(b"\":");
}

fn int(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A JSON string of printable ASCII (all the scanners accept): only `"` and `\` are escaped.
fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut run = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if b == b'"' || b == b'\\' {
            out.extend_from_slice(&s.as_bytes()[run..i]);
            out.push(b'\\');
            run = i;
        }
    }
    out.extend_from_slice(&s.as_bytes()[run..]);
    out.push(b'"');
}

/// `ClfParser`'s record, in its key order.
fn render_access(a: &clf::Access, line: &str, start: u64, origin: &Origin, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"@timestamp\":\"");
    out.extend_from_slice(&a.timestamp);
    out.extend_from_slice(b"\",\"message\":");
    write_str(out, line);
    if let (Some(m), Some(p)) = (a.method, a.path) {
        key(out, b"method");
        out.push(b'"');
        out.extend(m.bytes().map(|b| b.to_ascii_uppercase()));
        out.push(b'"');
        key(out, b"path");
        write_str(out, p);
    }
    key(out, b"status");
    int(out, u64::from(a.status));
    if let Some(ms) = a.duration_ms {
        key(out, b"duration_ms");
        int(out, ms);
        out.extend_from_slice(b".0");
    }
    key(out, b"client_ip");
    write_str(out, a.client_ip);
    if let Some(ua) = a.user_agent {
        key(out, b"user_agent");
        write_str(out, ua);
    }
    key(out, b"bytes");
    int(out, a.bytes);
    if let Some(r) = a.referrer {
        key(out, b"referrer");
        write_str(out, r);
    }
    if let Some(u) = a.remote_user {
        key(out, b"remote_user");
        write_str(out, u);
    }
    write_enrichment(start, origin, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_python_roads_record() {
        let origin = Origin {
            host: "h".into(),
            path: "/l".into(),
            fp: "00ff".into(),
            service: "web".into(),
            tags: vec!["a".into(), "a".into()],
        };
        let line =
            r#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "get /x?y HTTP/1.1" 404 - "-" "curl" 0.5"#;
        let mut out = Vec::new();
        render(
            Format::Clf,
            line,
            16,
            &origin,
            true,
            &mut time::Last::default(),
            &mut out,
        )
        .unwrap();
        let want = format!(
            "{{\"@timestamp\":\"2000-10-10T13:55:36.000000Z\",\"message\":{},\"method\":\"GET\",\"path\":\"/x\",\
             \"status\":404,\"duration_ms\":500.0,\"client_ip\":\"1.2.3.4\",\"user_agent\":\"curl\",\"bytes\":0,\
             \"service\":\"web\",\"host\":\"h\",\"log_file\":\"/l\",\"log_offset\":16,\"_id\":\"00ff000000000010\",\
             \"tags\":[\"a\"]}}\n",
            serde_like(line)
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    fn serde_like(s: &str) -> String {
        let mut v = Vec::new();
        crate::json::write_str(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn writes_strings_as_the_json_writer_does() {
        for s in ["", "plain", r#"a"b\c"#, r#"\""#, r#""\"#] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            write_str(&mut a, s);
            crate::json::write_str(&mut b, s);
            assert_eq!(a, b);
        }
    }
}
