//! `logpipe._core.TextCore`: the text formats' fast road, with `JsonCore.process`'s call shape so
//! `logpipe.coreroute` can hold either (the format picks the class).

use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::record::Origin;
use crate::screen::{Scratch, Screen};
use crate::text::{multiline, render, time, Format, TapView};

/// The scrub screen's tables as `logpipe.scrub` hands them over: (fold, trigram table, literals).
type ScreenTables = (Vec<u8>, Vec<u8>, Vec<Vec<u8>>);

/// One stream's text fast road: lines of one format -> enriched NDJSON, plus the lines Python
/// must handle (those the scanner cannot vouch for, and those the scrub screen flags).
#[pyclass(module = "logpipe._core")]
struct TextCore {
    fmt: Format,
    origin: Origin,
    screen: Option<Screen>,
    tap: bool,
    naive_utc: bool,
    /// Tap-view objects seen before (paths, statuses repeat): one Python object each.
    strings: HashMap<String, Py<PyString>>,
    statuses: HashMap<u16, Py<PyAny>>,
}

/// Paths longer than this are not kept in `TextCore::strings`; nor more than `CACHE_MAX` of them.
const CACHE_LEN: usize = 96;
const CACHE_MAX: usize = 20_000;

struct Processed<'a> {
    out: Vec<u8>,
    slow: Vec<usize>,
    cuts: Vec<usize>,
    tap: Vec<TapView<'a>>,
}

/// The lines (or events) of one call: (file offset, bytes).
type Items<'a> = Vec<(u64, &'a [u8])>;

impl TextCore {
    fn screened(&self, items: &Items) -> Vec<usize> {
        let Some(screen) = &self.screen else {
            return Vec::new();
        };
        let mut scratch = Scratch::default();
        items
            .iter()
            .enumerate()
            .filter(|(_, (_, line))| screen.flags(line, &mut scratch))
            .map(|(i, _)| i)
            .collect()
    }

    fn run<'a>(&self, items: &Items<'a>, flagged: &[usize]) -> Processed<'a> {
        let size: usize = items.iter().map(|(_, l)| l.len() + 1).sum();
        let mut p = Processed {
            out: Vec::with_capacity(size * 4 + 4096),
            slow: Vec::new(),
            cuts: Vec::new(),
            tap: Vec::new(),
        };
        let mut last = time::Last::default();
        let mut flagged = flagged.iter().peekable();
        for (i, &(start, line)) in items.iter().enumerate() {
            let is_flagged = flagged.next_if(|&&f| f == i).is_some();
            let view = match (is_flagged, std::str::from_utf8(line)) {
                (false, Ok(text)) => render(
                    self.fmt,
                    text,
                    start,
                    &self.origin,
                    self.naive_utc,
                    &mut last,
                    &mut p.out,
                ),
                _ => None,
            };
            match view {
                Some(v) if self.tap => p.tap.push(v),
                Some(_) => {}
                None => {
                    p.slow.push(i);
                    p.cuts.push(p.out.len());
                }
            }
        }
        p
    }

    /// Screen, confirm, render: the work of `process` and `process_texts`.
    fn go<'py>(
        &mut self,
        py: Python<'py>,
        items: Items,
        confirm: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Outcome<'py>> {
        let mut flagged = py.allow_threads(|| self.screened(&items));
        if let (Some(confirm), false) = (confirm, flagged.is_empty()) {
            let asked = PyList::empty(py);
            for &i in &flagged {
                asked.append(PyBytes::new(py, items[i].1))?;
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
        let p = py.allow_threads(|| self.run(&items, &flagged));
        let tap = if self.tap {
            Some(self.tap_views(py, &p.tap)?)
        } else {
            None
        };
        Ok((PyBytes::new(py, &p.out), p.slow, p.cuts, tap))
    }

    fn tap_views<'py>(
        &mut self,
        py: Python<'py>,
        views: &[TapView],
    ) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        let (k_method, k_path, k_status, k_duration) = (
            PyString::intern(py, "method"),
            PyString::intern(py, "path"),
            PyString::intern(py, "status"),
            PyString::intern(py, "duration_ms"),
        );
        for v in views {
            let d = PyDict::new(py);
            if let Some(m) = v.method {
                let upper = m.to_ascii_uppercase();
                d.set_item(&k_method, PyString::intern(py, &upper))?;
            }
            if let Some(path) = v.path {
                if path.len() > CACHE_LEN {
                    d.set_item(&k_path, path)?;
                } else if let Some(obj) = self.strings.get(path) {
                    d.set_item(&k_path, obj.bind(py))?;
                } else {
                    if self.strings.len() >= CACHE_MAX {
                        self.strings.clear();
                    }
                    let obj = PyString::new(py, path);
                    self.strings.insert(path.to_owned(), obj.clone().unbind());
                    d.set_item(&k_path, obj)?;
                }
            }
            if let Some(s) = v.status {
                let obj = match self.statuses.get(&s) {
                    Some(obj) => obj.clone_ref(py),
                    None => {
                        let obj = s.into_pyobject(py)?.into_any().unbind();
                        self.statuses.insert(s, obj.clone_ref(py));
                        obj
                    }
                };
                d.set_item(&k_status, obj)?;
            }
            if let Some(ms) = v.duration_ms {
                d.set_item(&k_duration, ms as f64)?;
            }
            if let Some(level) = &v.level {
                d.set_item(PyString::intern(py, "level"), PyString::intern(py, level))?;
            }
            list.append(d)?;
        }
        Ok(list)
    }
}

/// What `process` answers: (NDJSON, slow indices, cuts, tap views or None).
type Outcome<'py> = (
    Bound<'py, PyBytes>,
    Vec<usize>,
    Vec<usize>,
    Option<Bound<'py, PyList>>,
);

#[pymethods]
impl TextCore {
    /// `fmt`: a text format name (`common`, `combined`); `screen` as for `JsonCore`;
    /// `naive_utc`: the stream's zone is UTC (naive timestamps are taken as they are).
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (fmt, host, path, fp, service, tags, screen, tap, naive_utc))]
    fn new(
        fmt: &str,
        host: String,
        path: String,
        fp: String,
        service: String,
        tags: Vec<String>,
        screen: Option<ScreenTables>,
        tap: bool,
        naive_utc: bool,
    ) -> PyResult<Self> {
        let fmt = Format::from_name(fmt)
            .ok_or_else(|| PyValueError::new_err(format!("the core has no text format {fmt:?}")))?;
        let screen = match screen {
            Some((fold, lut, needles)) => {
                let screen = Screen::new(&fold, &lut, needles).map_err(PyValueError::new_err)?;
                Some(screen.with_userinfo_rule())
            }
            None => None,
        };
        Ok(TextCore {
            fmt,
            origin: Origin {
                host,
                path,
                fp,
                service,
                tags,
            },
            screen,
            tap,
            naive_utc,
            strings: HashMap::new(),
            statuses: HashMap::new(),
        })
    }

    /// As `JsonCore.process`: `data` is whole lines joined by newlines (no final one), the first
    /// at file offset `base`; `confirm` answers, per flagged line, whether the scrubber must see
    /// it. Returns (NDJSON of the fast records, indices of the lines Python must handle, where in
    /// the NDJSON each of those goes, tap views of the fast records or None).
    #[pyo3(signature = (data, base, confirm=None))]
    fn process<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
        base: u64,
        confirm: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Outcome<'py>> {
        let mut pos = base;
        let items = data
            .split(|&b| b == b'\n')
            .map(|line| {
                let start = pos;
                pos += line.len() as u64 + 1;
                (start, line)
            })
            .collect();
        self.go(py, items, confirm)
    }

    /// `process` for events that need not be adjacent lines (the multi-line joiner's events,
    /// blank lines left out): `texts[i]` starts at file offset `starts[i]`. An event of more than
    /// one line always goes the Python way.
    #[pyo3(signature = (texts, starts, confirm=None))]
    fn process_texts<'py>(
        &mut self,
        py: Python<'py>,
        texts: Vec<String>,
        starts: Vec<u64>,
        confirm: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Outcome<'py>> {
        if texts.len() != starts.len() {
            return Err(PyValueError::new_err("one start offset per text"));
        }
        let items = starts
            .iter()
            .zip(&texts)
            .map(|(&s, t)| (s, t.as_bytes()))
            .collect();
        self.go(py, items, confirm)
    }
}

/// Multi-line grouping (`logpipe.parse.multiline.MultilineJoiner`'s rules) in the core.
#[pyclass(module = "logpipe._core")]
struct Joiner {
    inner: multiline::Joiner,
}

type EventTuple = (u64, u64, String, bool);

fn events(v: Vec<multiline::Event>) -> Vec<EventTuple> {
    v.into_iter()
        .map(|e| (e.start, e.end, e.text, e.capped))
        .collect()
}

#[pymethods]
impl Joiner {
    /// `start_pattern`: a user's start pattern (None: the built-in rules, `timestamped` for the
    /// Python text formats). A pattern the core's regex engine cannot take raises ValueError
    /// with the engine's reason.
    #[new]
    #[pyo3(signature = (start_pattern, timestamped, max_lines, max_bytes))]
    fn new(
        start_pattern: Option<&str>,
        timestamped: bool,
        max_lines: usize,
        max_bytes: u64,
    ) -> PyResult<Self> {
        let rule = match start_pattern {
            Some(p) => multiline::Rule::start_pattern(p).map_err(PyValueError::new_err)?,
            None => multiline::Rule::Builtin { timestamped },
        };
        Ok(Joiner {
            inner: multiline::Joiner::new(rule, max_lines, max_bytes),
        })
    }

    /// Complete lines [(start, end, text)] in file order -> the events they completed
    /// [(start, end, text, capped)].
    fn feed(&mut self, lines: Vec<(u64, u64, String)>) -> Vec<EventTuple> {
        let mut out = Vec::new();
        self.inner.feed(lines, &mut out);
        events(out)
    }

    /// The pending event, forced out (zero or one).
    fn flush(&mut self) -> Vec<EventTuple> {
        events(self.inner.flush().into_iter().collect())
    }

    #[getter]
    fn pending_start(&self) -> Option<u64> {
        self.inner.pending_start()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TextCore>()?;
    m.add_class::<Joiner>()
}
