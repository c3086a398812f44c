"""OpenTelemetry spans: one per run turn and per step attempt, read back from the SDK's exporter."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import pyworkflow
from pyworkflow import FatalError, step, tracing, workflow
from pyworkflow import config as pw_config
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.storage.protocol import Storage

ATTEMPTS: dict[str, int] = {}
CURRENT_IN_STEP: dict[str, int] = {}


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    tracing.uninstrument()
    provider.shutdown()


@pytest.fixture
def spans(provider: tuple[TracerProvider, InMemorySpanExporter]) -> InMemorySpanExporter:
    """Spans of this process go to an in-memory exporter while the test runs."""
    tracing.instrument(tracer_provider=provider[0])
    return provider[1]


@step(name="otel_fetch")
async def fetch(order: str) -> str:
    return f"fetched {order}"


@step(name="otel_price")
async def price(order: str) -> int:
    # What a span the user starts here would take as its parent.
    CURRENT_IN_STEP[order] = trace.get_current_span().get_span_context().span_id
    return 42


@step(name="otel_charge", max_retries=2, retry_delay=0.01)
async def charge(order: str) -> str:
    ATTEMPTS[order] = ATTEMPTS.get(order, 0) + 1
    if ATTEMPTS[order] == 1:
        raise ConnectionError(f"gateway timed out for {order}")
    return f"charged {order}"


@step(name="otel_declined", max_retries=3, retry_delay=0.01)
async def declined(order: str) -> None:
    raise FatalError(f"card declined for {order}")


@workflow(name="otel_order")
async def order_flow(order: str) -> list[object]:
    first = await fetch(order)
    # Two steps at once: their attempts run in tasks of their own, not in the driver's task.
    rest = await asyncio.gather(price(order), charge(order))
    return [first, *rest]


@workflow(name="otel_declined_order")
async def declined_flow(order: str) -> None:
    await declined(order)


def _named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_a_run_of_three_steps_one_retried(
    pw_memory: Storage, spans: InMemorySpanExporter
) -> None:
    order = f"o-{uuid.uuid4().hex[:6]}"
    run_id = await pyworkflow.start(order_flow, order)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == [
        f"fetched {order}",
        42,
        f"charged {order}",
    ]

    finished = spans.get_finished_spans()
    (run_span,) = _named(finished, "pyworkflow.run")
    assert run_span.attributes is not None
    assert dict(run_span.attributes) == {
        "pyworkflow.run_id": run_id,
        "pyworkflow.workflow": "otel_order",
        "pyworkflow.status": "completed",
    }
    assert run_span.status.status_code is StatusCode.UNSET

    steps = _named(finished, "pyworkflow.step")
    attempts = sorted(
        (str(_attrs(s)["pyworkflow.step_id"]), _attrs(s)["pyworkflow.attempt"]) for s in steps
    )
    assert attempts == [
        ("otel_charge#1", 1),
        ("otel_charge#1", 2),
        ("otel_fetch#1", 1),
        ("otel_price#1", 1),
    ]
    run_context = run_span.get_span_context()
    for span in steps:
        attrs = _attrs(span)
        assert span.get_span_context().trace_id == run_context.trace_id
        assert _parent_id(span) == run_context.span_id, attrs["pyworkflow.step_id"]
        assert attrs["pyworkflow.run_id"] == run_id
        assert attrs["pyworkflow.workflow"] == "otel_order"
        assert f"{attrs['pyworkflow.step_name']}#1" == attrs["pyworkflow.step_id"]

    failed, retried = sorted(
        (s for s in steps if _attrs(s)["pyworkflow.step_id"] == "otel_charge#1"),
        key=lambda s: str(_attrs(s)["pyworkflow.attempt"]),
    )
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["pyworkflow.retry_in"] == pytest.approx(0.01)
    (event,) = failed.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ConnectionError"
    assert event.attributes["exception.message"] == f"gateway timed out for {order}"
    assert retried.status.status_code is StatusCode.UNSET
    assert not retried.events

    # Inside the step its attempt's span is current: spans the user starts there nest under it.
    (price_span,) = (s for s in steps if _attrs(s)["pyworkflow.step_id"] == "otel_price#1")
    assert CURRENT_IN_STEP[order] == price_span.get_span_context().span_id


async def test_a_failing_step_marks_its_span_and_the_run_as_errors(
    pw_memory: Storage, spans: InMemorySpanExporter
) -> None:
    order = f"o-{uuid.uuid4().hex[:6]}"
    with pytest.raises(pyworkflow.WorkflowFailedError):
        await pyworkflow.run(declined_flow, order)

    finished = spans.get_finished_spans()
    (step_span,) = _named(finished, "pyworkflow.step")
    assert step_span.status.status_code is StatusCode.ERROR
    assert step_span.status.description == f"FatalError: card declined for {order}"
    assert step_span.attributes is not None
    assert "pyworkflow.retry_in" not in step_span.attributes  # fatal: no other attempt
    assert [e.name for e in step_span.events] == ["exception"]

    (run_span,) = _named(finished, "pyworkflow.run")
    assert run_span.attributes is not None
    assert run_span.attributes["pyworkflow.status"] == "failed"
    assert run_span.status.status_code is StatusCode.ERROR
    (event,) = run_span.events
    assert event.attributes is not None
    assert str(event.attributes["exception.type"]).endswith("FatalError")
    assert f"card declined for {order}" in str(event.attributes["exception.message"])


async def test_a_run_started_under_a_span_is_its_child(
    pw_memory: Storage,
    spans: InMemorySpanExporter,
    provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    order = f"o-{uuid.uuid4().hex[:6]}"
    with provider[0].get_tracer("otel-test").start_as_current_span("http.request") as request:
        await pyworkflow.run(order_flow, order)
    (run_span,) = _named(spans.get_finished_spans(), "pyworkflow.run")
    assert _parent_id(run_span) == request.get_span_context().span_id


async def test_without_tracing_there_are_no_spans_and_no_errors(
    pw_memory: Storage, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    order = f"o-{uuid.uuid4().hex[:6]}"
    assert not tracing.is_instrumented()
    result = await pyworkflow.run(order_flow, order)
    assert result[0] == f"fetched {order}"
    assert provider[1].get_finished_spans() == ()
    assert CURRENT_IN_STEP[order] == trace.INVALID_SPAN.get_span_context().span_id


async def test_a_run_that_sleeps_past_the_horizon_has_a_span_per_turn(
    pw_memory: Storage,
    spans: InMemorySpanExporter,
    provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    pyworkflow.configure(horizon_seconds=0.05)

    @workflow(name=f"otel_nap_{uuid.uuid4().hex[:6]}")
    async def nap(order: str) -> str:
        first = await fetch(order)
        await pyworkflow.sleep(0.2)
        return first

    with provider[0].get_tracer("otel-test").start_as_current_span("http.request") as request:
        assert await pyworkflow.run(nap, "o-nap") == "fetched o-nap"
    first, second = _named(spans.get_finished_spans(), "pyworkflow.run")
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["pyworkflow.status"] == "suspended"
    assert second.attributes["pyworkflow.status"] == "completed"
    # The turn the caller started is under the caller's span; the one a worker claimed after
    # the sleep is not, although the worker's loop was started inside that span.
    assert _parent_id(first) == request.get_span_context().span_id
    assert second.parent is None


def test_configure_tracing_switches_spans_on_and_off(
    monkeypatch: pytest.MonkeyPatch, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    monkeypatch.setattr(pw_config, "_settings", pw_config._settings)
    pyworkflow.configure(tracing=True)
    assert tracing.is_instrumented()
    pyworkflow.configure(tracing=False)
    assert not tracing.is_instrumented()


async def test_pyworkflow_tracing_env_turns_spans_on_at_first_use(
    pw_memory: Storage,
    monkeypatch: pytest.MonkeyPatch,
    provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    monkeypatch.setenv("PYWORKFLOW_TRACING", "1")
    assert not tracing.is_instrumented()
    await pyworkflow.run(order_flow, f"o-{uuid.uuid4().hex[:6]}")
    assert tracing.is_instrumented()


_WITHOUT_OTEL = textwrap.dedent(
    """
    import asyncio, importlib.abc, sys

    class NoOpenTelemetry(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, NoOpenTelemetry())

    import pyworkflow
    from pyworkflow import step, workflow

    @step()
    async def hello(name: str) -> str:
        return "hello " + name

    @workflow()
    async def greet(name: str) -> str:
        return await hello(name)

    pyworkflow.configure(storage="memory://")
    print(asyncio.run(pyworkflow.run(greet, "otel-less")))
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
    try:
        pyworkflow.configure(tracing=True)
    except pyworkflow.PyWorkflowError as exc:
        print(type(exc).__name__, exc)
    """
)


@pytest.mark.slow  # a fresh interpreter
def test_without_opentelemetry_installed_nothing_changes() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OTEL],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    greeting, imported, refused = done.stdout.splitlines()
    assert greeting == "hello otel-less"
    assert imported == "[]"
    assert refused.startswith(ConfigurationError.__name__)
    assert "pip install 'pyworkflow-durable[otel]'" in refused
