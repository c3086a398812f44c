"""Stream workflows: reactive stream steps on a named channel, built on the engine's primitives.

The public face is ``pyworkflow.streams``. Here, by concept:

- ``definitions``: ``@stream_workflow`` and ``@stream_step``, and where they are found by name;
- ``signals``: the ``Signal`` a stream step sees, and schema validation of payloads;
- ``step_state``: what a stream step's execution decides (``set_result``, ``terminate`` ...);
- ``emitting``: ``emit`` and ``schedule_signal``, from workflow code, a step or outside;
- ``driver``: the durable workflow that drives one stream run (its batches, its waits);
- ``running``: ``run_stream_workflow`` and ``StreamWorkflowResult``.

The storage rules (numbering, batches taken once, the waiter woken) are in
``pyworkflow.storage.streams``; ``docs/concepts/streams.md`` tells the whole story.
"""
