"""The replay engine: pure, backend-free, private.

Layering (an arrow means "may import"; nothing imports upwards):

    client, executors  ->  _engine.driver  ->  _engine.activation  ->  _engine.replay
                                                                   ->  _engine.loop
                        all of them        ->  _engine.context, _engine.events, _engine.signals,
                                               _engine.clock, exceptions, serialization

The engine imports neither SQL nor Celery (DESIGN §2.8): storage reaches it only through
``pyworkflow.storage.protocol``. ``activation`` is pure (no I/O): it turns logged events and new
outcomes into the events to append and the commands to launch. ``driver`` performs one run's
turns against storage and runs its local steps; executors only decide where and when a driver
runs.
"""
