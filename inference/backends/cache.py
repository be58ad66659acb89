"""Loaded backends kept between the tasks of one worker process.

Loading is the slow part of answering: a vLLM engine takes a minute or more to start and a
checkpoint's weights gigabytes to read, while a dialogue's next answer takes seconds. So a
worker keeps the last `keep` backends it loaded and hands the same one to the next task with
the same model and settings. Before it loads another, it lets go of the oldest (its client
closed, its weights freed), so a GPU worker never holds more engines than `keep` (1 by
default: a second engine would not fit beside the first on most GPUs).

Only backends that hold weights are kept (vLLM, transformers): an OpenAI-compatible client is
cheap to open, and one task closing a client another thread still uses would fail that task.
A checkpoint folder that changed on disk since it was loaded is loaded again.
"""

import gc
import json
import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from inference.backends.base import Backend, backend_load, is_local_path

logger = logging.getLogger(__name__)

KEPT_BACKENDS = frozenset({"vllm", "transformers"})
_loaded: "OrderedDict[str, Backend]" = OrderedDict()
_lock = threading.Lock()


def _key(backend: str, config: Mapping[str, Any]) -> str:
    model = config.get("model")
    changed = None
    if isinstance(model, str) and is_local_path(model):
        path = os.path.expanduser(model)
        try:
            # Saving a checkpoint rewrites its config and weights: the folder's and its
            # config.json's modification times move.
            changed = [
                os.stat(path).st_mtime_ns,
                os.stat(os.path.join(path, "config.json")).st_mtime_ns,
            ]
        except OSError:
            changed = None
    return json.dumps(
        {"backend": backend, "config": config, "changed": changed},
        sort_keys=True,
        default=str,
    )


def backend_loaded(backend: str, config: Mapping[str, Any], *, keep: int = 1) -> Backend:
    """The backend for this model and settings: the one this process already holds, or a new
    one loaded and kept. With `keep` 0 nothing is kept: what was kept is let go of first."""
    if backend not in KEPT_BACKENDS:
        return backend_load(backend, config)
    if keep <= 0:
        backends_release()
        return backend_load(backend, config)
    key = _key(backend, config)
    with _lock:
        found = _loaded.get(key)
        if found is not None:
            _loaded.move_to_end(key)
            return found
        while _loaded and len(_loaded) >= keep:
            _, oldest = _loaded.popitem(last=False)
            _release(oldest)
        loaded = backend_load(backend, config)
        _loaded[key] = loaded
        return loaded


def backends_release() -> int:
    """Let go of every kept backend (worker shutdown, tests); returns how many there were."""
    with _lock:
        count = len(_loaded)
        while _loaded:
            _release(_loaded.popitem(last=False)[1])
        return count


def backends_kept() -> int:
    with _lock:
        return len(_loaded)


def _release(backend: Backend) -> None:
    close = getattr(backend, "close", None)
    if callable(close):
        try:
            close()
        # Letting go must not fail the task that loads next.
        except Exception:
            logger.warning("closing a kept backend failed", exc_info=True)
    del backend
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
