"""A clear stop for benchmarks that need an optional extra."""

import importlib.util
import sys


def require_train_extra() -> None:
    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(
            f"This benchmark needs the train extra ({', '.join(missing)} missing): "
            "pip install torch==2.13.0 && pip install -e '.[train]'"
        )
