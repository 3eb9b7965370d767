//! Timestamps of text formats -> the record format's `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
//!
//! Only the shapes the core can convert exactly as `logpipe.parse.timefmt` does are taken;
//! anything else is `None` and the line takes the Python road (which falls back to the read
//! time, or tags it). Naive times are taken only when the stream's zone is UTC (the zone
//! arithmetic of other zones stays in Python).

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The record format's timestamp: 27 ASCII bytes.
pub type Stamp = [u8; 27];

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0')))
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A wall-clock time at `offset_min` minutes east of UTC -> the UTC stamp with `micros`, or
/// `None` where Python's `datetime` refuses it (invalid fields, a result outside years 1-9999).
/// A leap second (60) is clamped to 59 as `TimeConverter` does.
#[allow(clippy::too_many_arguments)]
pub fn utc_stamp(
    y: i64,
    mo: i64,
    d: i64,
    h: i64,
    mi: i64,
    s: i64,
    offset_min: i64,
    micros: u32,
) -> Option<Stamp> {
    let s = if s == 60 { 59 } else { s };
    if !(1..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d < 1
        || d > days_in_month(y, mo)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..60).contains(&s)
        || offset_min.abs() >= 24 * 60
    {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    if !(1..=9999).contains(&y) {
        return None;
    }
    let tod = secs.rem_euclid(86_400);
    let text = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    );
    text.into_bytes().try_into().ok()
}

/// Apache/nginx `10/Oct/2000:13:55:36 -0700` (as `TimeConverter.clf`); without an offset only
/// when naive times are UTC (`naive_utc`).
pub fn clf(ts: &[u8], naive_utc: bool) -> Option<Stamp> {
    if !(ts.len() == 20 || ts.len() == 26) || ts[2] != b'/' || ts[6] != b'/' || ts[11] != b':' {
        return None;
    }
    if ts[14] != b':' || ts[17] != b':' {
        return None;
    }
    let mon = MONTHS.iter().position(|m| &ts[3..6] == *m)? as i64 + 1;
    let offset = if ts.len() == 26 {
        if ts[20] != b' ' {
            return None;
        }
        let sign = match ts[21] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        sign * (digits(&ts[22..24])? * 60 + digits(&ts[24..26])?)
    } else if naive_utc {
        0
    } else {
        return None;
    };
    utc_stamp(
        digits(&ts[7..11])?,
        mon,
        digits(&ts[0..2])?,
        digits(&ts[12..14])?,
        digits(&ts[15..17])?,
        digits(&ts[18..20])?,
        offset,
        0,
    )
}

/// The last timestamp text and its conversion: lines arrive in time order, so most lines of a
/// busy log repeat the one before.
#[derive(Default)]
pub struct Last {
    text: Vec<u8>,
    stamp: Option<Stamp>,
}

impl Last {
    pub fn clf(&mut self, ts: &[u8], naive_utc: bool) -> Option<Stamp> {
        if ts != self.text.as_slice() || self.text.is_empty() {
            self.text.clear();
            self.text.extend_from_slice(ts);
            self.stamp = clf(ts, naive_utc);
        }
        self.stamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: Option<Stamp>) -> Option<String> {
        v.map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn converts_offsets_to_utc() {
        assert_eq!(
            s(clf(b"10/Oct/2000:13:55:36 -0700", false)).as_deref(),
            Some("2000-10-10T20:55:36.000000Z")
        );
        assert_eq!(
            s(clf(b"01/Jan/0001:00:30:00 +0100", false)),
            None,
            "before year 1 in UTC"
        );
        assert_eq!(
            s(clf(b"31/Dec/9999:23:59:60 -0000", false)).as_deref(),
            Some("9999-12-31T23:59:59.000000Z")
        );
    }

    #[test]
    fn naive_times_only_in_utc_and_bad_dates_are_refused() {
        assert_eq!(s(clf(b"29/Feb/2024:00:00:00", false)), None);
        assert_eq!(
            s(clf(b"29/Feb/2024:00:00:00", true)).as_deref(),
            Some("2024-02-29T00:00:00.000000Z")
        );
        assert_eq!(s(clf(b"29/Feb/2023:00:00:00", true)), None);
        assert_eq!(s(clf(b"10/oct/2000:13:55:36 -0700", true)), None);
        assert_eq!(s(clf(b"10/Oct/2000:13:55:36 +2400", true)), None);
    }
}
