"""Hook tokens: derived with a key that never lives in the database."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pyworkflow._engine import hook_tokens
from pyworkflow.exceptions import ConfigurationError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYWORKFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(hook_tokens, "_installation_key", None)
    return tmp_path / "home"


def test_without_a_secret_key_the_machine_key_is_made_once_for_its_owner_only(home: Path) -> None:
    token = hook_tokens.derive_token(None, "run_1", "hook:approval#1", "00ff")
    key_file = home / "hook-token.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert token.startswith("hk_")
    assert len(token) == 46
    # The same key serves every later derivation: a replay gets the same token.
    assert hook_tokens.derive_token(None, "run_1", "hook:approval#1", "00ff") == token


def test_the_token_depends_on_the_key_not_only_on_what_the_database_holds(home: Path) -> None:
    logged = ("run_1", "hook:approval#1", "00ff")  # what HOOK_CREATED records
    machine = hook_tokens.derive_token(None, *logged)
    configured = hook_tokens.derive_token(b"a secret key", *logged)
    assert machine != configured
    (home / "hook-token.key").write_text("11" * 32)  # another machine's key
    hook_tokens._installation_key = None
    assert hook_tokens.derive_token(None, *logged) != machine


def test_a_configured_secret_key_makes_no_key_file(home: Path) -> None:
    hook_tokens.derive_token(b"a secret key", "run_1", "hook:x#1", "00")
    assert not (home / "hook-token.key").exists()


def test_an_unusable_home_is_a_configuration_error_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PYWORKFLOW_HOME", str(blocker))
    monkeypatch.setattr(hook_tokens, "_installation_key", None)
    with pytest.raises(ConfigurationError, match="PYWORKFLOW_SECRET_KEY"):
        hook_tokens.derive_token(None, "run_1", "hook:x#1", "00")


def test_the_stored_hash_finds_its_token_and_no_other() -> None:
    # resume_hook looks a hook up by the hash of the token it is given.
    token = hook_tokens.derive_token(b"key", "run_1", "hook:x#1", "00")
    other = hook_tokens.derive_token(b"key", "run_1", "hook:x#1", "01")
    assert hook_tokens.hash_token(token) == hook_tokens.hash_token(token)
    assert hook_tokens.hash_token(token) != hook_tokens.hash_token(other)
