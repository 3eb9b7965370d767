//! Python `re` pattern syntax -> the core's regex engine (fancy-regex), with Python's meaning.
//!
//! The scrub rules (and users' `[scrub]` extra patterns) are written for Python's `re`, which the
//! test oracle runs. The two engines agree on most syntax but not on what a few escapes mean, so
//! those are rewritten to spell out Python's meaning:
//!
//! - `\w` is `[\p{L}\p{N}_]` in Python (str patterns), restricted to the Unicode version Python's
//!   tables know (`age`), so a letter added later does not count as one here either;
//!   `\d` likewise; `\s` adds the four separators `\x1c`-`\x1f` that Python counts as space;
//! - `\b`/`\B` are word boundaries on that `\w`;
//! - `\Z` is `\z`; `$` (without `(?m)`) also matches before a final newline, as in Python;
//! - `[` inside a class is a literal in Python, a nested class here; `&` and `~` are escaped too;
//! - `{,n}` is `{0,n}`; a `{` that does not start a quantifier is a literal.
//!
//! Anything else the engine cannot take is an error the caller reports with the pattern's origin.

/// Python's `\w` as a class body usable inside `[...]`.
fn word_class(age: Option<&str>) -> String {
    match age {
        Some(a) => format!("[[\\p{{L}}\\p{{N}}_]&&\\p{{Age:{a}}}]"),
        None => "[\\p{L}\\p{N}_]".to_string(),
    }
}

fn digit_class(age: Option<&str>) -> String {
    match age {
        Some(a) => format!("[\\d&&\\p{{Age:{a}}}]"),
        None => "[\\d]".to_string(),
    }
}

const SPACE: &str = "[\\s\\x1c-\\x1f]";

fn multiline(pattern: &str) -> bool {
    // an inline flag group `(?...m...)` or `(?...m...:`: then `$` means the same in both engines
    let b = pattern.as_bytes();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b'(' && b[i + 1] == b'?' {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_alphabetic() {
                if b[j] == b'm' {
                    return true;
                }
                j += 1;
            }
        }
        i += 1;
    }
    false
}

/// Whether `{` at `i` starts a quantifier `{n}`, `{n,}`, `{n,m}` or `{,m}`; returns its end.
fn quantifier(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    let mut digits = 0;
    while j < chars.len() && chars[j].is_ascii_digit() {
        j += 1;
        digits += 1;
    }
    let mut after = 0;
    if j < chars.len() && chars[j] == ',' {
        j += 1;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
            after += 1;
        }
        if digits == 0 && after == 0 {
            return None;
        }
    } else if digits == 0 {
        return None;
    }
    (j < chars.len() && chars[j] == '}').then_some(j)
}

/// Rewrite a Python `re` pattern for fancy-regex; `age` is Python's Unicode version ("14.0").
pub fn translate(pattern: &str, age: Option<&str>) -> String {
    let w = word_class(age);
    let d = digit_class(age);
    let boundary = format!("(?:(?<={w})(?!{w})|(?<!{w})(?={w}))");
    let not_boundary = format!("(?:(?<={w})(?={w})|(?<!{w})(?!{w}))");
    let ml = multiline(pattern);
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut i = 0;
    let mut in_class = false;
    let mut class_start = 0usize; // index just past `[` / `[^`
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let e = chars[i + 1];
            i += 2;
            match (e, in_class) {
                ('w', false) => out.push_str(&w),
                ('w', true) => out.push_str(&w),
                ('W', _) => {
                    out.push_str("[^");
                    out.push_str(&w);
                    out.push(']');
                }
                ('d', _) => out.push_str(&d),
                ('D', _) => {
                    out.push_str("[^");
                    out.push_str(&d);
                    out.push(']');
                }
                ('s', _) => out.push_str(SPACE),
                ('S', _) => {
                    out.push_str("[^");
                    out.push_str(SPACE);
                    out.push(']');
                }
                ('b', false) => out.push_str(&boundary),
                ('b', true) => out.push_str("\\x08"),
                ('B', false) => out.push_str(&not_boundary),
                ('Z', false) => out.push_str("\\z"),
                _ => {
                    out.push('\\');
                    out.push(e);
                }
            }
            continue;
        }
        if in_class {
            match c {
                ']' if i > class_start => in_class = false,
                '[' | '&' | '~' => out.push('\\'),
                _ => {}
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if i < chars.len() && chars[i] == '^' {
                    out.push('^');
                    i += 1;
                }
                class_start = i;
                if i < chars.len() && chars[i] == ']' {
                    out.push_str("\\]");
                    i += 1;
                }
                continue;
            }
            '$' if !ml => out.push_str("(?=\\n?\\z)"),
            '{' => match quantifier(&chars, i) {
                Some(end) => {
                    let body: String = chars[i + 1..end].iter().collect();
                    out.push('{');
                    if body.starts_with(',') {
                        out.push('0');
                    }
                    out.push_str(&body);
                    out.push('}');
                    i = end;
                }
                None => out.push_str("\\{"),
            },
            '}' => out.push_str("\\}"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// Compile a Python-syntax pattern; the error says what the engine could not take.
pub fn compile(pattern: &str, age: Option<&str>) -> Result<fancy_regex::Regex, String> {
    let translated = translate(pattern, age);
    fancy_regex::RegexBuilder::new(&translated)
        .backtrack_limit(10_000_000)
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(p: &str, s: &str) -> Option<String> {
        compile(p, Some("14.0"))
            .unwrap()
            .find(s)
            .unwrap()
            .map(|m| m.as_str().to_string())
    }

    #[test]
    fn python_meanings() {
        assert_eq!(find(r"\w+", "a\u{300}b"), Some("a".into())); // marks are not \w in Python
        assert_eq!(find(r"x\s", "x\x1c"), Some("x\x1c".into()));
        assert_eq!(find(r"ab$", "ab\n"), Some("ab".into()));
        assert_eq!(find(r"ab\Z", "ab\n"), None);
        assert_eq!(find(r"[[]", "a[b"), Some("[".into()));
        assert_eq!(find(r"[]a]+", "]a]"), Some("]a]".into()));
        assert_eq!(find(r"a{,2}", "aaa"), Some("aa".into()));
        assert_eq!(find(r"{x}", "{x}"), Some("{x}".into()));
        assert_eq!(find(r"\bab\b", "xab ab"), Some("ab".into()));
        assert_eq!(find(r"[^\W\d_]+", "1ab2"), Some("ab".into()));
        assert_eq!(find(r"\w", "\u{31350}"), None); // assigned after Unicode 14
    }

    #[test]
    fn what_the_engine_cannot_take_is_an_error() {
        assert!(compile(r"(?a:x)", None).is_err());
        assert!(compile(r"(x", None).is_err());
    }
}
