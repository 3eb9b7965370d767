//! The fuzzers' corpora and every crash they found, replayed through the same checks on stable
//! (`cargo test`), so CI holds the invariants without a nightly toolchain. The corpora live in
//! `tests/data/fuzz/<target>/`, the crashes in `tests/data/fuzz/regressions/<target>-<what>`;
//! how to run the fuzzers: docs/fuzzing.md.

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../fuzz/checks/split.rs"]
mod split;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/fuzz")
}

/// The files of `dir` (sorted), or those of `regressions/` whose names start with `prefix`.
fn inputs(dir: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .map(|p| (p.display().to_string(), fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn replay(target: &str, check: fn(&[u8])) {
    let corpus = inputs(&data_dir().join(target), "");
    assert!(corpus.len() >= 10, "the {target} corpus is missing");
    let crashes = inputs(&data_dir().join("regressions"), &format!("{target}-"));
    for (name, data) in corpus.iter().chain(&crashes) {
        let res = std::panic::catch_unwind(|| check(data));
        assert!(res.is_ok(), "{name} breaks the {target} invariants");
    }
}

#[test]
fn split_corpus_and_crashes_replay() {
    replay("split", split::check);
}

/// Found by the split fuzzer: a line cut at `max_line` inside a multi-byte character was tagged
/// [_truncated, _invalid_utf8] when it came in one read but [_invalid_utf8, _truncated] when it
/// came across reads, so the record's `tags` depended on the read size.
#[test]
fn split_tag_order_does_not_depend_on_the_chunking() {
    let data = "ééé\n".as_bytes();
    let tags = |sizes: &[usize]| {
        let mut s = _core::split::Splitter::new(0, 3);
        let mut out = Vec::new();
        let mut at = 0;
        for &n in sizes.iter().cycle() {
            if at >= data.len() {
                break;
            }
            let n = n.min(data.len() - at);
            s.feed(&data[at..at + n], &mut out);
            at += n;
        }
        s.finish(&mut out);
        out[0].tags.clone()
    };
    use _core::split::Tag::{InvalidUtf8, Truncated};
    assert_eq!(tags(&[usize::MAX]), vec![InvalidUtf8, Truncated]);
    assert_eq!(tags(&[1]), vec![InvalidUtf8, Truncated]);
}

/// Found by the json_path fuzzer (regressions/json_path-invalid-utf8-in-string): the scanner took
/// any byte >= 0x80 inside a string, so a fast-path record holding invalid UTF-8 was rendered
/// as NDJSON that is not UTF-8 (and so not JSON) instead of going the Python way, which decodes
/// it with replacement and tags it `_invalid_utf8`.
#[test]
fn json_string_with_invalid_utf8_takes_the_python_road() {
    use _core::json::{scan_object, Scanned};
    use _core::record::{render, Origin};
    let crash = fs::read(data_dir().join("regressions/json_path-invalid-utf8-in-string")).unwrap();
    let line = crash[1..].strip_suffix(b"\n").unwrap();
    let mut scan = Scanned::default();
    assert!(scan_object(line, &mut scan).is_none());
    let origin = Origin {
        host: "h".into(),
        path: "/p".into(),
        fp: "0123456789abcdef".into(),
        service: String::new(),
        tags: Vec::new(),
    };
    let mut out = Vec::new();
    assert!(render(line, 0, &origin, &mut scan, &mut out).is_none());
    assert!(out.is_empty());
    // valid multi-byte text still takes the fast road
    let ok = "{\"@timestamp\":\"2026-11-24T07:00:00.000001Z\",\"level\":\"info\",\"message\":\"café ☃\"}";
    assert!(render(ok.as_bytes(), 0, &origin, &mut scan, &mut out).is_some());
    assert!(std::str::from_utf8(&out).is_ok());
}
