"""Checkpoint selection serves each checkpoint as the recipe says (tensor parallelism, dtype)
and refuses up front what cannot fit on the machine."""

import pytest

from inference.training.recipe import Recipe, RecipeInvalid
from inference.training.selection import GIB, serving_fit_problem

# LLaMA 65B saved by the trainer in fp32: about 261 GB.
LLAMA_65B_FP32 = 261 * 10**9
H100 = 80 * GIB


def test_a_65b_checkpoint_on_one_gpu_is_refused_with_the_parallelism_it_needs():
    problem = serving_fit_problem(
        weights_fp32_bytes=LLAMA_65B_FP32,
        backend="vllm",
        serving={},
        gpu_bytes=[H100] * 8,
        ram_bytes=1024 * GIB,
    )
    assert "need 243 GiB per GPU in auto with tensor_parallel_size=1" in problem
    assert "tensor_parallel_size to at least 4" in problem


def test_the_same_checkpoint_fits_with_tensor_parallelism_in_bfloat16():
    serving = {"tensor_parallel_size": 4, "dtype": "bfloat16"}
    assert (
        serving_fit_problem(
            weights_fp32_bytes=LLAMA_65B_FP32,
            backend="vllm",
            serving=serving,
            gpu_bytes=[H100] * 8,
            ram_bytes=1024 * GIB,
        )
        == ""
    )


def test_more_gpus_than_the_worker_has_and_a_transformers_fallback_are_refused():
    too_many = serving_fit_problem(
        weights_fp32_bytes=LLAMA_65B_FP32,
        backend="vllm",
        serving={"tensor_parallel_size": 8},
        gpu_bytes=[H100] * 4,
        ram_bytes=1024 * GIB,
    )
    assert "tensor_parallel_size=8, but this worker sees 4 GPUs" in too_many
    fallback = serving_fit_problem(
        weights_fp32_bytes=LLAMA_65B_FP32,
        backend="transformers",
        serving={},
        gpu_bytes=[H100],
        ram_bytes=1024 * GIB,
    )
    assert "onto one device with 80 GiB" in fallback and "select with vLLM" in fallback
    small = serving_fit_problem(
        weights_fp32_bytes=28 * 10**9,
        backend="transformers",
        serving={"device": "cpu"},
        gpu_bytes=[],
        ram_bytes=64 * GIB,
    )
    assert small == ""


def test_the_recipe_checks_its_serving_settings_as_the_backend_does():
    Recipe.from_overrides({"selection_serving": {"tensor_parallel_size": 4, "dtype": "bfloat16"}})
    with pytest.raises(RecipeInvalid, match="unknown key 'model'"):
        Recipe.from_overrides({"selection_serving": {"model": "other"}})
    with pytest.raises(RecipeInvalid, match="selection_serving for vllm"):
        Recipe.from_overrides(
            {"selection_backend": "vllm", "selection_serving": {"tensor_parallel_size": 0}}
        )
