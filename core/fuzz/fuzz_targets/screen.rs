#![no_main]
//! The scrub screen must never pass a line the scrubber's exact check flags.
//!
//! The oracle is `logpipe.scrub.Scrubber.suspicious_bytes` itself, run in an embedded Python
//! (pyo3), on the tables its `screen_tables()` hands the core. Input: byte 0 picks the scrubber's
//! configuration (default redact, or pseudonym + client-ip masking + an extra key); the rest is
//! split at newlines into lines. Only lines the core's road can see are checked: valid UTF-8, no
//! CR, no NUL (the splitter hands everything else to Python). Run with PYTHONPATH at the repo
//! root and LD_LIBRARY_PATH at libpython's directory (docs/fuzzing.md).

use _core::screen::Screen;
use pyo3::prelude::*;
use std::sync::OnceLock;

const CONFIGS: [&str; 2] = [
    "Scrubber()",
    "Scrubber(mode='pseudonym', key=b'k3y', mask_client_ip=True, extra_keys=['employee_number'], allow_keys=['token'])",
];

static SIDES: OnceLock<Vec<(Py<PyAny>, Screen)>> = OnceLock::new();

fn sides() -> &'static [(Py<PyAny>, Screen)] {
    SIDES.get_or_init(|| {
        Python::with_gil(|py| {
            let scrub = py
                .import("logpipe.scrub")
                .expect("PYTHONPATH must reach logpipe");
            let ns = scrub.dict();
            CONFIGS
                .iter()
                .map(|c| {
                    let s = py
                        .eval(&std::ffi::CString::new(*c).unwrap(), Some(&ns), None)
                        .expect("a scrubber");
                    let (fold, lut, needles): (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) = s
                        .call_method0("screen_tables")
                        .and_then(|t| t.extract())
                        .expect("screen tables");
                    (
                        s.unbind(),
                        Screen::new(&fold, &lut, needles).expect("valid tables"),
                    )
                })
                .collect()
        })
    })
}

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let Some((&sel, rest)) = input.split_first() else {
        return;
    };
    let (scrubber, screen) = &sides()[sel as usize % CONFIGS.len()];
    let mut scratch = Vec::new();
    Python::with_gil(|py| {
        for line in rest.split(|&b| b == b'\n') {
            if std::str::from_utf8(line).is_err() || line.contains(&b'\r') || line.contains(&0) {
                continue;
            }
            if screen.flags(line, &mut scratch) {
                continue;
            }
            let exact: bool = scrubber
                .bind(py)
                .call_method1("suspicious_bytes", (pyo3::types::PyBytes::new(py, line),))
                .and_then(|r| r.extract())
                .expect("suspicious_bytes");
            assert!(
                !exact,
                "the screen passes a line the scrubber flags: {:?}",
                String::from_utf8_lossy(line)
            );
        }
    });
});
