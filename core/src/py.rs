//! `logpipe._core`: the Python face of the core (thin: the logic lives in the other modules).

use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::json::{Kind, Scanned};
use crate::record::{render, Origin};
use crate::screen::{Scratch, Screen};
use crate::split::{Line, Splitter as CoreSplitter};
use crate::tapcols::{TapCols, Text};

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
    /// Tap strings seen before (methods, routes, levels repeat): one Python object each.
    /// foldhash, seeded per process: a few short keys per record, where SipHash's set-up costs
    /// more than the lookup; the seed keeps crafted keys from colliding on purpose.
    strings: HashMap<Vec<u8>, Py<PyAny>, foldhash::quality::RandomState>,
}

/// Strings longer than this are not kept in `JsonCore::strings`; nor more than `CACHE_MAX` of them.
const CACHE_LEN: usize = 96;
const CACHE_MAX: usize = 20_000;

struct Processed {
    out: Vec<u8>,
    slow: Vec<usize>,
    cuts: Vec<usize>,
    cols: TapCols,
}

impl JsonCore {
    /// Lines the scrub screen flags (indices into `lines`), before any rendering.
    fn screened(&self, data: &[u8], lines: &[(usize, usize)]) -> Vec<usize> {
        let Some(screen) = &self.screen else {
            return Vec::new();
        };
        let mut scratch = Scratch::default();
        lines
            .iter()
            .enumerate()
            .filter(|(_, &(a, b))| screen.flags(&data[a..b], &mut scratch))
            .map(|(i, _)| i)
            .collect()
    }

    /// Render every line except `flagged` (ascending indices), which go the Python way.
    fn run(
        &self,
        data: &[u8],
        base: u64,
        lines: &[(usize, usize)],
        flagged: &[usize],
    ) -> Processed {
        let bytes = lines.last().map_or(0, |l| l.1) - lines.first().map_or(0, |l| l.0);
        let mut p = Processed {
            out: Vec::with_capacity(bytes * 9 / 8 + 4096),
            slow: Vec::new(),
            cuts: Vec::new(),
            cols: TapCols::default(),
        };
        let mut scan = Scanned::default();
        let mut flagged = flagged.iter().peekable();
        for (i, &(a, b)) in lines.iter().enumerate() {
            let is_flagged = flagged.next_if(|&&f| f == i).is_some();
            let mark = p.out.len();
            if is_flagged
                || render(
                    &data[a..b],
                    base + a as u64,
                    &self.origin,
                    &mut scan,
                    &mut p.out,
                )
                .is_none()
            {
                p.slow.push(i);
                p.cuts.push(mark);
                continue;
            }
            if self.tap && !p.cols.take(&scan, i as u32) {
                p.out.truncate(mark);
                p.slow.push(i);
                p.cuts.push(mark);
            }
        }
        p
    }

    /// A tap text as a Python object (None, or the string, shared when seen before).
    fn text<'py>(&mut self, py: Python<'py>, buf: &[u8], t: Text) -> PyResult<Bound<'py, PyAny>> {
        let Some((a, b)) = t else {
            return Ok(py.None().into_bound(py));
        };
        let tok = &buf[a..b];
        if tok.len() > CACHE_LEN {
            return scalar(py, Kind::Str, tok);
        }
        if let Some(obj) = self.strings.get(tok) {
            return Ok(obj.bind(py).clone());
        }
        let obj = scalar(py, Kind::Str, tok)?;
        if self.strings.len() >= CACHE_MAX {
            self.strings.clear();
        }
        self.strings.insert(tok.to_vec(), obj.clone().unbind());
        Ok(obj)
    }

    fn texts<'py>(
        &mut self,
        py: Python<'py>,
        buf: &[u8],
        col: &[Text],
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for &t in col {
            out.append(self.text(py, buf, t)?)?;
        }
        Ok(out)
    }
}

/// (start, end) of at most `limit` lines of `data` (lines joined by newlines, no final one)
/// from byte `at`, a line start; `at == data.len() + 1` means past the last line.
fn line_spans(data: &[u8], at: usize, limit: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut p = at;
    while out.len() < limit && p <= data.len() {
        let end = memchr::memchr(b'\n', &data[p..]).map_or(data.len(), |k| p + k);
        out.push((p, end));
        p = end + 1;
    }
    out
}

/// A column of plain numbers as native-endian bytes (numpy reads them without a copy per value).
fn ne_bytes<'py, T: Copy, const N: usize>(
    py: Python<'py>,
    col: &[T],
    to: impl Fn(T) -> [u8; N],
) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(col.len() * N);
    for &v in col {
        out.extend_from_slice(&to(v));
    }
    PyBytes::new(py, &out)
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
            strings: HashMap::default(),
        })
    }

    /// One call per slice of a chunk: `data` is whole lines joined by newlines (no final one),
    /// `data[0]` at file offset `base`; the call takes at most `limit` lines starting at byte
    /// `at` (a line start). Lines the scrub screen flags are passed (as bytes, in one list) to
    /// `confirm`, the scrubber's exact per-line check, which answers a bool per line; only the
    /// confirmed ones must go the Python way.
    ///
    /// Returns (NDJSON of the fast records, lines taken, `end` = byte just past the last line
    /// taken and its newline (`len(data) + 1` for the last line), the lines Python must handle
    /// as (index among those taken, start byte, end byte without newline), where in the NDJSON
    /// each of those goes, the fast records' tap columns or None). The tap columns are
    /// `(access_lines, methods, paths, routes, status, duration, level_lines, levels)`: line
    /// indices as native u32 bytes, status and duration as native f64 bytes (NaN = absent or
    /// null), the texts as lists of str or None (`logpipe.metrics.columns.TapColumns.from_core`).
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (data, base, confirm=None, at=0, limit=usize::MAX))]
    fn process<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
        base: u64,
        confirm: Option<Bound<'py, PyAny>>,
        at: usize,
        limit: usize,
    ) -> PyResult<(
        Bound<'py, PyBytes>,
        usize,
        usize,
        Vec<(usize, usize, usize)>,
        Vec<usize>,
        Option<Bound<'py, PyTuple>>,
    )> {
        if at > data.len() + 1 {
            return Err(PyValueError::new_err("`at` is past the data"));
        }
        let lines = py.allow_threads(|| line_spans(data, at, limit));
        let end = lines.last().map_or(at, |l| l.1 + 1);
        let mut flagged = py.allow_threads(|| self.screened(data, &lines));
        if let (Some(confirm), false) = (confirm, flagged.is_empty()) {
            let asked = PyList::empty(py);
            for &i in &flagged {
                let (a, b) = lines[i];
                asked.append(PyBytes::new(py, &data[a..b]))?;
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
        let p = py.allow_threads(|| self.run(data, base, &lines, &flagged));
        let tap = if self.tap {
            let c = &p.cols;
            let items: Vec<Bound<'py, PyAny>> = vec![
                ne_bytes(py, &c.access_lines, u32::to_ne_bytes).into_any(),
                self.texts(py, &c.buf, &c.methods)?.into_any(),
                self.texts(py, &c.buf, &c.paths)?.into_any(),
                self.texts(py, &c.buf, &c.routes)?.into_any(),
                ne_bytes(py, &c.status, f64::to_ne_bytes).into_any(),
                ne_bytes(py, &c.duration, f64::to_ne_bytes).into_any(),
                ne_bytes(py, &c.level_lines, u32::to_ne_bytes).into_any(),
                self.texts(py, &c.buf, &c.levels)?.into_any(),
            ];
            Some(PyTuple::new(py, items)?)
        } else {
            None
        };
        let slow = p
            .slow
            .iter()
            .map(|&i| (i, lines[i].0, lines[i].1))
            .collect();
        Ok((
            PyBytes::new(py, &p.out),
            lines.len(),
            end,
            slow,
            p.cuts,
            tap,
        ))
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Splitter>()?;
    m.add_class::<JsonCore>()?;
    crate::py_text::register(m)?;
    crate::py_encode::register(m)?;
    crate::py_scrub::register(m)?;
    Ok(())
}
