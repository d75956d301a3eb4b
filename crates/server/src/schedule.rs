//! When backups run: every day at 02:00 in the account's own time zone.
//!
//! Pure functions of a time zone and instants (no clock inside), so tests can walk them
//! across daylight-saving changes. Rules:
//! - a local 02:00 that does not exist (clocks jump from 02:00 to 03:00) runs at the
//!   first instant after the gap, which is the moment of the jump;
//! - a local 02:00 that happens twice (clocks fall back) runs once, at the first;
//! - any number of missed days cause one catch-up run.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The local time of day backups run.
pub const RUN_AT: NaiveTime = match NaiveTime::from_hms_opt(2, 0, 0) {
    Some(t) => t,
    None => panic!("02:00 is a valid time"),
};

/// The instant of the run for local date `day`.
pub fn run_instant(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let wanted = day.and_time(RUN_AT);
    match tz.from_local_datetime(&wanted) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: the first local time after it that exists is the jump itself.
            let mut probe = wanted;
            for _ in 0..(24 * 60) {
                probe += chrono::Duration::minutes(1);
                match tz.from_local_datetime(&probe) {
                    LocalResult::Single(t) => return gap_start(tz, t.with_timezone(&Utc)),
                    LocalResult::Ambiguous(t, _) => return gap_start(tz, t.with_timezone(&Utc)),
                    LocalResult::None => continue,
                }
            }
            // No zone has a day-long gap; fall back to the UTC reading of the wall time.
            wanted.and_utc()
        }
    }
}

/// Walks back from the first existing minute after a gap to the transition instant
/// (the probe found the first whole minute; the jump is usually exactly there).
fn gap_start(tz: Tz, after: DateTime<Utc>) -> DateTime<Utc> {
    let offset_after = tz.offset_from_utc_datetime(&after.naive_utc());
    let mut t = after;
    for _ in 0..60 {
        let earlier = t - chrono::Duration::minutes(1);
        if tz.offset_from_utc_datetime(&earlier.naive_utc()) != offset_after {
            return t;
        }
        t = earlier;
    }
    after
}

/// The first scheduled run strictly after `after`.
pub fn next_run(tz: Tz, after: DateTime<Utc>) -> DateTime<Utc> {
    let local_day = after.with_timezone(&tz).date_naive();
    for d in 0..3 {
        let day = local_day.checked_sub_days(Days::new(1)).unwrap_or(local_day) + chrono::Duration::days(d);
        let at = run_instant(tz, day);
        if at > after {
            return at;
        }
    }
    run_instant(tz, local_day + chrono::Duration::days(2))
}

/// The latest scheduled run at or before `now`.
pub fn last_due(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let local_day = now.with_timezone(&tz).date_naive();
    for d in 0..3 {
        let day = local_day + chrono::Duration::days(1) - chrono::Duration::days(d);
        let at = run_instant(tz, day);
        if at <= now {
            return at;
        }
    }
    run_instant(tz, local_day - chrono::Duration::days(2))
}

/// Whether a scheduled backup is due now: the latest scheduled instant has passed and
/// no scheduled backup was taken at or after it. However many days were missed, this
/// asks for one run.
pub fn is_due(tz: Tz, last_scheduled_run: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    let due = last_due(tz, now);
    last_scheduled_run.is_none_or(|last| last < due)
}

/// The shop-local calendar date of an instant.
pub fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn tz(name: &str) -> Tz {
        name.parse().unwrap()
    }

    /// Walks `days` days of runs from `start`, checking each local date runs exactly once.
    fn runs_between(zone: Tz, start: &str, days: i64) -> Vec<DateTime<Utc>> {
        let mut runs = Vec::new();
        let mut t = utc(start);
        for _ in 0..days {
            t = next_run(zone, t);
            runs.push(t);
        }
        let dates: Vec<NaiveDate> = runs.iter().map(|r| local_date(zone, *r)).collect();
        for w in dates.windows(2) {
            assert_eq!(
                w[1],
                w[0] + chrono::Duration::days(1),
                "a day ran twice or not at all: {runs:?}"
            );
        }
        runs
    }

    #[test]
    fn an_ordinary_day_runs_at_two_local() {
        let zone = tz("America/Chicago");
        let r = next_run(zone, utc("2026-06-10T12:00:00Z"));
        assert_eq!(r, utc("2026-06-11T07:00:00Z")); // 02:00 CDT = 07:00 UTC
        assert_eq!(r.with_timezone(&zone).hour(), 2);
    }

    #[test]
    fn spring_forward_runs_at_the_jump_in_several_zones() {
        // US: 2026-03-08 02:00 → 03:00; the run is at the jump, 08:00 UTC.
        let runs = runs_between(tz("America/Chicago"), "2026-03-05T12:00:00Z", 6);
        assert!(runs.contains(&utc("2026-03-08T08:00:00Z")), "{runs:?}");
        // EU (Berlin): 2026-03-29 02:00 → 03:00 local; jump at 01:00 UTC.
        let runs = runs_between(tz("Europe/Berlin"), "2026-03-26T12:00:00Z", 6);
        assert!(runs.contains(&utc("2026-03-29T01:00:00Z")), "{runs:?}");
        // Lord Howe moves by 30 minutes at 02:00 → 02:30.
        let runs = runs_between(tz("Australia/Lord_Howe"), "2026-10-01T00:00:00Z", 6);
        let day = runs
            .iter()
            .find(|r| local_date(tz("Australia/Lord_Howe"), **r) == NaiveDate::from_ymd_opt(2026, 10, 4).unwrap());
        assert_eq!(
            day.unwrap().with_timezone(&tz("Australia/Lord_Howe")).minute(),
            30,
            "{runs:?}"
        );
    }

    #[test]
    fn fall_back_runs_once_at_the_first_two_oclock() {
        // Berlin 2026-10-25: 03:00 CEST → 02:00 CET, so 02:00–03:00 happens twice.
        let zone = tz("Europe/Berlin");
        let runs = runs_between(zone, "2026-10-22T12:00:00Z", 6);
        let day = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
        let on_day: Vec<_> = runs.iter().filter(|r| local_date(zone, **r) == day).collect();
        assert_eq!(on_day, vec![&utc("2026-10-25T00:00:00Z")], "{runs:?}");
        // Chicago 2026-11-01: 02:00 CDT → 01:00 CST; 02:00 CST happens once.
        let runs = runs_between(tz("America/Chicago"), "2026-10-29T12:00:00Z", 6);
        assert!(runs.contains(&utc("2026-11-01T08:00:00Z")), "{runs:?}");
    }

    #[test]
    fn a_year_in_many_zones_has_one_run_per_day() {
        for name in [
            "America/Chicago",
            "Europe/Berlin",
            "Australia/Sydney",
            "Asia/Kolkata",
            "Pacific/Auckland",
            "America/Santiago",
            "UTC",
        ] {
            let runs = runs_between(tz(name), "2026-01-01T00:00:00Z", 366);
            assert_eq!(runs.len(), 366, "{name}");
        }
    }

    #[test]
    fn missed_days_cause_one_catch_up() {
        let zone = tz("America/Chicago");
        let last = utc("2026-06-01T07:00:00Z");
        assert!(!is_due(zone, Some(last), utc("2026-06-01T20:00:00Z")));
        assert!(is_due(zone, Some(last), utc("2026-06-02T07:00:00Z")));
        // Down for five days: due once; after the catch-up, not due until the next 02:00.
        let now = utc("2026-06-06T15:00:00Z");
        assert!(is_due(zone, Some(last), now));
        assert!(!is_due(zone, Some(now), utc("2026-06-06T16:00:00Z")));
        assert!(is_due(zone, None, now), "an account never backed up is due");
    }
}
