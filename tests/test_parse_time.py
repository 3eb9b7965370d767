"""Timestamp conversion against the standard library, across zones, DST and the per-second cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.parse import make_parser
from logpipe.parse.timefmt import TimeConverter

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "America/St_Johns"]
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31))


def _utc(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@settings(max_examples=150, deadline=None)
@given(st.lists(moments, min_size=1, max_size=20), st.sampled_from(ZONES))
def test_asctime_in_zone_matches_zoneinfo(naive: list[datetime], tz: str) -> None:
    # one converter for the whole list: the per-second cache must never leak between values
    parse = make_parser("python_short", tz=tz)
    lines = [f"{d:%Y-%m-%d %H:%M:%S},{d.microsecond // 1000:03d} - INFO - x" for d in naive]
    got = [r["@timestamp"] for r in parse(lines)]
    # fold=0: the text carries no fold, so a time in a DST gap or overlap reads as its first offset
    want = [_utc(d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=ZoneInfo(tz), fold=0)) for d in naive]
    assert got == want


@settings(max_examples=150, deadline=None)
@given(moments, st.integers(-14 * 60, 14 * 60), st.sampled_from(["T", " "]), st.booleans())
def test_iso_with_offset_matches_stdlib(moment: datetime, offset_min: int, sep: str, colon: bool) -> None:
    off = timezone(timedelta(minutes=offset_min))
    aware = moment.replace(tzinfo=off)
    sign = "-" if offset_min < 0 else "+"
    hh, mm = divmod(abs(offset_min), 60)
    text = aware.strftime(f"%Y-%m-%d{sep}%H:%M:%S.%f") + f"{sign}{hh:02d}{':' if colon else ''}{mm:02d}"
    assert TimeConverter("Asia/Tokyo").iso(text) == _utc(aware)


@settings(max_examples=200, deadline=None)
@given(moments, st.integers(-12 * 60, 14 * 60).map(lambda m: m - m % 15))
def test_clf_matches_stdlib(moment: datetime, offset_min: int) -> None:
    aware = moment.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=offset_min)))
    assert TimeConverter().clf(aware.strftime("%d/%b/%Y:%H:%M:%S %z")) == _utc(aware)


def test_epoch_units_are_guessed_by_magnitude() -> None:
    conv = TimeConverter()
    assert conv.epoch(1_764_000_000) == conv.epoch(1_764_000_000_000) == conv.epoch(1_764_000_000_000_000)
    assert conv.epoch(0) == "1970-01-01T00:00:00.000000Z"
