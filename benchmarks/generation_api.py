"""API generation throughput: achieved responses/s over the ideal concurrency / latency.

    python benchmarks/generation_api.py [--concurrency 64] [--latency 0.2] [--requests 1280]

The OpenAI-compatible backend (the real openai client, our retries and thread pool) sends
every request to the local test server, run in its own process so that its threads do not
share the client's interpreter lock; the server adds `--latency` seconds to each answer.
Target: a ratio of at least 0.9 at concurrency 64.
"""

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--requests", type=int, default=1280)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")
    os.environ["BENCH_API_KEY"] = "sk-bench"
    import django

    django.setup()
    # One INFO line per request from the HTTP client would cost more than the request.
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from inference.backends.base import (
        GenerationRequest,
        SamplingSettings,
        backend_load,
        messages_for,
    )

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.openai_completions_server",
            "--latency",
            str(args.latency),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        backend = backend_load(
            "openai",
            {
                "model": "bench",
                "base_url": url,
                "api_key_env": "BENCH_API_KEY",
                "concurrency": args.concurrency,
                "timeout": 30,
            },
        )
        sampling = SamplingSettings.from_overrides({"max_tokens": 64})

        def batch(count: int, offset: int = 0) -> list[GenerationRequest]:
            return [
                GenerationRequest(key=i, messages=messages_for(f"Prompt {offset + i}?"), seed=i)
                for i in range(count)
            ]

        # Warm-up: connections opened, modules imported.
        list(backend.generate(batch(args.concurrency), sampling))
        started = time.perf_counter()
        results = list(backend.generate(batch(args.requests, offset=10**6), sampling))
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    failed = sum(1 for r in results if not r.ok)
    achieved = len(results) / wall
    ideal = args.concurrency / args.latency
    print(
        f"{len(results)} requests at concurrency {args.concurrency}, "
        f"latency {args.latency * 1000:.0f} ms: {wall:.2f}s, {failed} failed"
    )
    print(f"achieved {achieved:.1f} responses/s, ideal {ideal:.1f} responses/s")
    print(f"ratio (achieved / ideal): {achieved / ideal:.3f} (target >= 0.9)")


if __name__ == "__main__":
    main()
