//! One JSON line -> one enriched NDJSON record, when the line is a record already in logpipe's
//! schema (the JSON parser's fast path: `@timestamp` of 27 characters ending in `Z`, a `message`,
//! a lower-case `level`, `tags` absent or a list). Everything else returns `None` and goes the
//! Python way (`logpipe.parse.jsonfmt` + `logpipe.enrich`), which stays the reference.
//!
//! Enrichment is the Python one: `service` added when configured and absent, then `host`,
//! `log_file`, `log_offset` and `_id` (fingerprint + 12 hex digits of the offset) set in place
//! or appended in that order, then the input's tags merged into a new `tags` list.

use crate::json::{scan_object, write_str, Kind, Scanned};

/// What every record of one stream gets.
pub struct Origin {
    pub host: String,
    pub path: String,
    pub fp: String,
    pub service: String,
    pub tags: Vec<String>,
}

/// The fields enrichment sets, in the order it appends them (`_id` never arrives here: see `render`).
const OURS: [&[u8]; 4] = [b"host", b"log_file", b"log_offset", b"_id"];

/// Write the enriched record for `line` (read at file offset `start`) to `out`, newline
/// included; `None` (and `out` untouched) when the line must take the Python road.
pub fn render(
    line: &[u8],
    start: u64,
    origin: &Origin,
    scan: &mut Scanned,
    out: &mut Vec<u8>,
) -> Option<()> {
    scan_object(line, scan)?;
    if !fast_path(scan) {
        return None;
    }
    if scan.get(b"_id").is_some() {
        // A replayed record keeps its origin, and a producer's own `_id` is the reliability
        // rules' business (kept as `_source_id` once they land): the reference decides both.
        return None;
    }
    let has_tags = scan.get(b"tags").is_some();
    if has_tags && !origin.tags.is_empty() {
        return None; // merging into the producer's list: the reference does it
    }
    let body = &scan.compact;
    let id = format!("{}{start:012x}", origin.fp);
    out.push(b'{');
    let mut first = true;
    let mut set = [false; 4];
    for m in &scan.members {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&body[m.key.0 - 1..m.key.1 + 1]);
        out.push(b':');
        match OURS.iter().position(|k| *k == scan.key(m)) {
            Some(i) => {
                set[i] = true;
                our_value(i, origin, start, &id, out);
            }
            None => out.extend_from_slice(scan.value(m)),
        }
    }
    if !origin.service.is_empty() && scan.get(b"service").is_none() {
        out.extend_from_slice(if first {
            b"\"service\":" as &[u8]
        } else {
            b",\"service\":"
        });
        first = false;
        write_str(out, &origin.service);
    }
    for (i, key) in OURS.iter().enumerate() {
        if !set[i] {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(key);
            out.extend_from_slice(b"\":");
            our_value(i, origin, start, &id, out);
        }
    }
    if !origin.tags.is_empty() {
        out.extend_from_slice(b",\"tags\":[");
        let mut seen: Vec<&str> = Vec::new();
        for t in &origin.tags {
            if !seen.contains(&t.as_str()) {
                if !seen.is_empty() {
                    out.push(b',');
                }
                write_str(out, t);
                seen.push(t);
            }
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}\n");
    Some(())
}

/// The value of our field `OURS[i]`; `id` is `fp` + `{offset:012x}` (longer when the offset
/// needs more digits, as Python's format gives).
fn our_value(i: usize, origin: &Origin, start: u64, id: &str, out: &mut Vec<u8>) {
    match i {
        0 => write_str(out, &origin.host),
        1 => write_str(out, &origin.path),
        2 => out.extend_from_slice(start.to_string().as_bytes()),
        _ => write_str(out, id),
    }
}

/// The enrichment of a record that has none of its fields yet (a text parser's record): `service`
/// when configured, `host`, `log_file`, `log_offset`, `_id`, then the input's tags, as
/// `Enricher.apply` appends them. `out` holds the record's members so far (at least one, no
/// closing brace); the record is closed with its newline.
pub fn write_enrichment(start: u64, origin: &Origin, out: &mut Vec<u8>) {
    if !origin.service.is_empty() {
        out.extend_from_slice(b",\"service\":");
        write_str(out, &origin.service);
    }
    out.extend_from_slice(b",\"host\":");
    write_str(out, &origin.host);
    out.extend_from_slice(b",\"log_file\":");
    write_str(out, &origin.path);
    out.extend_from_slice(b",\"log_offset\":");
    let at = out.len();
    let mut v = start;
    loop {
        out.insert(at, b'0' + (v % 10) as u8);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(b",\"_id\":");
    if origin.fp.bytes().all(|b| b.is_ascii_alphanumeric()) {
        // fp + `{start:012x}` without formatting machinery (the fingerprint is hex)
        out.push(b'"');
        out.extend_from_slice(origin.fp.as_bytes());
        let digits = (16 - start.leading_zeros() as usize / 4).max(12);
        for k in (0..digits).rev() {
            out.push(b"0123456789abcdef"[(start >> (4 * k)) as usize & 15]);
        }
        out.push(b'"');
    } else {
        write_str(out, &format!("{}{start:012x}", origin.fp));
    }
    if !origin.tags.is_empty() {
        out.extend_from_slice(b",\"tags\":[");
        let mut seen: Vec<&str> = Vec::new();
        for t in &origin.tags {
            if !seen.contains(&t.as_str()) {
                if !seen.is_empty() {
                    out.push(b',');
                }
                write_str(out, t);
                seen.push(t);
            }
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}\n");
}

/// The JSON parser's fast-path test on the scanned top-level members.
fn fast_path(scan: &Scanned) -> bool {
    let Some(ts) = scan.get(b"@timestamp") else {
        return false;
    };
    if ts.kind != Kind::Str || scan.get(b"message").is_none() {
        return false;
    }
    let ts = scan.value(ts);
    let ts = &ts[1..ts.len() - 1];
    if ts.contains(&b'\\') || ts.last() != Some(&b'Z') {
        return false;
    }
    // 27 characters (not bytes): count UTF-8 lead bytes
    if ts.iter().filter(|&&b| (b & 0xC0) != 0x80).count() != 27 {
        return false;
    }
    let Some(level) = scan.get(b"level") else {
        return false;
    };
    if level.kind != Kind::Str {
        return false;
    }
    let lv = scan.value(level);
    let lv = &lv[1..lv.len() - 1];
    // str.islower() on ASCII: some lower-case letter, no upper-case one (anything else: Python)
    if !lv.is_ascii()
        || lv.contains(&b'\\')
        || !lv.iter().any(u8::is_ascii_lowercase)
        || lv.iter().any(u8::is_ascii_uppercase)
    {
        return false;
    }
    match scan.get(b"tags") {
        None => true,
        Some(t) => t.kind == Kind::Arr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(service: &str, tags: &[&str]) -> Origin {
        Origin {
            host: "h1".into(),
            path: "/var/log/a.log".into(),
            fp: "0123456789abcdef".into(),
            service: service.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn run(line: &str, o: &Origin) -> Option<String> {
        let mut scan = Scanned::default();
        let mut out = Vec::new();
        render(line.as_bytes(), 4096, o, &mut scan, &mut out)?;
        Some(String::from_utf8(out).unwrap())
    }

    const TS: &str = "2026-11-24T07:00:00.000001Z";

    #[test]
    fn enriches_in_place_and_appends_in_order() {
        let line =
            format!(r#"{{"@timestamp":"{TS}", "level":"info","message":"m","host":"web-1"}}"#);
        let got = run(&line, &origin("shop", &["k8s"])).unwrap();
        assert_eq!(
            got,
            format!(
                "{{\"@timestamp\":\"{TS}\",\"level\":\"info\",\"message\":\"m\",\"host\":\"h1\",\"service\":\"shop\",\
                 \"log_file\":\"/var/log/a.log\",\"log_offset\":4096,\"_id\":\"0123456789abcdef000000001000\",\
                 \"tags\":[\"k8s\"]}}\n"
            )
        );
    }

    #[test]
    fn foreign_shapes_take_the_python_road() {
        let o = origin("", &[]);
        assert!(run(r#"{"time":"x","msg":"m"}"#, &o).is_none());
        let upper = format!(r#"{{"@timestamp":"{TS}","level":"INFO","message":"m"}}"#);
        assert!(run(&upper, &o).is_none());
        let no_level = format!(r#"{{"@timestamp":"{TS}","message":"m"}}"#);
        assert!(run(&no_level, &o).is_none());
        let tags_str =
            format!(r#"{{"@timestamp":"{TS}","level":"info","message":"m","tags":"x"}}"#);
        assert!(run(&tags_str, &o).is_none());
        let replayed = format!(
            r#"{{"@timestamp":"{TS}","level":"info","message":"m","log_offset":1,"_id":"a"}}"#
        );
        assert!(run(&replayed, &o).is_none());
    }

    #[test]
    fn offsets_past_twelve_hex_digits_are_not_cut() {
        let line = format!(r#"{{"@timestamp":"{TS}","level":"info","message":"m"}}"#);
        let mut scan = Scanned::default();
        let mut out = Vec::new();
        render(
            line.as_bytes(),
            1 << 52,
            &origin("", &[]),
            &mut scan,
            &mut out,
        )
        .unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("\"_id\":\"0123456789abcdef10000000000000\""));
    }
}
