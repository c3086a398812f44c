"""Stream errors: a stream definition refused, a stream run unknown or ended, a signal refused."""

from __future__ import annotations

from pyworkflow._errors.base import DefinitionError, InputError

__all__ = [
    "InvalidSignalPayloadError",
    "NotInStreamStepError",
    "StreamDefinitionError",
    "StreamRunConflictError",
    "StreamRunEndedError",
    "StreamRunNotFoundError",
]


class StreamDefinitionError(DefinitionError):
    """``@stream_workflow`` or ``@stream_step`` refused a function or an option (at import)."""


class StreamRunNotFoundError(InputError):
    """No stream run with this ``stream_run_id`` exists (yet): a signal has nowhere to go.

    Attributes:
        stream_run_id: the id as given.
    """

    def __init__(self, stream_run_id: str) -> None:
        self.stream_run_id = stream_run_id
        super().__init__(
            f"no stream run with id {stream_run_id!r}; start it with run_stream_workflow() "
            "before emitting to it"
        )


class StreamRunEndedError(InputError):
    """A signal for a stream run that has ended (completed, cancelled or failed): refused.

    Nothing is written: an ended stream run delivers nothing more, so a signal stored there
    would be lost without a word.

    Attributes:
        stream_run_id: the id as given.
        status: how the stream run ended: ``completed``, ``cancelled`` or ``failed``.
    """

    def __init__(self, stream_run_id: str, status: str) -> None:
        self.stream_run_id, self.status = stream_run_id, status
        super().__init__(
            f"stream run {stream_run_id!r} has ended ({status}); it takes no more signals"
        )


class StreamRunConflictError(InputError):
    """A ``stream_run_id`` already names a stream run of another stream or another driver.

    Attributes:
        stream_run_id: the id as given.
        detail: what holds it.
    """

    def __init__(self, stream_run_id: str, detail: str) -> None:
        self.stream_run_id, self.detail = stream_run_id, detail
        super().__init__(f"stream run {stream_run_id!r} is taken: {detail}")


class InvalidSignalPayloadError(InputError):
    """A signal's payload does not fit the schema a stream step bound to its type.

    Raised by ``emit`` when the schema is known in the emitting process; otherwise the
    delivery is recorded as refused and the step is not run for it.

    Attributes:
        stream: the stream (channel) name.
        signal_type: the signal's type.
        field: the offending field (``"<payload>"`` for the whole value).
        detail: what is wrong with it.
    """

    def __init__(self, stream: str, signal_type: str, field: str, detail: str) -> None:
        self.stream, self.signal_type, self.field, self.detail = stream, signal_type, field, detail
        super().__init__(
            f"payload of signal {signal_type!r} on stream {stream!r} refused: {field}: {detail}"
        )


class NotInStreamStepError(InputError):
    """A stream step primitive (``get_current_signal``, ``set_result`` ...) called elsewhere.

    Attributes:
        what: the call, e.g. ``"set_result()"``.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} can only be called while a @stream_step runs")
