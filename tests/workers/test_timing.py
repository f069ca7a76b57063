"""Cron rules, time zones, intervals and missed periods, with an injected clock (no waiting)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apex.errors import ScheduleError
from apex.workers.timing import MISFIRE_S, Rule, day_start, due, next_due, parse_every

PARIS = ZoneInfo("Europe/Paris")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_weekday_mornings_in_paris_keep_nine_oclock_across_daylight_saving() -> None:
    rule = Rule(cron="0 9 * * 1-5", tz="Europe/Paris")
    moment, fired = utc(2027, 3, 25, 12), []  # Thursday; clocks go forward on Sunday the 28th
    for _ in range(4):
        moment = next_due(rule, moment)
        fired.append(moment)
    assert [f.astimezone(PARIS).strftime("%a %d %H:%M") for f in fired] == [
        "Fri 26 09:00",
        "Mon 29 09:00",
        "Tue 30 09:00",
        "Wed 31 09:00",
    ]
    assert [f.hour for f in fired] == [8, 7, 7, 7]  # 09:00 CET is 08:00 UTC, CEST 07:00 UTC


def test_a_time_missing_on_the_spring_forward_night_fires_just_after() -> None:
    rule = Rule(cron="30 2 * * *", tz="Europe/Paris")
    first = next_due(rule, utc(2027, 3, 27, 12))
    assert first.astimezone(PARIS).strftime("%d %H:%M") == "28 03:00"  # 02:30 does not exist
    assert next_due(rule, first).astimezone(PARIS).strftime("%d %H:%M") == "29 02:30"


def test_the_same_cron_in_utc_and_in_a_zone_differs_by_the_offset() -> None:
    after = utc(2027, 1, 10, 0)
    assert next_due(Rule(cron="0 9 * * *"), after) == utc(2027, 1, 10, 9)
    assert next_due(Rule(cron="0 9 * * *", tz="Asia/Tokyo"), after) == utc(2027, 1, 11, 0)


def test_intervals_count_from_the_anchor() -> None:
    anchor = utc(2027, 1, 1, 12, 0, 0)
    rule = Rule(every_s=parse_every("30m"), anchor=anchor)
    assert next_due(rule, anchor) == anchor + timedelta(minutes=30)
    assert next_due(rule, anchor + timedelta(minutes=31)) == anchor + timedelta(minutes=60)
    assert next_due(rule, anchor - timedelta(hours=1)) == anchor
    assert parse_every("2s") == 2 and parse_every("1.5h") == 5400 and parse_every("1d") == 86400
    assert Rule(every_s=1800, anchor=anchor).describe() == "every 30m"


def test_periods_missed_while_no_worker_ran_fire_once_or_are_skipped() -> None:
    rule = Rule(cron="0 9 * * *", tz="Europe/Paris")
    due_at = utc(2027, 1, 10, 8)  # 09:00 Paris
    now = due_at + timedelta(days=2, hours=3)  # down for two days: three due times passed
    once = due(rule, due_at, now, "once")
    skip = due(rule, due_at, now, "skip")
    assert once is not None and skip is not None
    assert (once.fire, once.periods) == (True, 3)
    assert (skip.fire, skip.missed) == (False, 3)
    assert once.next_at == skip.next_at == utc(2027, 1, 13, 8)
    assert due(rule, due_at, due_at - timedelta(seconds=1), "once") is None  # not due yet


def test_an_on_time_due_fires_in_both_modes_and_older_ones_coalesce() -> None:
    anchor = utc(2027, 1, 1)
    rule = Rule(every_s=120, anchor=anchor)
    due_at = anchor + timedelta(seconds=120)
    now = due_at + timedelta(minutes=10, seconds=5)  # five more periods, the latest 5 s ago
    for mode in ("once", "skip"):
        decision = due(rule, due_at, now, mode)  # type: ignore[arg-type]
        assert decision is not None and decision.fire and decision.periods == 6
        assert decision.late_s == 5 and decision.next_at == due_at + timedelta(minutes=12)
    late = due(rule, due_at, due_at + timedelta(seconds=MISFIRE_S + 1), "skip")
    assert late is not None and not late.fire


def test_the_spend_caps_day_starts_at_midnight_in_the_rules_zone() -> None:
    rule = Rule(cron="0 9 * * *", tz="Europe/Paris")
    assert day_start(rule, utc(2027, 7, 1, 22, 30)) == utc(2027, 7, 1, 22)  # 00:30 on the 2nd
    assert day_start(rule, utc(2027, 7, 1, 12)) == utc(2027, 6, 30, 22)
    assert day_start(Rule(cron="0 9 * * *"), utc(2027, 7, 1, 12)) == utc(2027, 7, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "61 * * * *"}, "--cron: '61 \\* \\* \\* \\*' is not a five-field cron"),
        ({"cron": "* * * * * *"}, "not a five-field cron"),
        ({"cron": "0 9 * * *", "every_s": 60}, "exactly one of --cron or --every"),
        ({}, "exactly one of --cron or --every"),
    ],
)
def test_bad_rules_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rule(**kwargs)  # type: ignore[arg-type]


def test_bad_zones_and_intervals_say_what_to_give() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'; use an IANA"):
        Rule(cron="0 9 * * *", tz="Mars/Olympus")
    with pytest.raises(ScheduleError, match="'soon' is not a duration such as 2s"):
        parse_every("soon")
    with pytest.raises(ScheduleError, match="shorter than one second"):
        parse_every("0.5s")
