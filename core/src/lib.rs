//! logpipe's native line core: the per-line work of `logpipe tail` in compiled code.
//!
//! The pure-Rust modules (`split`, `json`, `screen`, `record`) hold the logic and are tested
//! with `cargo test`; `py` (feature `python`, built by maturin) is the thin binding that
//! exposes them as `logpipe._core`.

pub mod bulk;
pub mod digits;
pub mod json;
pub mod msgpack;
pub mod record;
pub mod screen;
pub mod scrub;
pub mod scrub_json;
pub mod scrub_pyre;
pub mod split;
pub mod tapcols;
pub mod text;
pub mod tokens;

#[cfg(feature = "python")]
mod py;
#[cfg(feature = "python")]
mod py_encode;
#[cfg(feature = "python")]
mod py_scrub;
#[cfg(feature = "python")]
mod py_text;
