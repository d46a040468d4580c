//! iCalendar (RFC 5545) as booking calendars contain it: the events of a
//! file (folded lines, escaped text, all-day and timed starts in UTC, a
//! named zone or floating), cancelled ones marked, recurrences expanded
//! (DAILY, WEEKLY, MONTHLY, YEARLY with INTERVAL, COUNT, UNTIL, and EXDATE)
//! over a window. A file that is not a calendar is an error naming the
//! line, so the previous calendar can be kept.

use chrono::{
    DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;

/// Why a calendar file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("not an iCalendar file (no BEGIN:VCALENDAR)")]
    NotACalendar,
    #[error("line {line}: {reason}")]
    Malformed { line: usize, reason: String },
}

/// A start or end as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// All day (`VALUE=DATE`).
    Date(NaiveDate),
    /// A UTC time (`...Z`).
    Utc(DateTime<Utc>),
    /// A local time in a named zone (`TZID=`).
    Zoned(NaiveDateTime, Tz),
    /// A local time in no zone: the house's.
    Floating(NaiveDateTime),
}

impl When {
    /// The instant, with all-day dates at `time` in `house` (check-in or
    /// check-out) and floating times in `house`.
    pub fn instant(self, house: Tz, time: NaiveTime) -> DateTime<Utc> {
        let local = |t: NaiveDateTime, tz: Tz| {
            // A time skipped by a DST change is read an hour later; an
            // ambiguous one as its first occurrence.
            tz.from_local_datetime(&t)
                .earliest()
                .or_else(|| tz.from_local_datetime(&(t + Duration::hours(1))).earliest())
                .map_or_else(|| Utc.from_utc_datetime(&t), |d| d.with_timezone(&Utc))
        };
        match self {
            Self::Date(d) => local(d.and_time(time), house),
            Self::Utc(t) => t,
            Self::Zoned(t, tz) => local(t, tz),
            Self::Floating(t) => local(t, house),
        }
    }

    fn shift(self, f: impl Fn(NaiveDateTime) -> Option<NaiveDateTime>) -> Option<Self> {
        Some(match self {
            Self::Date(d) => Self::Date(f(d.and_time(NaiveTime::MIN))?.date()),
            Self::Utc(t) => Self::Utc(Utc.from_utc_datetime(&f(t.naive_utc())?)),
            Self::Zoned(t, tz) => Self::Zoned(f(t)?, tz),
            Self::Floating(t) => Self::Floating(f(t)?),
        })
    }

    /// The same wall-clock value for comparing occurrences with EXDATEs
    /// and UNTIL.
    fn naive(self) -> NaiveDateTime {
        match self {
            Self::Date(d) => d.and_time(NaiveTime::MIN),
            Self::Utc(t) => t.naive_utc(),
            Self::Zoned(t, _) | Self::Floating(t) => t,
        }
    }
}

/// How often an event repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// An RRULE (the parts booking calendars use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub frequency: Frequency,
    pub interval: u32,
    pub count: Option<u32>,
    pub until: Option<When>,
}

/// One VEVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub uid: String,
    pub summary: String,
    pub start: When,
    /// Exclusive; for an all-day event the check-out day.
    pub end: When,
    pub cancelled: bool,
    pub rule: Option<Rule>,
    pub exdates: Vec<When>,
}

/// An occurrence of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub uid: String,
    pub summary: String,
    pub start: When,
    pub end: When,
}

/// Most occurrences one event may expand to (a daily rule without end
/// over a long window stays bounded).
const MAX_OCCURRENCES: usize = 10_000;

impl Event {
    /// Its occurrences starting before `until` (naive, compared with the
    /// start as written), at most [`MAX_OCCURRENCES`].
    pub fn occurrences(&self, until: NaiveDateTime) -> Vec<Occurrence> {
        let Some(rule) = &self.rule else {
            return vec![self.at(self.start, self.end)];
        };
        let mut out = Vec::new();
        for n in 0u32.. {
            if out.len() >= MAX_OCCURRENCES || rule.count.is_some_and(|c| n >= c) {
                break;
            }
            let step = n.saturating_mul(rule.interval);
            let shift = |t: NaiveDateTime| -> Option<NaiveDateTime> {
                match rule.frequency {
                    Frequency::Daily => t.checked_add_signed(Duration::days(i64::from(step))),
                    Frequency::Weekly => t.checked_add_signed(Duration::weeks(i64::from(step))),
                    Frequency::Monthly => t.checked_add_months(Months::new(step)),
                    Frequency::Yearly => t.checked_add_months(Months::new(step.saturating_mul(12))),
                }
            };
            let (Some(start), Some(end)) = (self.start.shift(shift), self.end.shift(shift)) else {
                break;
            };
            if start.naive() >= until || rule.until.is_some_and(|u| start.naive() > u.naive()) {
                break;
            }
            // A monthly rule on the 31st skips months without one, as
            // RFC 5545 says (chrono would clamp to the 30th).
            if matches!(rule.frequency, Frequency::Monthly | Frequency::Yearly)
                && start.naive().day() != self.start.naive().day()
            {
                continue;
            }
            if !self.exdates.iter().any(|x| x.naive() == start.naive()) {
                out.push(self.at(start, end));
            }
        }
        out
    }

    fn at(&self, start: When, end: When) -> Occurrence {
        Occurrence {
            uid: self.uid.clone(),
            summary: self.summary.clone(),
            start,
            end,
        }
    }
}

/// The events of an iCalendar text.
pub fn parse(text: &str) -> Result<Vec<Event>, CalendarError> {
    let lines = unfold(text);
    if !lines
        .iter()
        .any(|(_, l)| l.eq_ignore_ascii_case("BEGIN:VCALENDAR"))
    {
        return Err(CalendarError::NotACalendar);
    }
    let mut events = Vec::new();
    let mut current: Option<Partial> = None;
    let mut depth = 0usize;
    for (number, line) in lines {
        let bad = |reason: String| CalendarError::Malformed {
            line: number,
            reason,
        };
        let Some((head, value)) = line.split_once(':') else {
            return Err(bad(format!("no ':' in {line:?}")));
        };
        let mut parts = head.split(';');
        let name = parts.next().unwrap_or_default().to_ascii_uppercase();
        let params: Vec<(String, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_ascii_uppercase(), v.trim_matches('"').to_owned()))
            .collect();
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        match (name.as_str(), value.to_ascii_uppercase().as_str()) {
            ("BEGIN", "VEVENT") if current.is_none() => {
                current = Some(Partial {
                    line: number,
                    ..Partial::default()
                });
                continue;
            }
            ("END", "VEVENT") => {
                let partial = current
                    .take()
                    .ok_or_else(|| bad("END:VEVENT without BEGIN".into()))?;
                events.push(partial.finish()?);
                continue;
            }
            ("BEGIN", _) if current.is_some() => depth += 1,
            ("END", _) if current.is_some() => depth = depth.saturating_sub(1),
            _ => {}
        }
        // Properties of nested parts (alarms) are not the event's.
        let Some(event) = current.as_mut().filter(|_| depth == 0) else {
            continue;
        };
        match name.as_str() {
            "UID" => event.uid = unescape(value),
            "SUMMARY" => event.summary = unescape(value),
            "STATUS" => event.cancelled = value.eq_ignore_ascii_case("CANCELLED"),
            "DTSTART" => {
                event.start = Some(when(value, param("VALUE"), param("TZID")).map_err(bad)?)
            }
            "DTEND" => event.end = Some(when(value, param("VALUE"), param("TZID")).map_err(bad)?),
            "DURATION" => event.duration = Some(duration(value).map_err(bad)?),
            "RRULE" => event.rule = Some(rule(value).map_err(bad)?),
            "EXDATE" => {
                for v in value.split(',') {
                    event
                        .exdates
                        .push(when(v, param("VALUE"), param("TZID")).map_err(bad)?);
                }
            }
            _ => {}
        }
    }
    if let Some(open) = current {
        return Err(CalendarError::Malformed {
            line: open.line,
            reason: "VEVENT never ends".into(),
        });
    }
    Ok(events)
}

#[derive(Debug, Default)]
struct Partial {
    line: usize,
    uid: String,
    summary: String,
    start: Option<When>,
    end: Option<When>,
    duration: Option<Duration>,
    cancelled: bool,
    rule: Option<Rule>,
    exdates: Vec<When>,
}

impl Partial {
    fn finish(self) -> Result<Event, CalendarError> {
        let bad = |reason: &str| CalendarError::Malformed {
            line: self.line,
            reason: format!("VEVENT {:?}: {reason}", self.uid),
        };
        let start = self.start.ok_or_else(|| bad("no DTSTART"))?;
        let end = match (self.end, self.duration) {
            (Some(end), _) => end,
            (None, Some(d)) => start
                .shift(|t| t.checked_add_signed(d))
                .ok_or_else(|| bad("DURATION out of range"))?,
            // RFC 5545: an all-day event without an end lasts the day.
            (None, None) => match start {
                When::Date(d) => When::Date(d.succ_opt().ok_or_else(|| bad("date out of range"))?),
                other => other,
            },
        };
        if end.naive() < start.naive() {
            return Err(bad("ends before it starts"));
        }
        Ok(Event {
            uid: self.uid,
            summary: self.summary,
            start,
            end,
            cancelled: self.cancelled,
            rule: self.rule,
            exdates: self.exdates,
        })
    }
}

/// Lines with folding undone (a line starting with a space or tab goes on
/// the previous one), numbered as in the file.
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        match (line.strip_prefix([' ', '\t']), out.last_mut()) {
            (Some(rest), Some((_, last))) => last.push_str(rest),
            _ if line.trim().is_empty() => {}
            _ => out.push((i + 1, line.to_owned())),
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn when(value: &str, kind: Option<&str>, tzid: Option<&str>) -> Result<When, String> {
    let value = value.trim();
    if kind.is_some_and(|k| k.eq_ignore_ascii_case("DATE")) || value.len() == 8 {
        return NaiveDate::parse_from_str(value, "%Y%m%d")
            .map(When::Date)
            .map_err(|e| format!("date {value:?}: {e}"));
    }
    let (text, utc) = match value.strip_suffix(['Z', 'z']) {
        Some(t) => (t, true),
        None => (value, false),
    };
    let t = NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%S")
        .map_err(|e| format!("date-time {value:?}: {e}"))?;
    if utc {
        return Ok(When::Utc(Utc.from_utc_datetime(&t)));
    }
    match tzid {
        Some(name) => {
            // Some exporters write Windows-style or prefixed names; the
            // last path parts are tried too ("/Europe/Paris").
            let name = name.trim_start_matches('/');
            name.parse::<Tz>()
                .map(|tz| When::Zoned(t, tz))
                .map_err(|_| format!("unknown time zone {name:?}"))
        }
        None => Ok(When::Floating(t)),
    }
}

/// An ISO 8601 duration as RFC 5545 allows: `P1D`, `PT2H30M`, `P2W`.
fn duration(value: &str) -> Result<Duration, String> {
    let bad = || format!("duration {value:?}");
    let (sign, rest) = match value.trim().strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, value.trim().trim_start_matches('+')),
    };
    let rest = rest.strip_prefix('P').ok_or_else(bad)?;
    let mut total = Duration::zero();
    let mut number = String::new();
    let mut in_time = false;
    for c in rest.chars() {
        match c {
            '0'..='9' => number.push(c),
            'T' => in_time = true,
            unit => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                total += match (unit, in_time) {
                    ('W', false) => Duration::weeks(n),
                    ('D', false) => Duration::days(n),
                    ('H', true) => Duration::hours(n),
                    ('M', true) => Duration::minutes(n),
                    ('S', true) => Duration::seconds(n),
                    _ => return Err(bad()),
                };
            }
        }
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(total * sign)
}

fn rule(value: &str) -> Result<Rule, String> {
    let mut frequency = None;
    let mut rule = Rule {
        frequency: Frequency::Daily,
        interval: 1,
        count: None,
        until: None,
    };
    for part in value.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("RRULE part {part:?}"))?;
        match k.to_ascii_uppercase().as_str() {
            "FREQ" => {
                frequency = Some(match v.to_ascii_uppercase().as_str() {
                    "DAILY" => Frequency::Daily,
                    "WEEKLY" => Frequency::Weekly,
                    "MONTHLY" => Frequency::Monthly,
                    "YEARLY" => Frequency::Yearly,
                    other => return Err(format!("RRULE frequency {other} is not supported")),
                });
            }
            "INTERVAL" => {
                rule.interval = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("INTERVAL {v:?}"))?
            }
            "COUNT" => rule.count = Some(v.parse().map_err(|_| format!("COUNT {v:?}"))?),
            "UNTIL" => rule.until = Some(when(v, None, None)?),
            "WKST" => {}
            // BYDAY and the other BY parts change which days occur; an
            // expansion without them would be wrong, so they are refused.
            other => return Err(format!("RRULE part {other} is not supported")),
        }
    }
    rule.frequency = frequency.ok_or("RRULE without FREQ")?;
    Ok(rule)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ics(events: &str) -> String {
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{events}END:VCALENDAR\r\n")
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn an_airbnb_export_reads() {
        // As such exports look: all-day reservations, a folded
        // description, a blocked period.
        let text = ics(
            "BEGIN:VEVENT\r\nDTEND;VALUE=DATE:20261205\r\nDTSTART;VALUE=DATE:20261201\r\n\
             UID:1418fb94e984-3a1d@airbnb.com\r\nDESCRIPTION:Reservation URL: https://example.invalid/\r\n \
             details/HMABC\\nPhone: 1234\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nDTEND;VALUE=DATE:20261212\r\nDTSTART;VALUE=DATE:20261210\r\n\
             UID:99@airbnb.com\r\nSUMMARY:Airbnb (Not available)\r\nEND:VEVENT\r\n",
        );
        let events = parse(&text).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].start, When::Date(date(2026, 12, 1)));
        assert_eq!(events[0].end, When::Date(date(2026, 12, 5)));
        assert_eq!(events[0].summary, "Reserved");
        assert!(!events[0].cancelled);
    }

    #[test]
    fn zones_utc_floating_and_durations() {
        let text = ics(
            "BEGIN:VEVENT\nUID:a\nDTSTART;TZID=Europe/Amsterdam:20260701T150000\nDURATION:PT2H30M\nEND:VEVENT\n\
             BEGIN:VEVENT\nUID:b\nDTSTART:20260701T130000Z\nDTEND:20260701T140000Z\nEND:VEVENT\n\
             BEGIN:VEVENT\nUID:c\nDTSTART:20260701T090000\nDTEND:20260701T100000\nSTATUS:CANCELLED\nEND:VEVENT\n",
        );
        let events = parse(&text).unwrap();
        let noon = NaiveTime::from_hms_opt(12, 0, 0).unwrap();
        let house: Tz = "America/New_York".parse().unwrap();
        // 15:00 in Amsterdam in summer is 13:00 UTC.
        assert_eq!(
            events[0].start.instant(house, noon).to_rfc3339(),
            "2026-07-01T13:00:00+00:00"
        );
        assert_eq!(
            events[0].end.instant(house, noon).to_rfc3339(),
            "2026-07-01T15:30:00+00:00"
        );
        assert_eq!(
            events[1].start.instant(house, noon).to_rfc3339(),
            "2026-07-01T13:00:00+00:00"
        );
        // Floating times are the house's.
        assert_eq!(
            events[2].start.instant(house, noon).to_rfc3339(),
            "2026-07-01T13:00:00+00:00"
        );
        assert!(events[2].cancelled);
        // An all-day date at the given time in the house's zone.
        let d = When::Date(date(2026, 1, 10));
        assert_eq!(
            d.instant(house, noon).to_rfc3339(),
            "2026-01-10T17:00:00+00:00"
        );
    }

    #[test]
    fn recurrences_expand_with_their_limits() {
        let text = ics(
            "BEGIN:VEVENT\nUID:w\nDTSTART;VALUE=DATE:20260105\nDTEND;VALUE=DATE:20260107\n\
             RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=4\nEXDATE;VALUE=DATE:20260119\nEND:VEVENT\n\
             BEGIN:VEVENT\nUID:m\nDTSTART;VALUE=DATE:20260131\nRRULE:FREQ=MONTHLY;UNTIL=20260601\nEND:VEVENT\n\
             BEGIN:VEVENT\nUID:d\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=DAILY\nEND:VEVENT\n",
        );
        let events = parse(&text).unwrap();
        let horizon = date(2027, 1, 1).and_time(NaiveTime::MIN);
        let starts = |e: &Event| -> Vec<When> {
            e.occurrences(horizon)
                .into_iter()
                .map(|o| o.start)
                .collect()
        };
        // Every other week, four times, one excluded.
        assert_eq!(
            starts(&events[0]),
            [
                When::Date(date(2026, 1, 5)),
                When::Date(date(2026, 2, 2)),
                When::Date(date(2026, 2, 16))
            ]
        );
        // The 31st of the months that have one, until June.
        assert_eq!(
            starts(&events[1]),
            [
                When::Date(date(2026, 1, 31)),
                When::Date(date(2026, 3, 31)),
                When::Date(date(2026, 5, 31))
            ]
        );
        // Without an end: bounded by the horizon.
        assert_eq!(starts(&events[2]).len(), 365);
        // A one-day all-day event without DTEND lasts the day.
        assert_eq!(events[1].end, When::Date(date(2026, 2, 1)));
    }

    #[test]
    fn broken_files_are_refused_with_the_line() {
        assert_eq!(parse("hello"), Err(CalendarError::NotACalendar));
        let cases = [
            ("BEGIN:VEVENT\nUID:x\nEND:VEVENT\n", "no DTSTART"),
            (
                "BEGIN:VEVENT\nDTSTART:2026-01-01\nEND:VEVENT\n",
                "date-time",
            ),
            (
                "BEGIN:VEVENT\nDTSTART;TZID=Mars/Olympus:20260101T100000\nEND:VEVENT\n",
                "unknown time zone",
            ),
            (
                "BEGIN:VEVENT\nDTSTART:20260101T100000Z\nDTEND:20250101T100000Z\nEND:VEVENT\n",
                "ends before",
            ),
            (
                "BEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=WEEKLY;BYDAY=MO\nEND:VEVENT\n",
                "BYDAY",
            ),
            ("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\n", "never ends"),
            ("BEGIN:VEVENT\nno colon here\nEND:VEVENT\n", "no ':'"),
        ];
        for (body, expected) in cases {
            let err = parse(&ics(body)).unwrap_err().to_string();
            assert!(err.contains(expected), "{body:?}: {err}");
            assert!(err.starts_with("line "), "{err}");
        }
    }

    #[test]
    fn alarms_inside_events_do_not_override_them() {
        let text = ics(
            "BEGIN:VEVENT\nUID:e\nSUMMARY:Stay\nDTSTART;VALUE=DATE:20260301\n\
             BEGIN:VALARM\nSUMMARY:Reminder\nTRIGGER:-PT15M\nEND:VALARM\nEND:VEVENT\n",
        );
        assert_eq!(parse(&text).unwrap()[0].summary, "Stay");
    }
}
