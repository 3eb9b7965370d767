//! The metrics tap's columns of the records the core renders (`logpipe.metrics.columns.TapColumns`
//! is the Python side of this contract).
//!
//! The tap reads a few fields of each record: of an access record (one with `method` and
//! `status`, no `event.kind`) the method, path, route, status and duration; of any other record
//! its level. The core keeps those values as columns while it renders, so Python never builds
//! a dict per record for the tap. It vouches only for plain values (strings or null for the
//! texts, numbers or null for status and duration); a record holding anything else, an
//! `exception` or an `event.kind` goes the Python way whole, where the reference reads it.

use crate::json::{Kind, Member, Scanned};

/// A text value: None for JSON null or an absent key, else the token's range (quotes included,
/// escapes as in the source) in `TapCols::buf`.
pub type Text = Option<(usize, usize)>;

#[derive(Default)]
pub struct TapCols {
    pub buf: Vec<u8>,
    /// Index (line within the chunk) of each access record, ascending.
    pub access_lines: Vec<u32>,
    pub methods: Vec<Text>,
    pub paths: Vec<Text>,
    pub routes: Vec<Text>,
    /// NaN where absent or null.
    pub status: Vec<f64>,
    pub duration: Vec<f64>,
    /// Index of each other record that has a `level`, ascending, and that level.
    pub level_lines: Vec<u32>,
    pub levels: Vec<Text>,
}

impl TapCols {
    /// Add the columns of the record scanned into `scan` (line `line` of the chunk); false
    /// (and nothing added) when a value is not one the core vouches for.
    pub fn take(&mut self, scan: &Scanned, line: u32) -> bool {
        if scan.get(b"event.kind").is_some() || scan.get(b"exception").is_some() {
            return false;
        }
        let mark = self.buf.len();
        let done = match (scan.get(b"method"), scan.get(b"status")) {
            (Some(method), Some(status)) => self.access(scan, line, method, status),
            _ => match scan.get(b"level") {
                Some(level) => self.text(scan, Some(level)).map(|t| {
                    self.level_lines.push(line);
                    self.levels.push(t);
                }),
                None => Some(()),
            },
        };
        if done.is_none() {
            self.buf.truncate(mark);
        }
        done.is_some()
    }

    fn access(
        &mut self,
        scan: &Scanned,
        line: u32,
        method: &Member,
        status: &Member,
    ) -> Option<()> {
        let m = self.text(scan, Some(method))?;
        let r = self.text(scan, scan.get(b"route"))?;
        // A record with a route is keyed by it: its path (usually unique, /items/4180) is not
        // needed, so no string is made for it. `""` (two bytes with its quotes) is no route.
        let p = match r {
            Some((a, b)) if b - a > 2 => None,
            _ => self.text(scan, scan.get(b"path"))?,
        };
        let s = number(scan, Some(status))?;
        let d = number(scan, scan.get(b"duration_ms"))?;
        self.access_lines.push(line);
        self.methods.push(m);
        self.paths.push(p);
        self.routes.push(r);
        self.status.push(s);
        self.duration.push(d);
        Some(())
    }

    /// Some(text) for a string or null (or absent), None for any other kind.
    fn text(&mut self, scan: &Scanned, m: Option<&Member>) -> Option<Text> {
        match m {
            None => Some(None),
            Some(m) if m.kind == Kind::Null => Some(None),
            Some(m) if m.kind == Kind::Str => {
                let at = self.buf.len();
                self.buf.extend_from_slice(scan.value(m));
                Some(Some((at, self.buf.len())))
            }
            Some(_) => None,
        }
    }
}

/// A number as Python reads it (an integer token as int then float, others as float); NaN for
/// null or absent; None for any other kind or a number that is not finite.
fn number(scan: &Scanned, m: Option<&Member>) -> Option<f64> {
    let Some(m) = m else {
        return Some(f64::NAN);
    };
    match m.kind {
        Kind::Null => Some(f64::NAN),
        Kind::Num => {
            let text = std::str::from_utf8(scan.value(m)).ok()?;
            let v = if text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
                text.parse::<f64>().ok()?
            } else {
                text.parse::<i64>().ok()? as f64
            };
            v.is_finite().then_some(v)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::scan_object;

    fn cols(lines: &[&str]) -> (TapCols, Vec<bool>) {
        let mut c = TapCols::default();
        let mut scan = Scanned::default();
        let taken = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                scan_object(l.as_bytes(), &mut scan).unwrap();
                c.take(&scan, i as u32)
            })
            .collect();
        (c, taken)
    }

    #[test]
    fn access_records_and_levels_become_columns() {
        let (c, taken) = cols(&[
            r#"{"method":"GET","status":200,"duration_ms":1.5,"path":"/a"}"#,
            r#"{"level":"error"}"#,
            r#"{"method":null,"status":null,"route":"/r"}"#,
            r#"{"message":"no level"}"#,
        ]);
        assert_eq!(taken, [true, true, true, true]);
        assert_eq!(c.access_lines, [0, 2]);
        assert_eq!(c.status[0], 200.0);
        assert!(c.status[1].is_nan() && c.duration[1].is_nan());
        assert_eq!(c.level_lines, [1]);
        let (a, b) = c.paths[0].unwrap();
        assert_eq!(&c.buf[a..b], b"\"/a\"");
        assert!(c.methods[1].is_none() && c.paths[1].is_none());
    }

    #[test]
    fn a_record_with_a_route_leaves_its_path_out() {
        let (c, _) = cols(&[
            r#"{"method":"GET","status":200,"path":"/items/7","route":"/items/{id}"}"#,
            r#"{"method":"GET","status":200,"path":"/items/8","route":""}"#,
        ]);
        assert!(c.paths[0].is_none());
        let (a, b) = c.paths[1].unwrap();
        assert_eq!(&c.buf[a..b], b"\"/items/8\"");
    }

    #[test]
    fn values_the_core_does_not_vouch_for_leave_nothing_behind() {
        let (c, taken) = cols(&[
            r#"{"method":"GET","status":"200"}"#,
            r#"{"method":"GET","status":200,"duration_ms":true}"#,
            r#"{"method":1,"status":200}"#,
            r#"{"level":3}"#,
            r#"{"level":"info","exception":{"type":"E"}}"#,
            r#"{"method":"GET","status":200,"event.kind":"metric"}"#,
        ]);
        assert!(taken.iter().all(|t| !t));
        assert!(c.buf.is_empty() && c.access_lines.is_empty() && c.levels.is_empty());
        let mut scan = Scanned::default();
        for (line, want) in [
            ("-0", Some(0.0)),
            ("2.5", Some(2.5)),
            ("12345678901234567", Some(12345678901234567i64 as f64)),
        ] {
            scan_object(format!(r#"{{"n":{line}}}"#).as_bytes(), &mut scan).unwrap();
            assert_eq!(number(&scan, scan.get(b"n")), want);
        }
    }
}
