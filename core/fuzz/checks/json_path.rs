//! The JSON fast road on one chunk: split -> scan -> enrich -> render, against serde_json.
//!
//! Input: byte 0 picks the stream's origin (service configured or not, input tags or not, a
//! large offset); the rest is the chunk. Every line (as the file's bytes, and as the splitter's
//! decoded text) goes through `record::render`. Invariants: no panic; a line rendered fast is
//! one NDJSON line whose value equals serde_json's reading of the input line plus the enrich
//! fields, key order included; the line met the schema's fast-path test; rendering is
//! deterministic and the `_id` is the fingerprint + the offset; a line given up on leaves the
//! output untouched and is reported back, so records + given-up lines = lines.
//!
//! Needs serde_json, so it runs in the fuzz crate only; the core's stable replay test checks the
//! same corpus through `logpipe._core` against orjson (tests/test_fuzz_corpus.py).

use _core::json::{scan_object, Scanned};
use _core::record::{render, Origin};
use _core::split::Splitter;
use serde_json::{Map, Value};

const FP: &str = "5e1f0a2b3c4d6e7f";

fn origin(sel: u8) -> Origin {
    Origin {
        host: if sel & 8 != 0 {
            "h\"ost\\\u{1}é"
        } else {
            "web-1"
        }
        .into(),
        path: "/var/log/app/cur\trent.log".into(),
        fp: FP.into(),
        service: if sel & 1 != 0 { "shop" } else { "" }.into(),
        tags: if sel & 2 != 0 {
            vec!["k8s".into(), "k8s".into(), "a\"b".into()]
        } else {
            Vec::new()
        },
    }
}

/// The JSON parser's fast-path test and the core's own refusals, on serde_json's reading.
fn fast_eligible(rec: &Map<String, Value>, o: &Origin) -> bool {
    let ts_ok = matches!(rec.get("@timestamp"), Some(Value::String(t))
        if t.chars().count() == 27 && t.ends_with('Z'));
    let level_ok = matches!(rec.get("level"), Some(Value::String(l))
        if l.is_ascii() && l.bytes().any(|b| b.is_ascii_lowercase())
            && !l.bytes().any(|b| b.is_ascii_uppercase()));
    let tags_ok = match rec.get("tags") {
        None => true,
        Some(Value::Array(_)) => o.tags.is_empty(),
        Some(_) => false,
    };
    ts_ok && level_ok && tags_ok && rec.contains_key("message") && !rec.contains_key("_id")
}

/// What enrichment makes of `rec` read at `start`: service (when configured and absent), then
/// host, log_file, log_offset, _id set in place or appended, then the input's tags, deduplicated.
fn enriched(mut rec: Map<String, Value>, start: u64, o: &Origin) -> Map<String, Value> {
    if !o.service.is_empty() && !rec.contains_key("service") {
        rec.insert("service".into(), Value::from(o.service.as_str()));
    }
    rec.insert("host".into(), Value::from(o.host.as_str()));
    rec.insert("log_file".into(), Value::from(o.path.as_str()));
    rec.insert("log_offset".into(), Value::from(start));
    rec.insert("_id".into(), Value::from(format!("{FP}{start:012x}")));
    if !o.tags.is_empty() {
        let mut seen: Vec<Value> = Vec::new();
        for t in &o.tags {
            let t = Value::from(t.as_str());
            if !seen.contains(&t) {
                seen.push(t);
            }
        }
        rec.insert("tags".into(), Value::Array(seen));
    }
    rec
}

/// One line through the scanner: what it accepts, serde_json accepts as the same value.
fn check_scan(line: &[u8], scan: &mut Scanned) {
    if scan_object(line, scan).is_none() {
        return;
    }
    let want: Value = serde_json::from_slice(line).unwrap_or_else(|e| {
        panic!(
            "scanner accepted what serde_json refuses ({e}): {:?}",
            String::from_utf8_lossy(line)
        )
    });
    let got: Value = serde_json::from_slice(&scan.compact).expect("compact output is JSON");
    assert_eq!(
        serde_json::to_string(&got).unwrap(),
        serde_json::to_string(&want).unwrap(),
        "compact form changes the value"
    );
    let obj = want.as_object().expect("an object");
    assert_eq!(scan.members.len(), obj.len(), "one member per key");
    for (m, (k, v)) in scan.members.iter().zip(obj) {
        assert_eq!(scan.key(m), k.as_bytes(), "member key");
        let mv: Value = serde_json::from_slice(scan.value(m)).expect("member value is JSON");
        assert_eq!(&mv, v, "member value of {k}");
    }
}

/// One line through `render`; true when it came out fast.
fn check_render(
    line: &[u8],
    start: u64,
    o: &Origin,
    scan: &mut Scanned,
    out: &mut Vec<u8>,
) -> bool {
    let mark = out.len();
    if render(line, start, o, scan, out).is_none() {
        assert_eq!(
            out.len(),
            mark,
            "a line given up on leaves the output untouched"
        );
        return false;
    }
    let rec = &out[mark..];
    assert_eq!(rec.last(), Some(&b'\n'), "a record ends its line");
    let body = &rec[..rec.len() - 1];
    assert!(!body.contains(&b'\n'), "one record, one line");
    let input: Value = serde_json::from_slice(line).unwrap_or_else(|e| {
        panic!(
            "rendered what serde_json refuses ({e}): {:?}",
            String::from_utf8_lossy(line)
        )
    });
    let input = input.as_object().expect("an object").clone();
    assert!(
        fast_eligible(&input, o),
        "not a fast-path record: {input:?}"
    );
    let got: Value = serde_json::from_slice(body).expect("rendered NDJSON is JSON");
    let want = Value::Object(enriched(input, start, o));
    assert_eq!(
        serde_json::to_string(&got).unwrap(),
        serde_json::to_string(&want).unwrap(),
        "rendered record"
    );
    let mut again = Vec::new();
    render(line, start, o, &mut Scanned::default(), &mut again).expect("deterministic");
    assert_eq!(again, rec, "rendering is deterministic");
    true
}

/// One fuzz input: panics when an invariant breaks.
pub fn check(input: &[u8]) {
    let Some((&sel, chunk)) = input.split_first() else {
        return;
    };
    let o = origin(sel);
    let base: u64 = if sel & 4 != 0 { (1 << 48) + 17 } else { 0 };
    let mut splitter = Splitter::new(base, 1 << 20);
    let mut lines = Vec::new();
    splitter.feed(chunk, &mut lines);
    splitter.finish(&mut lines);

    let mut scan = Scanned::default();
    let mut out = b"(earlier records)\n".to_vec();
    let first = out.len();
    let mut slow = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let a = (l.start - base) as usize;
        let mut raw = &chunk[a..(l.end - base) as usize];
        raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        check_scan(raw, &mut scan);
        check_scan(l.text.as_bytes(), &mut scan);
        // the text's road (what the Python parser sees) must agree with itself too
        let mut scratch = Vec::new();
        check_render(l.text.as_bytes(), l.start, &o, &mut scan, &mut scratch);
        if !check_render(raw, l.start, &o, &mut scan, &mut out) {
            slow.push(i);
        }
    }
    let records = out[first..].iter().filter(|&&b| b == b'\n').count();
    assert_eq!(
        records + slow.len(),
        lines.len(),
        "every line is a record or handed back"
    );
}
