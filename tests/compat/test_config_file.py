"""pyworkflow.config.yaml: call > configure() > file > environment > default; errors name keys."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pyworkflow import ConfigurationError, config, config_file
from workers import cli, subprocess_env

THEIR_ENV = (
    "PYWORKFLOW_MODULE", "PYWORKFLOW_DISCOVER", "PYWORKFLOW_RUNTIME", "PYWORKFLOW_STORAGE_BACKEND",
    "PYWORKFLOW_STORAGE_PATH", "PYWORKFLOW_CELERY_BROKER", "PYWORKFLOW_BROKER",
    "CELERY_BROKER_URL",
)  # fmt: skip


@pytest.fixture
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "_settings", config._Settings())
    for name in (*THEIR_ENV, "PYWORKFLOW_STORAGE", "PYWORKFLOW_EXECUTOR", "PYWORKFLOW_MODULES"):
        monkeypatch.delenv(name, raising=False)
    config_file.forget()
    return tmp_path


def write(project: Path, text: str) -> None:
    (project / "pyworkflow.config.yaml").write_text(text)
    config_file.forget()


def test_priority_of_the_sources(in_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.storage_url() == config.DEFAULT_STORAGE  # nothing anywhere
    monkeypatch.setenv("PYWORKFLOW_STORAGE", "sqlite:///from-env.db")
    assert config.storage_url() == "sqlite:///from-env.db"
    write(in_project, "storage: sqlite:///from-file.db\nmodule: app.flows\nruntime: local\n")
    assert config.storage_url() == "sqlite:///from-file.db"  # the file before the environment
    assert config.build_storage().url == "sqlite:///from-file.db"
    assert config.storage_url("sqlite:///given.db") == "sqlite:///given.db"  # a call's own
    config.configure(storage="memory://")
    assert config.build_storage().url == "memory://"  # configure() before the file
    monkeypatch.setenv("PYWORKFLOW_MODULES", "other.flows")
    assert config.configured_modules() == ["app.flows", "other.flows"]
    config.reset()
    assert config.build_storage().url == "sqlite:///from-file.db"


def test_their_storage_mapping(in_project: Path) -> None:
    write(in_project, "storage:\n  backend: file\n  path: ./workflow_data\n")
    assert config.storage_url() == "sqlite:///./workflow_data/pyworkflow.db"
    write(in_project, "storage:\n  backend: memory\n")
    assert config.storage_url() == "memory://"
    # The spelling their `pyworkflow setup` writes (their Celery examples' file).
    write(in_project, "storage:\n  type: sqlite\n  base_path: data/pw.db\n")
    assert config.storage_url() == "sqlite:///data/pw.db"
    write(in_project, "storage:\n  type: file\n  base_path: ./workflow_data\n")
    assert config.storage_url() == "sqlite:///./workflow_data/pyworkflow.db"
    write(in_project, "durable: false\nstart_waits: true\nlease_seconds: 3\n")
    assert config.default_durable() is False
    assert config.start_waits() is True
    assert config.engine_settings().lease_seconds == 3
    write(in_project, "celery:\n  broker: redis://localhost:6379/3\n  result_backend: x\n")
    assert config.broker() == "redis://localhost:6379/3"
    write(in_project, "recovery:\n  recover_on_worker_loss: true\n  max_recovery_attempts: 2\n")
    assert config.engine_settings().max_recoveries == 2


def test_their_configure_names_for_recovery(in_project: Path) -> None:
    from pyworkflow.config import get_config  # where their docs import it from

    config.configure(default_max_recovery_attempts=4)
    assert config.engine_settings().max_recoveries == 4
    assert get_config().max_recoveries == 4
    with pytest.raises(ConfigurationError, match="only True here"):
        config.configure(default_recover_on_worker_loss=False)
    with pytest.raises(ConfigurationError, match="disagree"):
        config.configure(max_recoveries=1, default_max_recovery_attempts=2)


def test_their_environment_names(in_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyworkflow.executors.celery.broker import broker_url

    monkeypatch.setenv("PYWORKFLOW_DISCOVER", "app.flows,app.more")
    monkeypatch.setenv("PYWORKFLOW_MODULE", "app.one")
    assert config.configured_modules() == ["app.one", "app.flows", "app.more"]
    monkeypatch.setenv("PYWORKFLOW_MODULES", "ours")
    assert config.configured_modules()[0] == "ours"  # our name first
    monkeypatch.setenv("PYWORKFLOW_RUNTIME", "celery")
    assert config.executor_name() == "celery"
    monkeypatch.setenv("PYWORKFLOW_EXECUTOR", "local")
    assert config.executor_name() == "local"
    monkeypatch.setenv("PYWORKFLOW_STORAGE_BACKEND", "file")
    assert config.storage_url() == "sqlite:///./workflow_data/pyworkflow.db"
    monkeypatch.setenv("PYWORKFLOW_STORAGE_PATH", "/data/wf")
    assert config.storage_url() == "sqlite:////data/wf/pyworkflow.db"
    monkeypatch.setenv("PYWORKFLOW_STORAGE_BACKEND", "memory")
    assert config.storage_url() == "memory://"
    monkeypatch.setenv("PYWORKFLOW_STORAGE_BACKEND", "dynamodb")
    with pytest.raises(ConfigurationError, match="PYWORKFLOW_STORAGE_BACKEND: 'dynamodb'"):
        config.storage_url()
    monkeypatch.setenv("PYWORKFLOW_STORAGE", "sqlite:///ours.db")
    assert config.storage_url() == "sqlite:///ours.db"  # our name first
    monkeypatch.setenv("PYWORKFLOW_CELERY_BROKER", "redis://theirs:6379/0")
    assert broker_url() == "redis://theirs:6379/0"
    monkeypatch.setenv("PYWORKFLOW_BROKER", "redis://ours:6379/0")
    assert broker_url() == "redis://ours:6379/0"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("storgae: memory://\n", "storgae: unknown setting"),
        ("storage:\n  backend: cassandra\n", "storage.backend: 'cassandra' is not one of"),
        ("storage:\n  backend: sqlite\n", "storage.path"),
        ("storage:\n  type: dynamodb\n", "storage.type: 'dynamodb' is not one of"),
        ("storage:\n  type: sqlite\n  backend: sqlite\n  path: x\n", "storage.type: give"),
        ("storage:\n  type: sqlite\n  path: a\n  base_path: b\n", "storage.base_path: give"),
        ("runtime: lambda\n", "runtime: 'lambda' is not an executor"),
        ("start_waits: maybe\n", "start_waits: expected true or false"),
        ("lease_seconds: -1\n", "lease_seconds: expected a positive number"),
        ("celery:\n  brokr: x\n", "celery.brokr: unknown key"),
        ("recovery:\n  recover_on_worker_loss: false\n", "recovery.recover_on_worker_loss"),
        ("recovery:\n  max_recovery_attempts: -1\n", "recovery.max_recovery_attempts"),
        ("recovery:\n  attempts: 3\n", "recovery.attempts: unknown key"),
        ("- a list\n", "(top level)"),
        ("storage: [unclosed\n", "cannot be read as YAML"),
    ],
)
def test_a_bad_file_names_the_key(in_project: Path, text: str, key: str) -> None:
    write(in_project, text)
    with pytest.raises(ConfigurationError) as info:
        config.storage_url()
    assert "pyworkflow.config.yaml" in str(info.value)
    assert key in str(info.value)


@pytest.mark.slow
def test_the_cli_reads_the_file(tmp_path: Path) -> None:
    (tmp_path / "cfgwf.py").write_text(
        "from pyworkflow import step, workflow\n\n"
        "@step\nasync def s() -> int:\n    return 1\n\n"
        "@workflow\nasync def cfg_flow() -> int:\n    return await s()\n"
    )
    (tmp_path / "pyworkflow.config.yaml").write_text(
        "module: cfgwf\nstorage:\n  backend: sqlite\n  path: ./from-file.db\n"
    )
    env = subprocess_env(tmp_path)
    subprocess.run(
        cli("db", "upgrade"), cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60
    )
    assert (tmp_path / "from-file.db").exists()
    listed = subprocess.run(
        cli("workflows", "list", "--json"),
        cwd=tmp_path, env=env, check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "cfg_flow" in listed.stdout
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pyworkflow.config.yaml").write_text("storage:\n  backend: nope\n")
    failed = subprocess.run(
        cli("runs", "list"), cwd=bad, env=env, capture_output=True, text=True, timeout=60
    )
    assert failed.returncode == 2, failed.stderr
    assert "storage.backend" in failed.stderr
    assert json.loads(listed.stdout) is not None
