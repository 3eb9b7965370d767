//! Multi-line events: continuation lines (Python tracebacks, multi-line messages, or whatever a
//! user's start pattern says) joined to the event they belong to, as
//! `logpipe.parse.multiline.MultilineJoiner` does (its rules, its caps, its offsets).
//!
//! Lines come with their byte offsets; events go out with the start of their first line and the
//! end of their last. The last event is held until another starts or `flush` is called.

use regex::Regex;

use super::pyuni::{ISALNUM, ISDIGIT, ISSPACE};

const TB_PREFIX: &str = "Traceback (most recent call last)";
const CHAIN_PREFIXES: [&str; 2] = [
    "During handling of the above exception",
    "The above exception was the direct cause",
];
const FOREIGN_LEVELS: [&str; 8] = [
    "DEBUG:",
    "INFO:",
    "WARNING:",
    "WARN:",
    "ERROR:",
    "CRITICAL:",
    "FATAL:",
    "TRACE:",
];

fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    table
        .binary_search_by(|&(a, b)| {
            if b < c {
                std::cmp::Ordering::Less
            } else if a > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// `str.isspace()` of one character.
pub fn py_space(c: char) -> bool {
    if c.is_ascii() {
        return matches!(c, ' ' | '\t'..='\r' | '\x1c'..='\x1f');
    }
    in_table(ISSPACE, c)
}

/// `not text.strip()`: empty or only whitespace in Python's sense.
fn py_blank(t: &str) -> bool {
    t.chars().all(py_space)
}

/// Python's `re` `\w` on `str`.
fn py_word(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    in_table(ISALNUM, c)
}

/// `text[:4].isdigit()`.
fn py_digits4(t: &str) -> bool {
    let mut n = 0;
    for c in t.chars().take(4) {
        if !(c.is_ascii_digit() || (!c.is_ascii() && in_table(ISDIGIT, c))) {
            return false;
        }
        n += 1;
    }
    n > 0
}

/// `EXC_LINE.match(t)`: `[A-Za-z_][\w.]*(?::(?: |$)|$)`, the last line of a traceback.
fn exc_line(t: &str) -> bool {
    let mut chars = t.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    let rest = chars.as_str();
    let run = rest
        .char_indices()
        .find(|&(_, c)| !(py_word(c) || c == '.'))
        .map_or(rest.len(), |(i, _)| i);
    let after = &rest[run..];
    after.is_empty() || after == ":" || after.starts_with(": ")
}

/// One joined event: offsets of its first line's start and last line's end, its text, and
/// whether it was cut at `max_lines`/`max_bytes`.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    pub start: u64,
    pub end: u64,
    pub text: String,
    pub capped: bool,
}

/// How a new event is recognised.
pub enum Rule {
    /// The built-in rules; `timestamped`: a Python text format (untimestamped lines continue).
    Builtin { timestamped: bool },
    /// A user's start pattern, matched at the start of each line.
    Start(Regex),
}

impl Rule {
    /// A start pattern as the core's regex engine takes it (anchored like `re.match`), or the
    /// engine's error.
    pub fn start_pattern(pattern: &str) -> Result<Rule, String> {
        Regex::new(&format!("^(?:{pattern})"))
            .map(Rule::Start)
            .map_err(|e| e.to_string())
    }
}

pub struct Joiner {
    rule: Rule,
    max_lines: usize,
    max_bytes: u64,
    lines: Vec<String>,
    first: u64,
    last: u64,
    in_tb: bool,
}

impl Joiner {
    pub fn new(rule: Rule, max_lines: usize, max_bytes: u64) -> Self {
        Joiner {
            rule,
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(1),
            lines: Vec::new(),
            first: 0,
            last: 0,
            in_tb: false,
        }
    }

    /// The start offset of the event held back, if any.
    pub fn pending_start(&self) -> Option<u64> {
        (!self.lines.is_empty()).then_some(self.first)
    }

    /// Complete lines (file order) -> the events they completed, appended to `out`.
    pub fn feed(
        &mut self,
        lines: impl IntoIterator<Item = (u64, u64, String)>,
        out: &mut Vec<Event>,
    ) {
        for (s, e, t) in lines {
            if !self.lines.is_empty() {
                let joins = match &self.rule {
                    Rule::Start(re) => !re.is_match(&t),
                    Rule::Builtin { timestamped } => self.continues(&t, *timestamped),
                };
                if joins {
                    if self.lines.len() >= self.max_lines || e - self.first > self.max_bytes {
                        out.push(self.take(true));
                        self.begin(s, e, t);
                    } else {
                        self.track(&t);
                        self.lines.push(t);
                        self.last = e;
                    }
                    continue;
                }
                out.push(self.take(false));
            }
            self.begin(s, e, t);
        }
    }

    /// The pending event, forced out.
    pub fn flush(&mut self) -> Option<Event> {
        (!self.lines.is_empty()).then(|| self.take(false))
    }

    fn begin(&mut self, s: u64, e: u64, t: String) {
        self.first = s;
        self.last = e;
        self.in_tb = false;
        self.track(&t);
        self.lines.clear();
        self.lines.push(t);
    }

    fn take(&mut self, capped: bool) -> Event {
        let mut lines = std::mem::take(&mut self.lines);
        let text = if lines.len() == 1 {
            lines.pop().unwrap_or_default()
        } else {
            while lines.len() > 1 && lines.last().is_some_and(|l| py_blank(l)) {
                lines.pop(); // trailing blank lines are kept in the offsets, not the text
            }
            let text = lines.join("\n");
            if text.contains('\r') {
                let text = text.replace("\r\n", "\n");
                text.strip_suffix('\r').map(str::to_owned).unwrap_or(text)
            } else {
                text
            }
        };
        self.in_tb = false;
        Event {
            start: self.first,
            end: self.last,
            text,
            capped,
        }
    }

    /// Whether we are inside a traceback (so its `Type: msg` line joins too).
    fn track(&mut self, t: &str) {
        if t.starts_with(TB_PREFIX) {
            self.in_tb = true;
        } else if !py_blank(t)
            && !t.starts_with([' ', '\t'])
            && !CHAIN_PREFIXES.iter().any(|p| t.starts_with(p))
        {
            self.in_tb = false;
        }
    }

    fn continues(&self, t: &str, timestamped: bool) -> bool {
        if t.is_empty() || t.starts_with([' ', '\t', '\r']) || py_blank(t) {
            return true;
        }
        if t.starts_with(TB_PREFIX) || CHAIN_PREFIXES.iter().any(|p| t.starts_with(p)) {
            return true;
        }
        if self.in_tb && exc_line(t) {
            return true;
        }
        timestamped
            && !py_digits4(t)
            && !FOREIGN_LEVELS.iter().any(|p| t.starts_with(p))
            && !t.starts_with("{\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rule: Rule, lines: &[&str]) -> Vec<(u64, u64, String, bool)> {
        let mut j = Joiner::new(rule, 500, 1 << 18);
        let mut out = Vec::new();
        let mut at = 0u64;
        let fed: Vec<(u64, u64, String)> = lines
            .iter()
            .map(|l| {
                let s = at;
                at += l.len() as u64 + 1;
                (s, at, l.to_string())
            })
            .collect();
        j.feed(fed, &mut out);
        out.extend(j.flush());
        out.into_iter()
            .map(|e| (e.start, e.end, e.text, e.capped))
            .collect()
    }

    #[test]
    fn a_traceback_joins_the_line_before_it() {
        let got = run(
            Rule::Builtin { timestamped: true },
            &[
                "2026-11-24 07:00:00,123 - app - ERROR - boom",
                "Traceback (most recent call last):",
                "  File \"a.py\", line 1, in <module>",
                "ValueError: bad",
                "",
                "2026-11-24 07:00:01,000 - app - INFO - next",
            ],
        );
        assert_eq!(got.len(), 2);
        assert!(got[0].2.ends_with("ValueError: bad"));
        assert_eq!((got[0].0, got[1].0), (0, got[0].1));
    }

    #[test]
    fn start_patterns_and_caps() {
        let rule = Rule::start_pattern(r"\[\d+\]").unwrap();
        let got = run(rule, &["[1] a", "b", "[2] c"]);
        assert_eq!(got[0].2, "[1] a\nb");
        assert!(Rule::start_pattern(r"(?<=x)y").is_err());
        let mut j = Joiner::new(Rule::Builtin { timestamped: false }, 2, 1 << 18);
        let mut out = Vec::new();
        j.feed(
            (0..3u64).map(|i| {
                (
                    i * 3,
                    i * 3 + 3,
                    format!("{}x", if i > 0 { " " } else { "" }),
                )
            }),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert!(out[0].capped);
    }

    #[test]
    fn python_classes() {
        assert!(py_space('\x1c') && py_space('\u{3000}') && !py_space('\u{200b}'));
        assert!(py_digits4("١٢") && py_digits4("²") && !py_digits4("12a"));
        assert!(exc_line("pkg.Error: x") && exc_line("KeyboardInterrupt") && !exc_line("a b"));
    }
}
