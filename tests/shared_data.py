"""Paths of the real public data in ../shared/fixtures (read there, never copied here)."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
LIMA_PROMPTS = FIXTURES / "lima" / "test_prompts.jsonl"
ALPACA_EVAL = FIXTURES / "alpaca_eval"
MISTRAL_OUTPUTS = ALPACA_EVAL / "mistral-7b-instruct-v0.2.model_outputs.json"
GPT4_OUTPUTS = ALPACA_EVAL / "gpt4-1106-preview.model_outputs.json"
ANNOTATIONS = ALPACA_EVAL / "mistral-7b-instruct-v0.2_vs_gpt4-1106-preview.annotations.json"
ALPACA_EVAL_CANDIDATE = "Mistral-7B-Instruct-v0.2"
ALPACA_EVAL_JUDGE = "alpaca_eval_cot_gpt4_turbo_fn"
