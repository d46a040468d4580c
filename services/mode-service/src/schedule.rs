//! Which mode the house is in at an instant, and why: a manual override
//! until it expires, else guest mode during a booking (from check-in time
//! on its first day to check-out time on its last), else owner mode.

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::Event;

/// Who the house is set up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Owner,
    Guest,
}

/// A manual mode until a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub mode: Mode,
    pub until: DateTime<Utc>,
}

/// When a stay turns into guest mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HouseRules {
    pub zone: Tz,
    pub check_in: NaiveTime,
    pub check_out: NaiveTime,
}

/// One stay, in instants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Booking {
    pub uid: String,
    pub summary: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Why the house is in its mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    Override {
        until: DateTime<Utc>,
    },
    Booking {
        uid: String,
        summary: String,
        until: DateTime<Utc>,
    },
    NoBooking {
        next_booking: Option<DateTime<Utc>>,
    },
}

/// The bookings of `events` (not cancelled) that end after `from` and
/// start before `until`, in order. Overlapping and back-to-back stays are
/// merged into one guest period where they touch.
pub fn bookings<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    rules: &HouseRules,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<Booking> {
    let horizon = until.with_timezone(&rules.zone).naive_local() + chrono::Duration::days(1);
    let mut out: Vec<Booking> = events
        .into_iter()
        .filter(|e| !e.cancelled)
        .flat_map(|e| e.occurrences(horizon))
        .map(|o| Booking {
            start: o.start.instant(rules.zone, rules.check_in),
            end: o.end.instant(rules.zone, rules.check_out),
            uid: o.uid,
            summary: o.summary,
        })
        .filter(|b| b.end > from && b.start < until && b.end > b.start)
        .collect();
    out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.uid.cmp(&b.uid)));
    out
}

/// The mode at `now`, and why.
pub fn mode_at(
    now: DateTime<Utc>,
    bookings: &[Booking],
    manual: Option<&Override>,
) -> (Mode, Reason) {
    if let Some(o) = manual.filter(|o| o.until > now) {
        return (o.mode, Reason::Override { until: o.until });
    }
    // Stays that touch or overlap count as one until the last ends.
    let mut current: Option<(&Booking, DateTime<Utc>)> = None;
    for b in bookings {
        match current {
            None if b.start <= now && now < b.end => current = Some((b, b.end)),
            Some((first, end)) if b.start <= end => current = Some((first, end.max(b.end))),
            _ => {}
        }
    }
    if let Some((b, until)) = current {
        return (
            Mode::Guest,
            Reason::Booking {
                uid: b.uid.clone(),
                summary: b.summary.clone(),
                until,
            },
        );
    }
    let next_booking = bookings.iter().map(|b| b.start).filter(|s| *s > now).min();
    (Mode::Owner, Reason::NoBooking { next_booking })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::calendar::parse;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn rules() -> HouseRules {
        HouseRules {
            zone: "Europe/Amsterdam".parse().unwrap(),
            check_in: NaiveTime::from_hms_opt(15, 0, 0).unwrap(),
            check_out: NaiveTime::from_hms_opt(11, 0, 0).unwrap(),
        }
    }

    fn calendar() -> Vec<Event> {
        parse(
            "BEGIN:VCALENDAR\nVERSION:2.0\n\
             BEGIN:VEVENT\nUID:a\nSUMMARY:Reserved\nDTSTART;VALUE=DATE:20261201\nDTEND;VALUE=DATE:20261205\nEND:VEVENT\n\
             BEGIN:VEVENT\nUID:b\nSUMMARY:Reserved\nDTSTART;VALUE=DATE:20261205\nDTEND;VALUE=DATE:20261207\nEND:VEVENT\n\
             BEGIN:VEVENT\nUID:c\nSUMMARY:Reserved\nDTSTART;VALUE=DATE:20261210\nDTEND;VALUE=DATE:20261212\n\
             STATUS:CANCELLED\nEND:VEVENT\n\
             BEGIN:VEVENT\nUID:d\nSUMMARY:Reserved\nDTSTART;VALUE=DATE:20261220\nDTEND;VALUE=DATE:20261222\nEND:VEVENT\n\
             BEGIN:VEVENT\nUID:e\nSUMMARY:Overlap\nDTSTART;VALUE=DATE:20261221\nDTEND;VALUE=DATE:20261224\nEND:VEVENT\n\
             END:VCALENDAR\n",
        )
        .unwrap()
    }

    fn mode(now: &str, manual: Option<&Override>) -> (Mode, Reason) {
        let now = at(now);
        let b = bookings(
            &calendar(),
            &rules(),
            now - chrono::Duration::days(60),
            now + chrono::Duration::days(60),
        );
        mode_at(now, &b, manual)
    }

    #[test]
    fn check_in_and_check_out_times_bound_a_stay() {
        // Amsterdam is UTC+1 in December: check-in 15:00 = 14:00 UTC.
        assert_eq!(mode("2026-12-01T13:59:00Z", None).0, Mode::Owner);
        assert_eq!(mode("2026-12-01T14:00:00Z", None).0, Mode::Guest);
        // Back to back (a ends the 5th at 11:00 = 10:00 UTC, b starts at
        // 15:00 that day): owner mode between, for the cleaning.
        assert_eq!(mode("2026-12-05T09:59:00Z", None).0, Mode::Guest);
        assert_eq!(mode("2026-12-05T10:00:00Z", None).0, Mode::Owner);
        assert_eq!(mode("2026-12-05T14:30:00Z", None).0, Mode::Guest);
        assert_eq!(mode("2026-12-07T10:00:00Z", None).0, Mode::Owner);
    }

    #[test]
    fn cancelled_and_overlapping_bookings() {
        assert_eq!(
            mode("2026-12-11T12:00:00Z", None).0,
            Mode::Owner,
            "cancelled"
        );
        // d and e overlap: one guest period until e's check-out.
        let (m, why) = mode("2026-12-21T12:00:00Z", None);
        assert_eq!(m, Mode::Guest);
        assert_eq!(
            why,
            Reason::Booking {
                uid: "d".into(),
                summary: "Reserved".into(),
                until: at("2026-12-24T10:00:00Z")
            }
        );
        let (_, why) = mode("2026-12-15T12:00:00Z", None);
        assert_eq!(
            why,
            Reason::NoBooking {
                next_booking: Some(at("2026-12-20T14:00:00Z"))
            }
        );
    }

    #[test]
    fn an_override_holds_until_it_expires() {
        let o = Override {
            mode: Mode::Owner,
            until: at("2026-12-02T12:00:00Z"),
        };
        assert_eq!(mode("2026-12-02T11:00:00Z", Some(&o)).0, Mode::Owner);
        assert_eq!(
            mode("2026-12-02T12:00:00Z", Some(&o)).0,
            Mode::Guest,
            "expired"
        );
        let g = Override {
            mode: Mode::Guest,
            until: at("2026-12-30T00:00:00Z"),
        };
        assert_eq!(
            mode("2026-12-15T00:00:00Z", Some(&g)),
            (
                Mode::Guest,
                Reason::Override {
                    until: at("2026-12-30T00:00:00Z")
                }
            )
        );
    }
}
