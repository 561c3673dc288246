//! `eventTime`: ISO-8601 date-times as OpenLineage producers write them, to UTC milliseconds.
//!
//! Accepted: `YYYY-MM-DDTHH:MM[:SS[.fraction]][offset]` where
//! - the `T` may be lowercase (Java's ISO parser, which Marquez uses, is case-insensitive);
//! - the fraction has 1 or more digits; digits past the ninth (nanoseconds) are ignored, and
//!   everything below a millisecond is cut (toward the past, also before 1970);
//! - the offset is `Z`/`z`, `±HH`, `±HHMM`, `±HH:MM` or `±HH:MM:SS`; without one the time is UTC
//!   (Python's `datetime.isoformat()` of a naive time, which Marquez accepts).
//!
//! Refused: a space instead of `T`, zone names (`[Europe/Paris]`: resolving them needs a time
//! zone database and the clock of its rules), leap seconds (`:60`), `24:00`, years beyond 9999.

use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

/// The example every error message shows.
const EXAMPLE: &str = "2020-12-28T19:51:01.641Z";

/// UTC milliseconds since 1970 of `text`, or why it is not a date-time we accept.
pub(crate) fn parse_millis(text: &str) -> Result<i64, String> {
    let mut s = Scanner { bytes: text.as_bytes(), pos: 0 };
    let fail = |what: &str| format!("{what}: expected an ISO-8601 date-time such as {EXAMPLE}");

    let year = s.digits(4).ok_or_else(|| fail("bad year"))?;
    s.expect(b'-').ok_or_else(|| fail("bad date"))?;
    let month = s.digits(2).ok_or_else(|| fail("bad month"))?;
    s.expect(b'-').ok_or_else(|| fail("bad date"))?;
    let day = s.digits(2).ok_or_else(|| fail("bad day"))?;
    if !(s.eat(b'T') || s.eat(b't')) {
        return Err(fail("missing 'T' between date and time"));
    }
    let hour = s.digits(2).ok_or_else(|| fail("bad hour"))?;
    s.expect(b':').ok_or_else(|| fail("bad time"))?;
    let minute = s.digits(2).ok_or_else(|| fail("bad minute"))?;
    let mut second = 0;
    let mut nanos = 0;
    if s.eat(b':') {
        second = s.digits(2).ok_or_else(|| fail("bad second"))?;
        if s.eat(b'.') {
            nanos = s.fraction_nanos().ok_or_else(|| fail("bad fraction of a second"))?;
        }
    }
    let offset = s.offset().ok_or_else(|| fail("bad time zone offset"))?;
    if s.pos != s.bytes.len() {
        return Err(fail("unexpected text after the date-time"));
    }

    let month = u8::try_from(month).ok().and_then(|m| Month::try_from(m).ok()).ok_or_else(|| fail("bad month"))?;
    let date = Date::from_calendar_date(year as i32, month, day as u8).map_err(|_| fail("no such day"))?;
    let time = Time::from_hms_nano(hour as u8, minute as u8, second as u8, nanos).map_err(|_| fail("no such time"))?;
    let nanos_since_epoch = PrimitiveDateTime::new(date, time).assume_offset(offset).unix_timestamp_nanos();
    // Years 0000..=9999 are about ±3e14 ms: always within i64.
    Ok(nanos_since_epoch.div_euclid(1_000_000) as i64)
}

/// A cursor over the ASCII bytes of a date-time.
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// Exactly `count` decimal digits as a number.
    fn digits(&mut self, count: usize) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..count {
            let d = self.peek().filter(u8::is_ascii_digit)?;
            value = value * 10 + u32::from(d - b'0');
            self.pos += 1;
        }
        Some(value)
    }

    /// One or more digits after the decimal point, as nanoseconds (digits past the ninth
    /// dropped).
    fn fraction_nanos(&mut self) -> Option<u32> {
        let start = self.pos;
        let mut nanos = 0u32;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            if self.pos - start < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            self.pos += 1;
        }
        let count = self.pos - start;
        if count == 0 {
            return None;
        }
        Some(nanos * 10u32.pow(9usize.saturating_sub(count) as u32))
    }

    /// The offset at the end, UTC when there is none.
    fn offset(&mut self) -> Option<UtcOffset> {
        let sign: i8 = match self.peek() {
            None => return Some(UtcOffset::UTC),
            Some(b'Z' | b'z') => {
                self.pos += 1;
                return Some(UtcOffset::UTC);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            Some(_) => return None,
        };
        self.pos += 1;
        let hours = self.digits(2)?;
        let mut minutes = 0;
        let mut seconds = 0;
        if self.peek().is_some() {
            let colon = self.eat(b':');
            minutes = self.digits(2)?;
            if self.peek().is_some() {
                if colon {
                    self.expect(b':')?;
                }
                seconds = self.digits(2)?;
            }
        }
        if hours > 18 || minutes > 59 || seconds > 59 {
            return None;
        }
        let (h, m, s) = (hours as i8 * sign, minutes as i8 * sign, seconds as i8 * sign);
        UtcOffset::from_hms(h, m, s).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: i64 = 1_609_185_061_641; // 2020-12-28T19:51:01.641Z

    #[test]
    fn forms_marquez_accepts() {
        for text in [
            "2020-12-28T19:51:01.641Z",
            "2020-12-28t19:51:01.641z",
            "2020-12-28T19:51:01.641499Z",
            "2020-12-28T19:51:01.641499",
            "2020-12-28T19:51:01.641999999999999+00:00",
            "2020-12-29T05:51:01.641+10:00",
            "2020-12-29T05:51:01.641+1000",
            "2020-12-29T05:51:01.641+10",
            "2020-12-28T14:51:01.641-05:00",
            "2020-12-28T14:51:01.641-05:00:00",
        ] {
            assert_eq!(parse_millis(text), Ok(BASE), "{text}");
        }
        assert_eq!(parse_millis("2020-12-28T19:51Z"), Ok(BASE - 1_641));
        assert_eq!(parse_millis("2020-12-28T19:51:01Z"), Ok(BASE - 641));
        assert_eq!(parse_millis("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_millis("1969-12-31T23:59:59.9999Z"), Ok(-1));
        assert_eq!(parse_millis("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
    }

    #[test]
    fn forms_refused() {
        for text in [
            "",
            "2020-12-28",
            "2020-12-28 19:51:01Z",
            "2020-12-28T19:51:01.Z",
            "2020-12-28T19:51:01.641Z ",
            "2020-12-28T19:51:60Z",
            "2020-12-28T24:00:00Z",
            "2021-02-29T00:00:00Z",
            "2020-13-01T00:00:00Z",
            "2020-12-28T19:51:01+19:00",
            "2020-12-28T19:51:01+10:0",
            "2020-12-28T19:51:01+1000:00",
            "2020-12-28T19:51:01Z[UTC]",
            "+12020-12-28T19:51:01Z",
            "{{RUN_START_TIME}}",
            "２０２０-12-28T19:51:01Z",
        ] {
            let err = parse_millis(text).unwrap_err();
            assert!(err.contains(EXAMPLE), "{text}: {err}");
        }
    }
}
