//! The native scrubber: the rules of `logpipe/scrub_rules.py` (handed over by Python at
//! construction), the same replacement text and the same keyed pseudonyms as the Python oracle.
//!
//! `scrub_text` applies each rule in table order, each over the text the previous one left,
//! exactly as `re.sub` per rule does; a rule runs only when its guard needles occur (a cheap
//! superset test), which changes nothing but the cost.

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::scrub_pyre;

/// What a rule does with a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Plain,
    Card,
    Userinfo,
    Labelled,
}

impl Action {
    pub fn parse(s: &str) -> Result<Action, String> {
        Ok(match s {
            "plain" => Action::Plain,
            "card" => Action::Card,
            "userinfo" => Action::Userinfo,
            "labelled" => Action::Labelled,
            other => return Err(format!("unknown scrub rule action {other:?}")),
        })
    }
}

/// One row of the rule table, as Python hands it over.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    pub name: String,
    pub pattern: String,
    pub action: Action,
    pub kind: String,
    pub label: String,
    /// A plain regex every match contains (empty: none); all guards run as one `RegexSet`.
    pub guard: String,
}

/// Everything a scrubber is built from.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub rules: Vec<RuleSpec>,
    /// (origin for error messages, pattern): the user's extra patterns, in order.
    pub extra_patterns: Vec<(String, String)>,
    pub token_pattern: String,
    /// HMAC key; None: redact mode.
    pub key: Option<Vec<u8>>,
    /// Key-name words matched as substrings of the normalised key (built-in and extra keys).
    pub key_words: Vec<String>,
    /// Key-name words matched only as whole '_'-separated parts.
    pub word_keys: Vec<String>,
    /// Normalised key names never treated as sensitive.
    pub allow_keys: Vec<String>,
    /// Python's Unicode version ("14.0"), so `\w` means what it means to Python's `re`.
    pub unicode_age: Option<String>,
}

struct Rule {
    name: String,
    re: fancy_regex::Regex,
    action: Action,
    kind: String,
    label: Option<fancy_regex::Regex>,
    /// Index into the guard set; None: always run.
    guard: Option<usize>,
}

/// The compiled scrubber; immutable and shareable between threads.
pub struct Scrubber {
    rules: Vec<Rule>,
    guards: regex::RegexSet,
    /// All guards as one alternation: most strings hit none, and `is_match` is much cheaper than
    /// the set's overlapping search.
    any_guard: regex::Regex,
    /// For whole JSON lines: matches wherever a guard or a sensitive key word could (see
    /// `line_is_clean`); None when no such superset exists (custom patterns, non-ASCII key words).
    line_guard: Option<regex::bytes::Regex>,
    token_re: fancy_regex::Regex,
    key: Option<Vec<u8>>,
    key_words: regex::Regex,
    word_keys: Vec<String>,
    allow_keys: Vec<String>,
}

/// A construction error: which pattern (its origin) the engine could not take, and why.
#[derive(Debug)]
pub struct BuildError {
    pub origin: String,
    pub message: String,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

impl Scrubber {
    pub fn new(cfg: &Config) -> Result<Scrubber, BuildError> {
        let age = cfg.unicode_age.as_deref();
        // An unknown Unicode version (a newer Python than the engine's tables): plain classes.
        let age = age.filter(|a| scrub_pyre::compile(r"\w", Some(a)).is_ok());
        let compile = |origin: &str, p: &str| {
            scrub_pyre::compile(p, age).map_err(|message| BuildError {
                origin: origin.to_string(),
                message,
            })
        };
        let mut rules = Vec::new();
        let mut guards: Vec<&str> = Vec::new();
        for spec in &cfg.rules {
            let origin = format!("scrub rule {}", spec.name);
            rules.push(Rule {
                name: spec.name.clone(),
                re: compile(&origin, &spec.pattern)?,
                action: spec.action,
                kind: spec.kind.clone(),
                label: if spec.label.is_empty() {
                    None
                } else {
                    Some(compile(&origin, &spec.label)?)
                },
                guard: (!spec.guard.is_empty()).then(|| {
                    guards.push(&spec.guard);
                    guards.len() - 1
                }),
            });
        }
        for (i, (origin, p)) in cfg.extra_patterns.iter().enumerate() {
            rules.push(Rule {
                name: format!("custom{i}"),
                re: compile(origin, &format!("(?:{p})"))?,
                action: Action::Plain,
                kind: "custom".to_string(),
                label: None,
                guard: None,
            });
        }
        let words: Vec<String> = cfg.key_words.iter().map(|w| regex::escape(w)).collect();
        let key_words = regex::Regex::new(&words.join("|")).map_err(|e| BuildError {
            origin: "scrub key words".into(),
            message: e.to_string(),
        })?;
        let guards = regex::RegexSet::new(&guards).map_err(|e| BuildError {
            origin: "scrub rule guards".into(),
            message: e.to_string(),
        })?;
        let any: Vec<String> = guards
            .patterns()
            .iter()
            .map(|g| format!("(?:{g})"))
            .collect();
        let any_guard = regex::Regex::new(&any.join("|")).map_err(|e| BuildError {
            origin: "scrub rule guards".into(),
            message: e.to_string(),
        })?;
        let ascii_words = cfg
            .key_words
            .iter()
            .chain(&cfg.word_keys)
            .all(|w| w.is_ascii() && !w.is_empty());
        let line_guard = (cfg.extra_patterns.is_empty() && ascii_words)
            .then(|| {
                let words: Vec<String> = cfg
                    .key_words
                    .iter()
                    .chain(&cfg.word_keys)
                    .map(|w| regex::escape(w).replace('_', "[_\\- ]"))
                    .collect();
                regex::bytes::Regex::new(&format!("{}|(?i-u:{})", any.join("|"), words.join("|")))
                    .ok()
            })
            .flatten();
        Ok(Scrubber {
            rules,
            any_guard,
            line_guard,
            guards,
            token_re: compile("scrub token pattern", &cfg.token_pattern)?,
            key: cfg.key.clone().filter(|k| !k.is_empty()),
            key_words,
            word_keys: cfg.word_keys.clone(),
            allow_keys: cfg.allow_keys.clone(),
        })
    }

    /// True guarantees that scrubbing the JSON document `line` changes nothing: no guard and no
    /// sensitive key word occurs anywhere in it, and nothing in it hides one (an escape, or the
    /// two non-ASCII letters whose lower case is ASCII: the Kelvin sign and U+0130).
    pub fn line_is_clean(&self, line: &[u8]) -> bool {
        let Some(g) = &self.line_guard else {
            return false;
        };
        if line.contains(&b'\\')
            || contains(line, "\u{212a}".as_bytes())
            || contains(line, "\u{130}".as_bytes())
        {
            return false;
        }
        !g.is_match(line)
    }

    pub fn pseudonym(&self) -> bool {
        self.key.is_some()
    }

    /// The replacement for one finding: `[REDACTED:kind]` or `[kind:<16 hex of HMAC-SHA256>]`.
    pub fn token(&self, kind: &str, value: &str) -> String {
        self.token_bytes(kind, value.as_bytes())
    }

    pub fn token_bytes(&self, kind: &str, value: &[u8]) -> String {
        match &self.key {
            None => format!("[REDACTED:{kind}]"),
            Some(key) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(value);
                let digest = mac.finalize().into_bytes();
                let mut out = String::with_capacity(kind.len() + 19);
                out.push('[');
                out.push_str(kind);
                out.push(':');
                for b in &digest[..8] {
                    out.push_str(&format!("{b:02x}"));
                }
                out.push(']');
                out
            }
        }
    }

    pub fn is_token(&self, text: &str) -> bool {
        self.token_re.is_match(text).unwrap_or(false)
    }

    /// Mask every finding in one string, rule by rule in table order.
    pub fn scrub_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut cur: Cow<'a, str> = Cow::Borrowed(text);
        let hits_of = |t: &str| self.any_guard.is_match(t).then(|| self.guards.matches(t));
        let mut hits = hits_of(text);
        for rule in &self.rules {
            if let Some(g) = rule.guard {
                if !hits.as_ref().is_some_and(|h| h.matched(g)) {
                    continue;
                }
            }
            if let Some(next) = self.apply(rule, &cur) {
                // a replacement may hold what a later guard looks for (hex digits of a pseudonym)
                hits = hits_of(&next);
                cur = Cow::Owned(next);
            }
        }
        cur
    }

    /// `re.sub` of one rule: None when nothing changed.
    fn apply(&self, rule: &Rule, text: &str) -> Option<String> {
        let mut out = String::new();
        let mut copied = 0; // text[..copied] is in `out`
        let mut changed = false;
        let mut pos = 0;
        let mut last_empty_at: Option<usize> = None;
        while pos <= text.len() {
            let m = match rule.re.find_from_pos(text, pos) {
                Ok(Some(m)) => m,
                _ => break, // no match (or the engine gave up: leave the rest as it is)
            };
            let (s, e) = (m.start(), m.end());
            if s == e && last_empty_at == Some(s) {
                // Python never takes an empty match where the previous one ended empty
                pos = next_char(text, s);
                if pos > text.len() {
                    break;
                }
                continue;
            }
            let found = &text[s..e];
            let rep = self.replace(rule, found);
            if let Some(rep) = rep {
                out.push_str(&text[copied..s]);
                out.push_str(&rep);
                copied = e;
                changed = true;
            }
            if s == e {
                last_empty_at = Some(e);
                pos = e;
                // the search at `e` may still find a non-empty match there; an empty one is skipped above
                if e >= text.len() {
                    break;
                }
            } else {
                last_empty_at = None;
                pos = e;
            }
        }
        if !changed {
            return None;
        }
        out.push_str(&text[copied..]);
        Some(out)
    }

    /// The replacement for one match; None keeps it as it is.
    fn replace(&self, rule: &Rule, found: &str) -> Option<String> {
        match rule.action {
            Action::Plain => Some(self.token(&rule.kind, found)),
            Action::Card => {
                let digits: String = found.chars().filter(|&c| c != ' ' && c != '-').collect();
                if (13..=19).contains(&digits.len()) && luhn_ok(digits.as_bytes()) {
                    Some(self.token(&rule.kind, &digits))
                } else {
                    None
                }
            }
            Action::Userinfo => {
                let inner = &found[..found.len() - 1];
                if self.is_token(inner) {
                    return None;
                }
                Some(self.token(&rule.kind, inner) + "@")
            }
            Action::Labelled => {
                let cut = rule
                    .label
                    .as_ref()
                    .and_then(|l| l.find(found).ok().flatten())
                    .filter(|m| m.start() == 0)
                    .map_or(0, |m| m.end());
                let (label, value) = found.split_at(cut);
                if rule.name == "basic" && !looks_like_basic(value) {
                    return None;
                }
                if self.is_token(value) {
                    return None;
                }
                Some(format!("{label}{}", self.token(&rule.kind, value)))
            }
        }
    }

    /// Whether values under this key name are redacted whatever they contain.
    pub fn is_sensitive_key(&self, key: &str) -> bool {
        let norm = norm_key(key);
        if self.allow_keys.contains(&norm) {
            return false;
        }
        if self.key_words.is_match(&norm) {
            return true;
        }
        self.word_keys.iter().any(|w| bounded_word(&norm, w))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn next_char(text: &str, i: usize) -> usize {
    text[i..].chars().next().map_or(i + 1, |c| i + c.len_utf8())
}

/// Python's `key.lower().replace("-", "_").replace(" ", "_")`.
pub fn norm_key(key: &str) -> String {
    key.to_lowercase().replace(['-', ' '], "_")
}

/// `(?:^|_)word(?:_|$)` in Python's `re` (where `$` also matches before a final newline).
fn bounded_word(norm: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let b = norm.as_bytes();
    let mut from = 0;
    while let Some(i) = norm[from..].find(word) {
        let s = from + i;
        let e = s + word.len();
        let before = s == 0 || b[s - 1] == b'_';
        let after = e == b.len() || b[e] == b'_' || (e + 1 == b.len() && b[e] == b'\n');
        if before && after {
            return true;
        }
        from = s + 1;
        while !norm.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

/// Luhn checksum over ASCII digits.
pub fn luhn_ok(digits: &[u8]) -> bool {
    let parity = digits.len() % 2;
    let mut total = 0u32;
    for (i, &c) in digits.iter().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == parity {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        total += d;
    }
    total % 10 == 0
}

/// `Basic <b64(user:pass)>`, not prose like "basic plan": what Python's
/// `base64.b64decode(value + padding, validate=True)` accepts, holding a ':'.
fn looks_like_basic(value: &str) -> bool {
    let body = value.trim_end_matches('=');
    let eq = value.len() - body.len();
    if body.is_empty() || eq > 2 {
        return eq == 0 && body.is_empty();
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for c in body.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return false,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    match body.len() % 4 {
        1 => return false,
        3 if eq == 2 => return false,
        _ => {}
    }
    out.contains(&b':')
}

/// Python's `str(float)` for a finite double: the shortest round-trip digits, fixed notation
/// for exponents -4..16, else `d.ddde+XX`.
pub fn python_float_repr(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{:e}", x); // e.g. "-1.2345e-7": shortest round-trip digits
    let (mant, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let (sign, mant) = mant.strip_prefix('-').map_or(("", mant), |m| ("-", m));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let n = digits.len() as i32;
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let s = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point >= n {
            format!("{}{}.0", digits, "0".repeat((point - n) as usize))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{s}")
    } else {
        let m = if n > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        let es = if exp < 0 { "-" } else { "+" };
        format!("{sign}{m}e{es}{:02}", exp.abs())
    }
}

/// Mask the host part of an IP address (last octet of IPv4, last 80 bits of IPv6), as Python's
/// `ipaddress.ip_network(f"{ip}/{24|48}", strict=False).network_address`; None: not an address.
pub fn mask_ip(value: &str) -> Option<String> {
    let v = value.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c));
    if let Ok(ip) = v.parse::<std::net::Ipv4Addr>() {
        let o = ip.octets();
        return Some(std::net::Ipv4Addr::new(o[0], o[1], o[2], 0).to_string());
    }
    if v.contains('%') {
        return None;
    }
    let ip = v.parse::<std::net::Ipv6Addr>().ok()?;
    let s = ip.segments();
    let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
    Some(net.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        for (x, s) in [
            (12.345, "12.345"),
            (1e16, "1e+16"),
            (1.5e-7, "1.5e-07"),
            (100.0, "100.0"),
            (0.0001, "0.0001"),
            (-2.5e-5, "-2.5e-05"),
            (123456789012345.6, "123456789012345.6"),
            (1.2345678901234567e16, "1.2345678901234568e+16"),
        ] {
            assert_eq!(python_float_repr(x), s);
        }
    }

    #[test]
    fn basic_values() {
        assert!(looks_like_basic("QUJDOkRF")); // ABC:DE
        assert!(!looks_like_basic("QUJDOkRFR")); // 9 chars: bad length
        assert!(!looks_like_basic("QUJDOkRFRkc==")); // 11 + '==' : rejected by Python too
        assert!(!looks_like_basic("cGxhbnM=")); // "plans": no ':'
    }

    #[test]
    fn ips() {
        assert_eq!(mask_ip("10.1.2.3").as_deref(), Some("10.1.2.0"));
        assert_eq!(mask_ip("2001:db8:1:2::5").as_deref(), Some("2001:db8:1::"));
        assert_eq!(mask_ip("nope"), None);
    }

    #[test]
    fn bounded_words() {
        assert!(bounded_word("user_ssn", "ssn"));
        assert!(bounded_word("ssn\n", "ssn"));
        assert!(!bounded_word("classname", "ssn"));
    }
}
