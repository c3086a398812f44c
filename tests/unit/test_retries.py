from datetime import timedelta

import pytest

from pyworkflow.exceptions import StepDefinitionError
from pyworkflow.retries import EXPONENTIAL_CAP_SECONDS, RetryPolicy


def test_defaults() -> None:
    policy = RetryPolicy()
    assert policy.max_retries == 3
    assert policy.retry_delay == "exponential"
    assert policy.max_attempts == 4


def test_exponential_doubles_and_caps() -> None:
    policy = RetryPolicy.from_options(20, "exponential", where="app.step")
    delays = [policy.delay_for(n) for n in range(1, 13)]
    assert delays[:9] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
    assert delays[9:] == [EXPONENTIAL_CAP_SECONDS] * 3
    assert EXPONENTIAL_CAP_SECONDS == 300.0
    assert policy.delay_for(10**6) == EXPONENTIAL_CAP_SECONDS


@pytest.mark.parametrize(
    ("retry_delay", "seconds"),
    [("30s", 30.0), (5, 5.0), (0.5, 0.5), (timedelta(minutes=1), 60.0), ("0s", 0.0)],
)
def test_fixed_delay(retry_delay: object, seconds: float) -> None:
    policy = RetryPolicy.from_options(3, retry_delay, where="app.step")
    assert policy.retry_delay == seconds
    assert [policy.delay_for(n) for n in (1, 2, 5)] == [seconds] * 3


@pytest.mark.parametrize("retry_delay", [["1s", "10s", "1m"], ("1s", 10, timedelta(minutes=1))])
def test_list_delay_last_repeats(retry_delay: object) -> None:
    policy = RetryPolicy.from_options(5, retry_delay, where="app.step")
    assert policy.retry_delay == (1.0, 10.0, 60.0)
    assert [policy.delay_for(n) for n in range(1, 6)] == [1.0, 10.0, 60.0, 60.0, 60.0]


def test_allows_retry_after() -> None:
    policy = RetryPolicy.from_options(2, "exponential", where="app.step")
    assert policy.max_attempts == 3
    assert policy.allows_retry_after(1)
    assert policy.allows_retry_after(2)
    assert not policy.allows_retry_after(3)
    once = RetryPolicy.from_options(0, "1s", where="app.step")
    assert once.max_attempts == 1
    assert not once.allows_retry_after(1)


def test_delay_for_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="failed_attempt"):
        RetryPolicy().delay_for(0)


@pytest.mark.parametrize("max_retries", [-1, True, 1.5, "3", None])
def test_bad_max_retries_names_step_and_value(max_retries: object) -> None:
    with pytest.raises(StepDefinitionError) as info:
        RetryPolicy.from_options(max_retries, "exponential", where="app.send_email")  # type: ignore[arg-type]
    message = str(info.value)
    assert "'app.send_email'" in message
    assert f"max_retries={max_retries!r}" in message


@pytest.mark.parametrize(
    "retry_delay", ["sometimes", "5 parsecs", "-1s", -1, float("nan"), [], (), None, True, {}]
)
def test_bad_retry_delay_names_step_and_value(retry_delay: object) -> None:
    with pytest.raises(StepDefinitionError) as info:
        RetryPolicy.from_options(3, retry_delay, where="app.send_email")
    message = str(info.value)
    assert "'app.send_email'" in message
    assert f"retry_delay={retry_delay!r}" in message


def test_bad_item_in_retry_delay_list_is_named() -> None:
    with pytest.raises(StepDefinitionError, match=r"item 'soon' is not a duration"):
        RetryPolicy.from_options(3, ["1s", "soon"], where="app.step")


def test_direct_construction_normalizes_and_validates() -> None:
    assert RetryPolicy(2, ["1s", 5]).retry_delay == (1.0, 5.0)  # type: ignore[arg-type]
    assert RetryPolicy(2, "1m").retry_delay == 60.0  # type: ignore[arg-type]
    with pytest.raises(StepDefinitionError):
        RetryPolicy(-1)
    with pytest.raises(StepDefinitionError):
        RetryPolicy(1, "never")  # type: ignore[arg-type]


def test_policy_is_frozen_and_hashable() -> None:
    policy = RetryPolicy.from_options(1, ["1s"], where="app.step")
    with pytest.raises(AttributeError):
        policy.max_retries = 5  # type: ignore[misc]
    assert hash(policy) == hash(RetryPolicy.from_options(1, ("1s",), where="app.step"))
    assert policy == RetryPolicy(1, (1.0,))
