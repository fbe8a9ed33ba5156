use time::macros::datetime;
use time::Duration;

use super::*;

fn snaps(times: &[OffsetDateTime]) -> Vec<(String, OffsetDateTime)> {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("s{i:02}"), *t))
        .collect()
}

fn kept(plan: &RetentionPlan) -> Vec<&str> {
    let mut k: Vec<&str> = plan.keep.keys().map(String::as_str).collect();
    k.sort();
    k
}

#[test]
fn newest_is_always_kept() {
    let t0 = datetime!(2026-11-01 00:00 UTC);
    let s = snaps(&[t0, t0 + Duration::minutes(1), t0 + Duration::minutes(2)]);
    let plan = plan_retention(&s, &Retention::default());
    assert_eq!(kept(&plan), ["s02"]);
    assert_eq!(plan.keep["s02"], [KeepReason::Newest]);
    assert_eq!(plan.forget, ["s01", "s00"]);
    assert_eq!(
        plan_retention(&[], &Retention::default()),
        RetentionPlan::default()
    );
}

#[test]
fn keep_last() {
    let t0 = datetime!(2026-11-01 00:00 UTC);
    let s = snaps(
        &(0..6)
            .map(|i| t0 + Duration::minutes(i))
            .collect::<Vec<_>>(),
    );
    let plan = plan_retention(
        &s,
        &Retention {
            keep_last: 3,
            ..Default::default()
        },
    );
    assert_eq!(kept(&plan), ["s03", "s04", "s05"]);
    assert_eq!(plan.forget, ["s02", "s01", "s00"]);
}

#[test]
fn keep_hourly_takes_newest_of_each_hour_with_snapshots() {
    let t0 = datetime!(2026-11-01 10:00 UTC);
    // Hour 10: :05, :50; hour 11: none; hour 12: :10, :20, :59; hour 13: :00.
    let s = snaps(&[
        t0 + Duration::minutes(5),
        t0 + Duration::minutes(50),
        t0 + Duration::minutes(130),
        t0 + Duration::minutes(140),
        t0 + Duration::minutes(179),
        t0 + Duration::minutes(180),
    ]);
    let plan = plan_retention(
        &s,
        &Retention {
            keep_hourly: 3,
            ..Default::default()
        },
    );
    // Hours 13, 12 and 10 (11 has none, so it does not use up a slot).
    assert_eq!(kept(&plan), ["s01", "s04", "s05"]);
    let plan = plan_retention(
        &s,
        &Retention {
            keep_hourly: 2,
            ..Default::default()
        },
    );
    assert_eq!(kept(&plan), ["s04", "s05"]);
}

#[test]
fn keep_daily_and_union_of_rules() {
    let d = |day: u8, h: u8| {
        datetime!(2026-11-01 00:00 UTC)
            + Duration::days(i64::from(day))
            + Duration::hours(i64::from(h))
    };
    let s = snaps(&[d(0, 1), d(0, 23), d(1, 5), d(3, 2), d(3, 4), d(3, 6)]);
    let policy = Retention {
        keep_last: 1,
        keep_hourly: 0,
        keep_daily: 3,
    };
    let plan = plan_retention(&s, &policy);
    // Days 3 (newest, s05), 1 (s02), 0 (s01).
    assert_eq!(kept(&plan), ["s01", "s02", "s05"]);
    assert_eq!(
        plan.keep["s05"],
        [KeepReason::Newest, KeepReason::Last, KeepReason::Daily]
    );
    let policy = Retention {
        keep_last: 2,
        keep_hourly: 1,
        keep_daily: 1,
    };
    assert_eq!(kept(&plan_retention(&s, &policy)), ["s04", "s05"]);
}

#[test]
fn order_of_input_does_not_matter() {
    let t0 = datetime!(2026-11-01 00:00 UTC);
    let mut s = snaps(
        &(0..10)
            .map(|i| t0 + Duration::minutes(37 * i))
            .collect::<Vec<_>>(),
    );
    let policy = Retention {
        keep_last: 2,
        keep_hourly: 3,
        keep_daily: 1,
    };
    let a = plan_retention(&s, &policy);
    s.reverse();
    assert_eq!(plan_retention(&s, &policy), a);
}
