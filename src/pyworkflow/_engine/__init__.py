"""The replay engine: pure, backend-free, private.

Layering (an arrow means "may import"; nothing imports upwards):

    client, executors  ->  _engine.driver  ->  _engine.activation  ->  _engine.replay
                                          ->  _engine.inflight    ->  _engine.loop
                                                                  ->  _engine.attempts
                        all of them        ->  _engine.new_events, _engine.context,
                                               _engine.event_kinds, _engine.signals,
                                               _engine.failures,
                                               _engine.clock, _engine.tracing, exceptions,
                                               events, serialization, logging
    testing (replay checker)  ->  _engine.activation, _engine.replay   (replays, never drives)

The engine imports neither SQL nor Celery (DESIGN §2.8): storage reaches it only through
``pyworkflow.storage.protocol``. ``activation`` is pure (no I/O): it turns logged events and new
outcomes into the events to append and the commands to launch. ``driver`` performs one run's
turns against storage; ``inflight`` holds the steps and timers a run waits on; ``new_events``
builds every event the engine writes; ``tracing`` is the seam where ``pyworkflow.tracing``
(OpenTelemetry) plugs in, which the engine never imports. Executors only decide where and when
a driver runs.
"""
