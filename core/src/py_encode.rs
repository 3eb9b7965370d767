//! `logpipe._core` bindings of the sink encoders (`bulk`, `msgpack`): NDJSON records in, the
//! bytes a sink sends out. The callbacks are the Python side's own rules (index names, tags,
//! odd timestamps), asked once per distinct key; the work per record runs without the GIL.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::bulk::{BulkEncoder as CoreBulk, IndexKey};
use crate::msgpack::{
    event_time_text, EntryEncoder as CoreEntries, Limits, TagFields, ENTRY_PREFIX,
};

fn opt_bytes<'py>(py: Python<'py>, v: Option<&[u8]>) -> Bound<'py, PyAny> {
    match v {
        Some(b) => PyBytes::new(py, b).into_any(),
        None => py.None().into_bound(py),
    }
}

/// NDJSON -> Elasticsearch bulk body (`create` actions). `name(day, timestamp, service, kind)`
/// (raw JSON bytes or None; `day` set when read off the timestamp) answers the index as a JSON
/// string.
#[pyclass(module = "logpipe._core")]
struct BulkEncoder {
    inner: CoreBulk,
    name: Py<PyAny>,
}

#[pymethods]
impl BulkEncoder {
    #[new]
    fn new(name: Py<PyAny>) -> Self {
        BulkEncoder {
            inner: CoreBulk::default(),
            name,
        }
    }

    /// (body, end offset of each record's lines in it), or None when a record must take the
    /// Python road.
    fn encode<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
    ) -> PyResult<Option<(Bound<'py, PyBytes>, Vec<usize>)>> {
        let name = &self.name;
        let inner = &mut self.inner;
        let got = py.allow_threads(|| {
            inner.encode(data, &mut |k: &IndexKey| {
                Python::with_gil(|py| -> PyResult<Vec<u8>> {
                    let args = PyTuple::new(
                        py,
                        [
                            opt_bytes(py, k.day),
                            opt_bytes(py, k.timestamp),
                            opt_bytes(py, k.service),
                            opt_bytes(py, k.kind),
                        ],
                    )?;
                    name.bind(py).call1(args)?.extract()
                })
            })
        })?;
        Ok(got.map(|b| (PyBytes::new(py, &b.body), b.ends)))
    }
}

/// NDJSON -> PackedForward entry chunks. `plain`: the tag template's record fields.
#[pyclass(module = "logpipe._core")]
struct EntryEncoder {
    inner: CoreEntries,
}

#[pymethods]
impl EntryEncoder {
    #[new]
    fn new(plain: Vec<String>) -> Self {
        EntryEncoder {
            inner: CoreEntries::new(plain.into_iter().map(String::into_bytes).collect()),
        }
    }

    /// [(group id, entries, count)] in group order, or None when a record must take the Python
    /// road. `time(raw timestamp or None)` answers 8 EventTime bytes; `group(kind, has_status,
    /// has_method, level, [plain values])` (raw JSON bytes or None) a group id.
    fn encode<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
        chunk_bytes: usize,
        chunk_records: usize,
        time: Bound<'py, PyAny>,
        group: Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let limits = Limits {
            bytes: chunk_bytes,
            records: chunk_records,
        };
        let (time, group) = (time.unbind(), group.unbind());
        let inner = &mut self.inner;
        let got = py.allow_threads(|| {
            inner.encode(
                data,
                &limits,
                &mut |ts: Option<&[u8]>| {
                    Python::with_gil(|py| -> PyResult<[u8; 8]> {
                        let b: Vec<u8> = time.bind(py).call1((opt_bytes(py, ts),))?.extract()?;
                        b.try_into().map_err(|_| {
                            pyo3::exceptions::PyValueError::new_err("EventTime must be 8 bytes")
                        })
                    })
                },
                &mut |f: &TagFields| {
                    Python::with_gil(|py| -> PyResult<u64> {
                        let plain = PyList::empty(py);
                        for v in &f.plain {
                            plain.append(opt_bytes(py, *v))?;
                        }
                        group
                            .bind(py)
                            .call1((
                                opt_bytes(py, f.kind),
                                f.has_status,
                                f.has_method,
                                opt_bytes(py, f.level),
                                plain,
                            ))?
                            .extract()
                    })
                },
            )
        })?;
        let Some(chunks) = got else {
            return Ok(None);
        };
        let out = PyList::empty(py);
        for c in chunks {
            out.append((c.group, PyBytes::new(py, &c.entries), c.count))?;
        }
        Ok(Some(out))
    }
}

/// The PackedForward entry prefix (array header + EventTime) of each `@timestamp` value of a
/// batch of records, for the forward sink's dict road: the tailer's form is read here, as
/// `EntryEncoder` reads it; `odd(value)` answers the 8 EventTime bytes of any other value.
#[pyfunction]
fn entry_prefixes<'py>(
    py: Python<'py>,
    stamps: &Bound<'py, PyList>,
    odd: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let mut out = Vec::with_capacity(stamps.len());
    let mut buf = [0u8; 11];
    buf[..3].copy_from_slice(&ENTRY_PREFIX);
    for value in stamps.iter() {
        let read = value
            .downcast::<PyString>()
            .ok()
            .and_then(|s| s.to_str().ok().and_then(|t| event_time_text(t.as_bytes())));
        match read {
            Some((secs, nanos)) => {
                buf[3..7].copy_from_slice(&secs.to_be_bytes());
                buf[7..].copy_from_slice(&nanos.to_be_bytes());
            }
            None => {
                let got: Vec<u8> = odd.call1((value,))?.extract()?;
                if got.len() != 8 {
                    return Err(pyo3::exceptions::PyValueError::new_err(
                        "EventTime must be 8 bytes",
                    ));
                }
                buf[3..].copy_from_slice(&got);
            }
        }
        out.push(PyBytes::new(py, &buf));
    }
    PyList::new(py, out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BulkEncoder>()?;
    m.add_class::<EntryEncoder>()?;
    m.add_function(wrap_pyfunction!(entry_prefixes, m)?)?;
    Ok(())
}
