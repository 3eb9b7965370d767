//! `logpipe._core`: the Python face of the core (thin: the logic lives in the other modules).

use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::json::{Kind, Scanned};
use crate::record::{render, Origin};
use crate::screen::Screen;
use crate::split::{Line, Splitter as CoreSplitter};

/// Keys the metrics tap reads; a fast record's tap view holds those it has.
const TAP_KEYS: [&str; 6] = ["method", "path", "route", "status", "duration_ms", "level"];
/// A record with one of these goes the Python way when the tap is on (the tap reads them as
/// Python objects: exception types, derived records).
const TAP_SLOW_KEYS: [&[u8]; 2] = [b"exception", b"event.kind"];

/// The incremental line splitter (the same contract as `logpipe.tail.lines.LineSplitter`).
#[pyclass(module = "logpipe._core")]
struct Splitter {
    inner: CoreSplitter,
}

fn lines_to_py(py: Python<'_>, lines: Vec<Line>) -> PyResult<Bound<'_, PyList>> {
    let out = PyList::empty(py);
    for l in lines {
        let tags: Vec<&str> = l.tags.iter().map(|t| t.name()).collect();
        out.append((l.start, l.end, l.text, tags))?;
    }
    Ok(out)
}

#[pymethods]
impl Splitter {
    #[new]
    #[pyo3(signature = (offset=0, max_line_bytes=1_048_576))]
    fn new(offset: u64, max_line_bytes: usize) -> Self {
        Splitter {
            inner: CoreSplitter::new(offset, max_line_bytes),
        }
    }

    /// The lines these bytes complete: [(start, end, text, [tags])].
    fn feed<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyList>> {
        let mut out = Vec::new();
        self.inner.feed(data, &mut out);
        lines_to_py(py, out)
    }

    /// EOF of a file read once: the unfinished last line, if any.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut out = Vec::new();
        self.inner.finish(&mut out);
        lines_to_py(py, out)
    }

    #[getter]
    fn offset(&self) -> u64 {
        self.inner.offset
    }

    #[getter]
    fn consumed(&self) -> u64 {
        self.inner.consumed()
    }
}

/// The scrub screen's tables as `logpipe.scrub` hands them over: (fold, trigram table, literals).
type ScreenTables = (Vec<u8>, Vec<u8>, Vec<Vec<u8>>);

/// One stream's JSON fast road: lines -> enriched NDJSON, plus the lines Python must handle.
#[pyclass(module = "logpipe._core")]
struct JsonCore {
    origin: Origin,
    screen: Option<Screen>,
    tap: bool,
    /// Tap-view strings seen before (methods, routes, levels repeat): one Python object each.
    strings: HashMap<Vec<u8>, Py<PyAny>>,
}

/// Strings longer than this are not kept in `JsonCore::strings`; nor more than `CACHE_MAX` of them.
const CACHE_LEN: usize = 96;
const CACHE_MAX: usize = 20_000;

struct Processed {
    out: Vec<u8>,
    slow: Vec<usize>,
    cuts: Vec<usize>,
    /// Per fast record: (index of the line, value ranges for TAP_KEYS in `tap_buf`).
    tap: Vec<[(Kind, usize, usize); 6]>,
    tap_buf: Vec<u8>,
}

const ABSENT: (Kind, usize, usize) = (Kind::Null, usize::MAX, 0);

impl JsonCore {
    /// Lines the scrub screen flags (indices), before any rendering.
    fn screened(&self, data: &[u8]) -> Vec<usize> {
        let Some(screen) = &self.screen else {
            return Vec::new();
        };
        let mut scratch = Vec::new();
        data.split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, line)| screen.flags(line, &mut scratch))
            .map(|(i, _)| i)
            .collect()
    }

    /// Render every line except `flagged` (ascending indices), which go the Python way.
    fn run(&self, data: &[u8], base: u64, flagged: &[usize]) -> Processed {
        let mut p = Processed {
            out: Vec::with_capacity(data.len() * 9 / 8 + 4096),
            slow: Vec::new(),
            cuts: Vec::new(),
            tap: Vec::new(),
            tap_buf: Vec::new(),
        };
        let mut scan = Scanned::default();
        let mut pos = 0usize;
        let mut flagged = flagged.iter().peekable();
        for (i, line) in data.split(|&b| b == b'\n').enumerate() {
            let start = base + pos as u64;
            pos += line.len() + 1;
            let is_flagged = flagged.next_if(|&&f| f == i).is_some();
            let mark = p.out.len();
            if is_flagged || render(line, start, &self.origin, &mut scan, &mut p.out).is_none() {
                p.slow.push(i);
                p.cuts.push(mark);
                continue;
            }
            let tap_slow = self.tap
                && (scan
                    .members
                    .iter()
                    .any(|m| TAP_SLOW_KEYS.contains(&scan.key(m)))
                    || !self.take_tap_view(&scan, &mut p));
            if tap_slow {
                p.out.truncate(mark);
                p.slow.push(i);
                p.cuts.push(mark);
            }
        }
        p
    }

    /// Keep the tap keys' values of a rendered record; false when one is an object or a list.
    fn take_tap_view(&self, scan: &Scanned, p: &mut Processed) -> bool {
        let mut view = [ABSENT; 6];
        for (slot, key) in view.iter_mut().zip(TAP_KEYS) {
            if let Some(m) = scan.get(key.as_bytes()) {
                if matches!(m.kind, Kind::Obj | Kind::Arr) {
                    return false;
                }
                let v = scan.value(m);
                let at = p.tap_buf.len();
                p.tap_buf.extend_from_slice(v);
                *slot = (m.kind, at, p.tap_buf.len());
            }
        }
        p.tap.push(view);
        true
    }
}

/// A scalar JSON token (as the fast road accepts them) as a Python object.
fn scalar<'py>(py: Python<'py>, kind: Kind, tok: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let text = std::str::from_utf8(tok).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(match kind {
        Kind::Str => unescape(&text[1..text.len() - 1])
            .into_pyobject(py)?
            .into_any(),
        Kind::Num if text.contains('.') => text
            .parse::<f64>()
            .map_err(|e| PyValueError::new_err(e.to_string()))?
            .into_pyobject(py)?
            .into_any(),
        Kind::Num => text
            .parse::<i64>()
            .map_err(|e| PyValueError::new_err(e.to_string()))?
            .into_pyobject(py)?
            .into_any(),
        Kind::Bool => (text == "true").into_pyobject(py)?.to_owned().into_any(),
        _ => py.None().into_bound(py),
    })
}

/// JSON string contents (no `\u`: the scanner refuses those) -> the string.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some(other) => other,
            None => break,
        });
    }
    out
}

#[pymethods]
impl JsonCore {
    /// `screen`: (fold table, trigram table, literals) from `logpipe.scrub`, or None when scrub
    /// is off. `tap`: also return each fast record's tap view.
    #[new]
    #[pyo3(signature = (host, path, fp, service, tags, screen, tap))]
    fn new(
        host: String,
        path: String,
        fp: String,
        service: String,
        tags: Vec<String>,
        screen: Option<ScreenTables>,
        tap: bool,
    ) -> PyResult<Self> {
        let screen = match screen {
            Some((fold, lut, needles)) => {
                Some(Screen::new(&fold, &lut, needles).map_err(PyValueError::new_err)?)
            }
            None => None,
        };
        Ok(JsonCore {
            origin: Origin {
                host,
                path,
                fp,
                service,
                tags,
            },
            screen,
            tap,
            strings: HashMap::new(),
        })
    }

    /// One call per chunk: `data` is whole lines joined by newlines (no final one), the first at
    /// file offset `base`. Lines the scrub screen flags are passed (as bytes, in one list) to
    /// `confirm`, the scrubber's exact per-line check, which answers a bool per line; only the
    /// confirmed ones must go the Python way. Returns (NDJSON of the fast records, indices of the
    /// lines Python must handle, where in the NDJSON each of those goes, tap views of the fast
    /// records or None).
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (data, base, confirm=None))]
    fn process<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
        base: u64,
        confirm: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(
        Bound<'py, PyBytes>,
        Vec<usize>,
        Vec<usize>,
        Option<Bound<'py, PyList>>,
    )> {
        let mut flagged = py.allow_threads(|| self.screened(data));
        if let (Some(confirm), false) = (confirm, flagged.is_empty()) {
            let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
            let asked = PyList::empty(py);
            for &i in &flagged {
                asked.append(PyBytes::new(py, lines[i]))?;
            }
            let answers: Vec<bool> = confirm.call1((asked,))?.extract()?;
            if answers.len() != flagged.len() {
                return Err(PyValueError::new_err(
                    "confirm must answer one bool per line",
                ));
            }
            flagged = flagged
                .into_iter()
                .zip(answers)
                .filter(|&(_, yes)| yes)
                .map(|(i, _)| i)
                .collect();
        }
        let p = py.allow_threads(|| self.run(data, base, &flagged));
        let tap = if self.tap {
            let list = PyList::empty(py);
            let keys: Vec<Bound<'py, PyString>> =
                TAP_KEYS.iter().map(|k| PyString::intern(py, k)).collect();
            for view in &p.tap {
                let d = PyDict::new(py);
                for (key, &(kind, a, b)) in keys.iter().zip(view.iter()) {
                    if a == usize::MAX {
                        continue;
                    }
                    let tok = &p.tap_buf[a..b];
                    if kind == Kind::Str && tok.len() <= CACHE_LEN {
                        if let Some(obj) = self.strings.get(tok) {
                            d.set_item(key, obj.bind(py))?;
                            continue;
                        }
                        let obj = scalar(py, kind, tok)?;
                        if self.strings.len() >= CACHE_MAX {
                            self.strings.clear();
                        }
                        self.strings.insert(tok.to_vec(), obj.clone().unbind());
                        d.set_item(key, obj)?;
                    } else {
                        d.set_item(key, scalar(py, kind, tok)?)?;
                    }
                }
                list.append(d)?;
            }
            Some(list)
        } else {
            None
        };
        Ok((PyBytes::new(py, &p.out), p.slow, p.cuts, tap))
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Splitter>()?;
    m.add_class::<JsonCore>()?;
    crate::py_scrub::register(m)?;
    Ok(())
}
