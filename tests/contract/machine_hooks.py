"""Rules of the storage state machine for hooks: a run suspended on one, delivered, expired.

A mixin of ``test_state_machine.StorageMachine``, kept in a file of its own so each stays short,
as ``machine_dispatch.py`` is. A lease holder's turn suspends its run on a new hook; outside
callers deliver payloads and the lease holder expires hooks; after every step the stored hooks
are compared with the machine's (``self.hooks``: token -> the hook as expected). The rules read
and update the machine's run model and clock as its own rules do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, invariant, precondition, rule
from storage_calls import new_hook, token_hash

from pyworkflow.events import EventType, HookStatus, RunStatus
from pyworkflow.exceptions import HookAlreadyReceivedError, HookExpiredError, HookNotFoundError
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import AppendWrite, HookRecord, NewEvent

_T = TypeVar("_T")

HOOKS = Bundle("hooks")  # the machine's bundle of hook tokens (bundles are found by name)


class HookRules:
    """Hook rules and the hooks' invariant; the machine provides the attributes below."""

    storage: Storage
    now: float
    model: dict[str, Any]
    hooks: dict[str, HookRecord]  # token -> the hook as the model expects it

    if TYPE_CHECKING:

        def call(self, coro: Coroutine[Any, Any, _T]) -> _T:
            """Run ``coro`` on the machine's event loop."""

    def held(self) -> list[str]:
        return sorted(r.run_id for r in self.model.values() if r.lease_owner is not None)

    @precondition(held)
    @rule(target=HOOKS, data=st.data(), timeout=st.sampled_from([None, 1.0, 7.0]))
    def wait_on_hook(self, data: st.DataObject, timeout: float | None) -> str:
        """The lease holder's turn that suspends its run on a new hook."""
        run = self.model[data.draw(st.sampled_from(self.held()), label="run_id")]
        run_id = run.run_id
        token = f"{run_id}#{run.last_seq + 1}"  # unique: the turn moves the seq on
        hook = new_hook(token, expires_at=None if timeout is None else self.now + timeout)
        created = NewEvent(EventType.HOOK_CREATED, {"v": 1, "hook_id": hook.hook_id})
        write = AppendWrite(
            run_id=run_id,
            owner=run.lease_owner,
            expected_seq=run.last_seq,
            events=[created],
            now=self.now,
            status=RunStatus.SUSPENDED,
            signals_seen=run.signal_seq,
            hooks=[hook],
        )
        appended = self.call(self.storage.append(write))
        run.last_seq += 1
        run.events.append((run.last_seq, created.type, created.payload))
        run.status = RunStatus.SUSPENDED
        run.wake_at, run.lease_owner, run.lease_expires_at = None, None, None
        assert appended.last_seq == run.last_seq
        self.hooks[token] = HookRecord(
            token_hash=hook.token_hash,
            run_id=run_id,
            hook_id=hook.hook_id,
            name=hook.name,
            status=HookStatus.WAITING,
            payload=None,
            payload_type=hook.payload_type,
            created_at=self.now,
            expires_at=hook.expires_at,
            received_at=None,
        )
        return token

    @rule(token=HOOKS, n=st.integers(0, 9))
    def deliver_hook(self, token: str, n: int) -> None:
        hook = self.hooks[token]
        deliver = self.storage.deliver_hook(token_hash(token), {"n": n}, now=self.now)
        if self.model[hook.run_id].status.is_terminal:
            with pytest.raises(HookNotFoundError):
                self.call(deliver)
        elif hook.status is HookStatus.RECEIVED:
            with pytest.raises(HookAlreadyReceivedError):
                self.call(deliver)
        elif hook.status is HookStatus.EXPIRED or self.now >= (hook.expires_at or float("inf")):
            with pytest.raises(HookExpiredError):
                self.call(deliver)
        else:
            received = self.call(deliver)
            hook = self.hooks[token] = dataclasses.replace(
                hook, status=HookStatus.RECEIVED, payload={"n": n}, received_at=self.now
            )
            assert received == hook
            run = self.model[hook.run_id]
            run.signal_seq += 1
            run.wake_at = self.now

    @rule(token=HOOKS)
    def expire_hook(self, token: str) -> None:
        hook = self.hooks[token]
        stands = self.call(self.storage.expire_hook(hook.run_id, hook.hook_id, now=self.now))
        if hook.status is HookStatus.WAITING:
            hook = self.hooks[token] = dataclasses.replace(hook, status=HookStatus.EXPIRED)
        assert stands == hook

    @invariant()
    def hooks_agree_with_model(self) -> None:
        for token, hook in self.hooks.items():
            assert self.call(self.storage.get_hook(token_hash(token))) == hook
        listed = self.call(self.storage.list_hooks(limit=1000))
        assert sorted(h.token_hash for h in listed) == sorted(
            h.token_hash for h in self.hooks.values()
        )
        created = [h.created_at for h in listed]
        assert created == sorted(created, reverse=True), "newest first"
