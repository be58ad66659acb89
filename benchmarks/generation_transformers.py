"""transformers generation: batched against one prompt at a time, on the same tiny model.

    python benchmarks/generation_transformers.py [--prompts 32] [--batch-size 16] [--max-tokens 32]

The model is the test suite's tiny random-initialised LLaMA (built here, nothing downloaded),
so the numbers measure the backend's overhead and batching rather than a real model's compute.
Prints responses/s and generated tokens/s for both and the speed-up.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _requirements import require_train_extra  # the script folder is on sys.path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    require_train_extra()
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()

    import torch

    from inference.backends.base import (
        GenerationRequest,
        SamplingSettings,
        backend_load,
        messages_for,
    )
    from tests.support.tiny_model import SENTENCES, build_tiny_model

    torch.set_num_threads(1)
    folder = build_tiny_model(Path(tempfile.mkdtemp()) / "tiny", layers=args.layers)
    sampling = SamplingSettings.from_overrides({"max_tokens": args.max_tokens})
    requests = [
        GenerationRequest(key=i, messages=messages_for(SENTENCES[i % len(SENTENCES)]), seed=i)
        for i in range(args.prompts)
    ]

    def measure(batch_size: int) -> tuple[float, float]:
        backend = backend_load("transformers", {"model": str(folder), "batch_size": batch_size})
        list(backend.generate(requests[:batch_size], sampling))  # warm-up
        started = time.perf_counter()
        results = list(backend.generate(requests, sampling))
        wall = time.perf_counter() - started
        assert all(r.ok for r in results)
        tokens = sum(r.completion_tokens for r in results)
        return len(results) / wall, tokens / wall

    single = measure(1)
    batched = measure(args.batch_size)
    print(f"{args.prompts} prompts, at most {args.max_tokens} new tokens, 1 CPU thread")
    for label, (responses, tokens) in (
        ("one at a time", single),
        (f"batches of {args.batch_size}", batched),
    ):
        print(f"{label:>15}: {responses:7.1f} responses/s {tokens:8.1f} tokens/s")
    print(
        f"speed-up (batched / one at a time): {batched[0] / single[0]:.2f}x responses/s, "
        f"{batched[1] / single[1]:.2f}x tokens/s"
    )


if __name__ == "__main__":
    main()
