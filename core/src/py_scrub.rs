//! `logpipe._core.ScrubCore`: the native scrubber's Python face (`logpipe.scrub.Scrubber` wraps it).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::scrub::{mask_ip, Action, Config, RuleSpec, Scrubber};

type RuleRow = (String, String, String, String, String, String);

/// A compiled scrubber; immutable, so threads share it without locking.
#[pyclass(module = "logpipe._core", frozen)]
struct ScrubCore {
    inner: Scrubber,
}

#[pymethods]
impl ScrubCore {
    /// `rules`: the rows of `logpipe.scrub_rules.RULES`; `extra_patterns`: (origin, pattern) pairs,
    /// the origin naming the config key and file for the error message.
    #[new]
    #[pyo3(signature = (rules, extra_patterns, token_pattern, key, key_words, word_keys, allow_keys, unicode_age=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        rules: Vec<RuleRow>,
        extra_patterns: Vec<(String, String)>,
        token_pattern: String,
        key: Option<Vec<u8>>,
        key_words: Vec<String>,
        word_keys: Vec<String>,
        allow_keys: Vec<String>,
        unicode_age: Option<String>,
    ) -> PyResult<Self> {
        let mut specs = Vec::with_capacity(rules.len());
        for (name, pattern, action, kind, label, guard) in rules {
            let action = Action::parse(&action).map_err(PyValueError::new_err)?;
            specs.push(RuleSpec {
                name,
                pattern,
                action,
                kind,
                label,
                guard,
            });
        }
        let cfg = Config {
            rules: specs,
            extra_patterns,
            token_pattern,
            key,
            key_words,
            word_keys,
            allow_keys,
            unicode_age,
        };
        let inner = Scrubber::new(&cfg).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(ScrubCore { inner })
    }

    /// Mask every finding in one string (the same object back when nothing changed).
    fn scrub_text<'py>(&self, text: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyString>> {
        let s = text.to_str()?;
        Ok(match self.inner.scrub_text(s) {
            std::borrow::Cow::Borrowed(_) => text.clone(),
            std::borrow::Cow::Owned(o) => PyString::new(text.py(), &o),
        })
    }

    fn token(&self, kind: &str, value: &str) -> String {
        self.inner.token(kind, value)
    }

    fn is_sensitive_key(&self, key: &str) -> bool {
        self.inner.is_sensitive_key(key)
    }

    fn is_token(&self, text: &str) -> bool {
        self.inner.is_token(text)
    }

    /// The masked address, or None when `value` is not an IP address.
    #[staticmethod]
    fn mask_ip(value: &str) -> Option<String> {
        mask_ip(value)
    }

    /// `orjson.dumps(scrub_value(orjson.loads(line)))` for a line orjson wrote (newline kept);
    /// None when the line is not one this walk vouches for.
    #[pyo3(signature = (line, mask_client_ip=false))]
    fn scrub_json<'py>(
        &self,
        py: Python<'py>,
        line: &[u8],
        mask_client_ip: bool,
    ) -> Option<Bound<'py, PyBytes>> {
        let mut out = Vec::with_capacity(line.len() + 16);
        self.inner.scrub_json(line, mask_client_ip, &mut out)?;
        Some(PyBytes::new(py, &out))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ScrubCore>()
}
