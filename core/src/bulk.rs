//! NDJSON records -> an Elasticsearch bulk body: per record a `create` action line (the index
//! and the record's `_id`) and the record itself without its top-level `_id`.
//!
//! The rules are the Python encoder's (`ElasticSink._encode`, kept as the reference road):
//! the document is the record's own bytes with the `_id` pair cut out wherever it sits, a
//! string `_id` goes into the action as it is, an integer or boolean one as its Python text
//! (`str(doc_id)`), a null or missing one leaves the action without `_id`. Index names come
//! from the caller (`IndexNamer` on the Python side), asked once per distinct day, service and
//! `event.kind`. A record this module cannot vouch for (not a JSON object orjson reads as is,
//! an `_id` that is a float, object or list) makes the whole call answer `None`: the caller
//! then takes the Python road for that batch.

use std::collections::HashMap;

use crate::tokens::{lines, Parsed, Tok};

/// What an index name depends on, as raw JSON values of the record (`None`: absent).
/// `day` is the UTC day when it can be read off the timestamp text (`YYYY-MM-DD…Z`); the
/// caller then needs nothing else of the timestamp.
pub struct IndexKey<'a> {
    pub day: Option<&'a [u8]>,
    pub timestamp: Option<&'a [u8]>,
    pub service: Option<&'a [u8]>,
    pub kind: Option<&'a [u8]>,
}

/// A bulk body and where each record's two lines end in it.
#[derive(Default, Debug)]
pub struct Bulk {
    pub body: Vec<u8>,
    pub ends: Vec<usize>,
}

/// Keeps index names (JSON strings) per distinct key across calls.
#[derive(Default)]
pub struct BulkEncoder {
    names: HashMap<Vec<u8>, Vec<u8>>,
    parsed: Parsed,
}

/// Cached names are dropped past this many (the Python namer's own bound).
const NAMES_MAX: usize = 10_000;

/// `YYYY-MM-DD` of a timestamp string whose day the Python rule (`utc_day`) takes from its
/// first ten characters: text without escapes, ASCII there, ending in `Z` or `+00:00`, or
/// exactly ten characters long.
fn day_of(ts: &[u8]) -> Option<&[u8]> {
    if ts.len() < 12 || ts[0] != b'"' || ts.contains(&b'\\') {
        return None;
    }
    let text = &ts[1..ts.len() - 1];
    if text.len() < 10 || !text[..10].is_ascii() {
        return None;
    }
    (text.len() == 10 || text.ends_with(b"Z") || text.ends_with(b"+00:00")).then(|| &text[..10])
}

impl BulkEncoder {
    /// Encode `data` (records, each ending in a newline). `name` gives the index name of a key
    /// as a JSON string. `Ok(None)`: a record must take the Python road (see the module doc).
    pub fn encode<E>(
        &mut self,
        data: &[u8],
        name: &mut impl FnMut(&IndexKey) -> Result<Vec<u8>, E>,
    ) -> Result<Option<Bulk>, E> {
        let mut out = Bulk {
            body: Vec::with_capacity(data.len() + data.len() / 4 + 64),
            ends: Vec::new(),
        };
        if data.is_empty() {
            return Ok(Some(out));
        }
        if data.last() != Some(&b'\n') {
            return Ok(None);
        }
        let mut key = Vec::new();
        for line in lines(data) {
            if self.parsed.parse(line).is_none() {
                return Ok(None);
            }
            let p = &self.parsed;
            // one pass over the top-level members for the four this encoder reads
            let (mut ts, mut service, mut kind, mut at) = (None, None, None, None);
            let mut buf = Vec::new();
            for (k, m) in p.members.iter().enumerate() {
                let value = &line[m.val_start..m.val_end];
                match p.text(line, m.key, &mut buf) {
                    b"@timestamp" => ts = Some(value),
                    b"service" => service = Some(value),
                    b"event.kind" => kind = Some(value),
                    b"_id" => at = Some(k),
                    _ => {}
                }
            }
            let service = service.filter(|v| *v != b"null");
            let kind = kind.filter(|v| *v != b"null");
            let ts = ts.filter(|v| *v != b"null");
            let day = ts.and_then(day_of);
            let ik = IndexKey {
                day,
                timestamp: ts,
                service,
                kind,
            };
            out.body.extend_from_slice(b"{\"create\":{\"_index\":");
            match day {
                Some(d) => {
                    key.clear();
                    for part in [Some(d), service, kind] {
                        match part {
                            Some(v) => {
                                key.push(1);
                                key.extend_from_slice(v);
                            }
                            None => key.push(0),
                        }
                        key.push(0xff); // never in UTF-8
                    }
                    if let Some(n) = self.names.get(&key) {
                        out.body.extend_from_slice(n);
                    } else {
                        let n = name(&ik)?;
                        out.body.extend_from_slice(&n);
                        if self.names.len() >= NAMES_MAX {
                            self.names.clear();
                        }
                        self.names.insert(key.clone(), n);
                    }
                }
                None => out.body.extend_from_slice(&name(&ik)?),
            }
            let p = &self.parsed;
            match at.map(|k| (k, &p.members[k], p.toks[p.members[k].val])) {
                None | Some((_, _, Tok::Null)) => {}
                Some((_, m, Tok::Str(..))) => {
                    out.body.extend_from_slice(b",\"_id\":");
                    out.body.extend_from_slice(&line[m.val_start..m.val_end]);
                }
                Some((_, _, t @ (Tok::Int(_) | Tok::UInt(_) | Tok::Bool(_)))) => {
                    let text = match t {
                        Tok::Int(v) => v.to_string(),
                        Tok::UInt(v) => v.to_string(),
                        Tok::Bool(true) => "True".into(),
                        _ => "False".into(),
                    };
                    out.body.extend_from_slice(b",\"_id\":\"");
                    out.body.extend_from_slice(text.as_bytes());
                    out.body.push(b'"');
                }
                Some(_) => return Ok(None),
            }
            out.body.extend_from_slice(b"}}\n");
            match at {
                None => out.body.extend_from_slice(line),
                Some(k) => {
                    let ms = &p.members;
                    let (cut_from, cut_to) = if k > 0 {
                        (ms[k - 1].val_end, ms[k].val_end)
                    } else if ms.len() > 1 {
                        (ms[0].pair_start, ms[1].pair_start)
                    } else {
                        (ms[0].pair_start, ms[0].val_end)
                    };
                    out.body.extend_from_slice(&line[..cut_from]);
                    out.body.extend_from_slice(&line[cut_to..]);
                }
            }
            out.body.push(b'\n');
            out.ends.push(out.body.len());
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(data: &str) -> Option<String> {
        let mut e = BulkEncoder::default();
        let mut asked = 0;
        let got = e
            .encode(data.as_bytes(), &mut |k: &IndexKey| {
                asked += 1;
                let day = String::from_utf8(k.day.unwrap_or(b"today").to_vec()).unwrap();
                Ok::<_, ()>(format!("\"logs-{day}\"").into_bytes())
            })
            .unwrap()?;
        Some(String::from_utf8(got.body).unwrap())
    }

    #[test]
    fn cuts_the_id_wherever_it_sits() {
        let ts = r#""@timestamp":"2026-11-24T07:00:00.000001Z""#;
        let data = format!("{{{ts},\"_id\":\"a\"}}\n{{\"_id\":\"b\",{ts}}}\n{{\"_id\":\"c\"}}\n");
        assert_eq!(
            enc(&data).unwrap(),
            format!(
                "{{\"create\":{{\"_index\":\"logs-2026-11-24\",\"_id\":\"a\"}}}}\n{{{ts}}}\n\
                 {{\"create\":{{\"_index\":\"logs-2026-11-24\",\"_id\":\"b\"}}}}\n{{{ts}}}\n\
                 {{\"create\":{{\"_index\":\"logs-today\",\"_id\":\"c\"}}}}\n{{}}\n"
            )
        );
    }

    #[test]
    fn ids_that_are_not_strings_take_their_python_text() {
        assert_eq!(
            enc("{\"_id\":12,\"a\":1}\n{\"a\":1,\"_id\":true}\n{\"_id\":null}\n").unwrap(),
            "{\"create\":{\"_index\":\"logs-today\",\"_id\":\"12\"}}\n{\"a\":1}\n\
             {\"create\":{\"_index\":\"logs-today\",\"_id\":\"True\"}}\n{\"a\":1}\n\
             {\"create\":{\"_index\":\"logs-today\"}}\n{}\n"
        );
        assert!(enc("{\"_id\":1.5}\n").is_none());
        assert!(enc("{\"_id\":[1]}\n").is_none());
        assert!(enc("{\"a\":1}").is_none()); // no final newline
        assert!(enc("not json\n").is_none());
    }

    #[test]
    fn a_nested_id_stays() {
        assert_eq!(
            enc("{\"x\":{\"_id\":\"a\"},\"_id\":\"a\"}\n").unwrap(),
            "{\"create\":{\"_index\":\"logs-today\",\"_id\":\"a\"}}\n{\"x\":{\"_id\":\"a\"}}\n"
        );
    }
}
