"""The vLLM backend against vLLM's own signatures (read from the 0.33 wheel into
tests/support/vllm_contract.json): every argument it passes exists there, and the `gpu`
extra allows only the versions that contract was read from."""

import json
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from inference.backends import vllm as vllm_backend
from inference.backends.base import SamplingSettings
from tests.support.vllm_contract import CONTRACT

ROOT = Path(__file__).resolve().parents[3]


def contract() -> dict:
    return json.loads(CONTRACT.read_text())


def test_every_engine_argument_is_one_vllm_takes():
    config = {
        "model": "org/model",
        "tokenizer": "org/tokenizer",
        "max_model_len": 4096,
        "quantization": "awq",
        "tensor_parallel_size": 2,
    }
    accepted = set(contract()["LLM.__init__"]["parameters"]) | set(contract()["EngineArgs"])
    assert set(vllm_backend.engine_args(config)) <= accepted


def test_every_sampling_argument_is_a_sampling_params_field():
    sampling = SamplingSettings.from_overrides({"stop": ["###"], "seed": 3})
    kwargs = vllm_backend.sampling_kwargs(sampling, seed=3, stop_token_ids=[7])
    assert set(kwargs) <= set(contract()["SamplingParams"])


def test_prompts_go_as_vllms_tokens_prompt_to_a_generate_that_takes_use_tqdm():
    assert "prompt_token_ids" in contract()["TokensPrompt"]
    generate = contract()["LLM.generate"]["parameters"]
    assert generate[:2] == ["prompts", "sampling_params"] and "use_tqdm" in generate


def test_the_gpu_extra_allows_only_the_vllm_the_contract_was_read_from():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (requirement,) = [Requirement(r) for r in project["optional-dependencies"]["gpu"]]
    assert requirement.name == "vllm"
    assert requirement.specifier.contains(contract()["vllm"])
    assert not requirement.specifier.contains("0.34.0") and not requirement.specifier.contains(
        "0.32.9"
    )
