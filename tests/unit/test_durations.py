import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyworkflow.durations import MAX_DURATION_SECONDS, parse_duration, resolve_wake_time
from pyworkflow.exceptions import InputError, InvalidDurationError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("1h30m", 5400.0),
        ("1d2h", 93600.0),
        ("500ms", 0.5),
        ("1m500ms", 60.5),
        ("1w1d1h1m1s1ms", 604800 + 86400 + 3600 + 60 + 1 + 0.001),
        ("  10s\n", 10.0),
        ("1h 30m", 5400.0),
        ("1.5h", 5400.0),
        ("0s", 0.0),
        (0, 0.0),
        (0.0, 0.0),
        (42, 42.0),
        (2.5, 2.5),
        (timedelta(minutes=2), 120.0),
        (timedelta(0), 0.0),
    ],
)
def test_parse_duration_accepts(value: object, seconds: float) -> None:
    result = parse_duration(value)  # type: ignore[arg-type]
    assert type(result) is float
    assert result == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("5 parsecs", "units"),
        ("", "empty"),
        ("   ", "empty"),
        ("-1s", "negative"),
        ("30", "no unit"),
        ("1m1h", "largest first"),
        ("1h1h", "largest first"),
        ("5M", "units"),
        ("1e3s", "units"),
        ("s", "units"),
        (-1, "negative"),
        (-0.5, "negative"),
        (float("nan"), "NaN"),
        (float("inf"), "not finite"),
        (float("-inf"), "not finite"),
        (10**400, "too large"),
        (True, "bool"),
        (False, "bool"),
        (None, "NoneType"),
        ([1], "list"),
        (b"1s", "bytes"),
        (timedelta(seconds=-1), "negative"),
        (datetime.now(UTC), "datetime"),
    ],
)
def test_parse_duration_rejects_and_quotes_the_value(value: object, reason: str) -> None:
    with pytest.raises(InvalidDurationError) as info:
        parse_duration(value)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(repr(value))
    assert reason in message
    assert info.value.value is value
    assert isinstance(info.value, InputError)


def test_parse_duration_quotes_the_string_value() -> None:
    with pytest.raises(InvalidDurationError, match=r"^'5 parsecs' is not a duration"):
        parse_duration("5 parsecs")


def test_parse_duration_huge_string_is_refused() -> None:
    with pytest.raises(InvalidDurationError, match="too large"):
        parse_duration("9" * 400 + "w")


@given(
    st.integers(0, 36_000),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 999),
)
def test_parse_duration_compound_equals_sum(d: int, h: int, m: int, s: int, ms: int) -> None:
    text = f"{d}d{h}h{m}m{s}s{ms}ms"
    expected = d * 86400 + h * 3600 + m * 60 + s + ms / 1000
    assert parse_duration(text) == pytest.approx(expected)
    assert parse_duration(timedelta(seconds=expected)) == pytest.approx(expected)


@given(st.floats(min_value=0, max_value=MAX_DURATION_SECONDS))
def test_parse_duration_non_negative_numbers_pass_through(value: float) -> None:
    assert parse_duration(value) == value


@pytest.mark.parametrize(
    "value",
    [
        10**20,
        1e20,
        MAX_DURATION_SECONDS + 1,
        "1000000w",
        "5300w",
        "40000d",
        timedelta(days=36526),
        timedelta.max,
    ],
)
def test_parse_duration_refuses_more_than_a_hundred_years(value: object) -> None:
    with pytest.raises(InvalidDurationError) as info:
        parse_duration(value)  # type: ignore[arg-type]
    assert str(info.value).startswith(repr(value))
    assert "100 years" in str(info.value)
    assert info.value.value is value


def test_parse_duration_accepts_a_hundred_years() -> None:
    assert parse_duration(MAX_DURATION_SECONDS) == MAX_DURATION_SECONDS
    assert parse_duration("5200w") == 5200 * 604800.0
    assert parse_duration(timedelta(days=36525)) == MAX_DURATION_SECONDS


def test_every_accepted_duration_from_now_can_be_shown_as_a_datetime() -> None:
    now = datetime(2500, 1, 1, tzinfo=UTC).timestamp()
    wake = resolve_wake_time(MAX_DURATION_SECONDS, now)
    assert datetime.fromtimestamp(wake, UTC).year == 2600


@given(st.text(max_size=12))
def test_parse_duration_never_raises_anything_else(text: str) -> None:
    try:
        result = parse_duration(text)
    except InvalidDurationError as exc:
        message = str(exc)
    else:
        assert math.isfinite(result)
        assert result >= 0
        return
    assert message.startswith(repr(text))


def test_resolve_wake_time_duration_is_relative_to_now() -> None:
    assert resolve_wake_time("1m", now=1000.0) == 1060.0
    assert resolve_wake_time(5, now=1000.0) == 1005.0
    assert resolve_wake_time(timedelta(hours=1), now=0.0) == 3600.0


def test_resolve_wake_time_aware_datetime_is_absolute() -> None:
    when = datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert resolve_wake_time(when, now=0.0) == when.timestamp()
    assert resolve_wake_time(when, now=when.timestamp() + 10**6) == when.timestamp()


def test_resolve_wake_time_past_datetime_is_returned_as_is() -> None:
    past = datetime(2000, 1, 1, tzinfo=UTC)
    assert resolve_wake_time(past, now=2e9) == past.timestamp()


def test_resolve_wake_time_refuses_naive_datetime() -> None:
    naive = datetime(2030, 1, 1, 12)
    with pytest.raises(InvalidDurationError, match=r"naive.*tzinfo") as info:
        resolve_wake_time(naive, now=0.0)
    assert str(info.value).startswith(repr(naive))


@pytest.mark.parametrize(
    "when",
    [
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
        datetime(9999, 1, 1, tzinfo=UTC),
        datetime(2200, 1, 1, tzinfo=UTC),
    ],
)
def test_resolve_wake_time_refuses_a_datetime_over_a_hundred_years_ahead(when: datetime) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    with pytest.raises(InvalidDurationError) as info:
        resolve_wake_time(when, now=now)
    assert str(info.value).startswith(repr(when))
    assert "100 years" in str(info.value)


def test_resolve_wake_time_refuses_a_datetime_no_datetime_can_show() -> None:
    before_year_one = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    with pytest.raises(InvalidDurationError, match="year 1") as info:
        resolve_wake_time(before_year_one, now=0.0)
    assert str(info.value).startswith(repr(before_year_one))


def test_resolve_wake_time_accepts_a_datetime_a_century_ahead() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    when = datetime(2124, 12, 31, tzinfo=UTC)
    assert resolve_wake_time(when, now=now) == when.timestamp()


def test_resolve_wake_time_refuses_bad_duration() -> None:
    with pytest.raises(InvalidDurationError, match="'5 parsecs'"):
        resolve_wake_time("5 parsecs", now=0.0)


def test_all_is_sorted_and_documented() -> None:
    from pyworkflow import durations

    assert durations.__all__ == sorted(durations.__all__)
    for name in durations.__all__:
        assert getattr(durations, name).__doc__
