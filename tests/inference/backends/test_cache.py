"""A worker keeps the backend it loaded for its next task with the same model: the same
object, loaded once; a different model, a changed checkpoint or keep=0 load anew, and the
one let go of is freed. API clients are not kept."""

import gc
import os
import weakref

import pytest

from inference.backends import cache
from inference.backends.cache import backend_loaded, backends_kept, backends_release
from tests.support.tiny_model import build_tiny_model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    pytest.importorskip("transformers", reason="the train extra (transformers) is not installed")
    root = tmp_path_factory.mktemp("kept")
    return build_tiny_model(root / "one"), build_tiny_model(root / "two")


@pytest.fixture
def loads(monkeypatch):
    """How many times a backend was really loaded (the real loader runs)."""
    counted = []
    real = cache.backend_load

    def counting(backend, config):
        counted.append(config["model"])
        return real(backend, config)

    monkeypatch.setattr(cache, "backend_load", counting)
    return counted


def config(path) -> dict:
    return {"model": str(path), "end_of_turn": "<EOT>"}


def test_the_same_model_is_loaded_once_and_handed_out_again(checkpoints, loads):
    one, _ = checkpoints
    first = backend_loaded("transformers", config(one))
    assert backend_loaded("transformers", config(one)) is first
    assert loads == [str(one)] and backends_kept() == 1


def test_another_model_lets_go_of_the_one_kept_first(checkpoints, loads):
    one, two = checkpoints
    first = backend_loaded("transformers", config(one), keep=1)
    freed = weakref.ref(first.model)
    del first
    second = backend_loaded("transformers", config(two), keep=1)
    gc.collect()
    assert freed() is None, "the first model's weights are still held"
    assert backends_kept() == 1 and backend_loaded("transformers", config(two)) is second
    # Two kept when asked for two.
    backend_loaded("transformers", config(one), keep=2)
    assert backends_kept() == 2
    assert loads == [str(one), str(two), str(one)]
    assert backends_release() == 2 and backends_kept() == 0


def test_keep_zero_loads_for_each_task_and_keeps_nothing(checkpoints, loads):
    one, _ = checkpoints
    kept = backend_loaded("transformers", config(one))
    fresh = backend_loaded("transformers", config(one), keep=0)
    assert fresh is not kept and backends_kept() == 0
    assert fresh is not backend_loaded("transformers", config(one), keep=0)
    assert backends_kept() == 0 and len(loads) == 3


def test_a_checkpoint_saved_again_is_loaded_again(checkpoints, loads):
    one, _ = checkpoints
    first = backend_loaded("transformers", config(one))
    stat = os.stat(one / "config.json")
    os.utime(one / "config.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert backend_loaded("transformers", config(one)) is not first
    assert len(loads) == 2


def test_openai_clients_are_not_kept(loads, monkeypatch):
    monkeypatch.setenv("TEST_API_KEY", "sk-test")
    endpoint = {
        "model": "gpt-test",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key_env": "TEST_API_KEY",
    }
    first = backend_loaded("openai", endpoint)
    assert backend_loaded("openai", endpoint) is not first
    assert backends_kept() == 0
