"""The LIMA fine-tuning recipe as defaults: every field can be overridden and is stored with a run.

Two settings depend on the model's size in the paper: the batch (32 examples, 64 for smaller
models) and the top layer's residual dropout (0.3, 0.2 for smaller models). Left as None they
are resolved once the base model's parameter count is known; "smaller" means under
`LARGE_MODEL_PARAMETERS` (the paper's large case is LLaMA 65B, its smaller ones 7B).
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from inference.backends.base import BackendConfigError, backend_check

LARGE_MODEL_PARAMETERS = 30_000_000_000


class RecipeInvalid(ValueError):
    """A setting of the recipe cannot work; the message names it and says what fits."""


@dataclass(frozen=True)
class Recipe:
    epochs: int = 15
    learning_rate: float = 1e-5
    final_learning_rate: float = 1e-6
    warmup_steps: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_epsilon: float = 1e-8
    weight_decay: float = 0.1
    max_grad_norm: float = 1.0
    # Examples per optimiser step; None: 32, or 64 for models under 30B parameters.
    batch_size: int | None = None
    # Examples per forward pass on one device; None: the largest that the memory estimate
    # fits, the rest of the batch made up by gradient accumulation.
    micro_batch_size: int | None = None
    max_length: int = 2048
    # Residual dropout of the top decoder layer; None: 0.3, or 0.2 under 30B parameters.
    residual_dropout: float | None = None
    end_of_turn: str = "<EOT>"
    precision: str = "auto"
    gradient_checkpointing: bool = True
    group_by_length: bool = True
    seed: int = 42
    # A resumable checkpoint every this many optimiser steps, besides each epoch's end; 0: none.
    save_every_steps: int = 0
    # Checkpoint selection: the epochs whose checkpoints answer the dev set.
    select_from_epoch: int = 5
    select_to_epoch: int = 10
    selection_backend: str = "auto"
    # How the selection backend serves each checkpoint: vLLM's tensor_parallel_size, dtype,
    # max_model_len, gpu_memory_utilization; transformers' dtype, device, batch_size.
    selection_serving: dict[str, Any] = field(default_factory=dict)
    # Overrides of the paper's sampling for the dev-set answers (temperature, max_tokens...).
    selection_sampling: dict[str, Any] = field(default_factory=dict)
    # "inline": in the worker's process; "accelerate": `accelerate launch` with the config
    # file below (FSDP or DeepSpeed across GPUs and machines), see docs/training.md.
    launcher: str = "inline"
    accelerate_config: str = ""
    num_processes: int = 1
    # Memory each process may use, in GiB; None: detected (the GPU's, or the machine's RAM).
    memory_limit_gb: float | None = None

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None = None) -> "Recipe":
        """The LIMA defaults with the given fields replaced; unknown fields refused."""
        overrides = dict(overrides or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise RecipeInvalid(
                f"Unknown training setting {', '.join(map(repr, unknown))}; known: "
                f"{', '.join(sorted(known))}."
            )
        recipe = cls(**overrides)
        recipe.validate()
        return recipe

    def validate(self) -> None:
        problems = [
            *_check_int(self, "epochs", 1),
            *_check_number(self, "learning_rate", 0, strict=True),
            *_check_number(self, "final_learning_rate", 0),
            *_check_int(self, "warmup_steps", 0),
            *_check_number(self, "adam_epsilon", 0, strict=True),
            *_check_number(self, "weight_decay", 0),
            *_check_number(self, "max_grad_norm", 0),
            *_check_int(self, "max_length", 8),
            *_check_int(self, "seed", 0),
            *_check_int(self, "save_every_steps", 0),
            *_check_int(self, "select_from_epoch", 1),
            *_check_int(self, "select_to_epoch", 1),
            *_check_int(self, "num_processes", 1),
        ]
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value < 1:
                problems.append(f"{name} must be a number in [0, 1)")
        for name in ("batch_size", "micro_batch_size"):
            if getattr(self, name) is not None:
                problems += _check_int(self, name, 1)
        if self.residual_dropout is not None and (
            not _is_number(self.residual_dropout) or not 0 <= self.residual_dropout < 1
        ):
            problems.append("residual_dropout must be a number in [0, 1)")
        if self.memory_limit_gb is not None and (
            not _is_number(self.memory_limit_gb) or self.memory_limit_gb <= 0
        ):
            problems.append("memory_limit_gb must be a number > 0")
        if not isinstance(self.end_of_turn, str) or not self.end_of_turn.strip():
            problems.append('end_of_turn must be a token such as "<EOT>"')
        if self.precision not in ("auto", "bf16", "fp16", "fp32"):
            problems.append("precision must be 'auto', 'bf16', 'fp16' or 'fp32'")
        if self.selection_backend not in ("auto", "vllm", "transformers"):
            problems.append("selection_backend must be 'auto', 'vllm' or 'transformers'")
        if self.launcher not in ("inline", "accelerate"):
            problems.append("launcher must be 'inline' or 'accelerate'")
        if self.launcher == "accelerate" and not self.accelerate_config:
            problems.append("launcher 'accelerate' needs accelerate_config (a file in configs/)")
        if self.launcher == "inline" and self.num_processes != 1:
            problems.append("num_processes > 1 needs launcher 'accelerate'")
        for name in ("gradient_checkpointing", "group_by_length"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false")
        if not isinstance(self.selection_sampling, Mapping):
            problems.append("selection_sampling must be a JSON object")
        if not isinstance(self.selection_serving, Mapping):
            problems.append("selection_serving must be a JSON object")
        else:
            problems.extend(serving_problems(self.selection_backend, self.selection_serving))
        if not problems and self.select_from_epoch > self.select_to_epoch:
            problems.append("select_from_epoch must not be after select_to_epoch")
        if not problems and self.select_from_epoch > self.epochs:
            problems.append(
                f"checkpoint selection starts at epoch {self.select_from_epoch}, after the last "
                f"of {self.epochs} epochs: lower select_from_epoch or train longer"
            )
        if not problems and self.final_learning_rate > self.learning_rate:
            problems.append("final_learning_rate must not exceed learning_rate")
        if problems:
            raise RecipeInvalid("Bad training settings: " + "; ".join(problems) + ".")

    def resolve(self, parameters: int) -> "Recipe":
        """The size-dependent defaults filled in for a model of this many parameters."""
        large = parameters >= LARGE_MODEL_PARAMETERS
        return replace(
            self,
            batch_size=self.batch_size or (32 if large else 64),
            residual_dropout=(
                self.residual_dropout
                if self.residual_dropout is not None
                else (0.3 if large else 0.2)
            ),
        )

    @property
    def selection_epochs(self) -> range:
        return range(self.select_from_epoch, min(self.select_to_epoch, self.epochs) + 1)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_int(recipe: Recipe, name: str, minimum: int) -> list[str]:
    value = getattr(recipe, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        return [f"{name} must be an integer ≥ {minimum}"]
    return []


def _check_number(recipe: Recipe, name: str, minimum: float, *, strict: bool = False) -> list[str]:
    value = getattr(recipe, name)
    if not _is_number(value) or value < minimum or (strict and value == minimum):
        return [f"{name} must be a number {'>' if strict else '≥'} {minimum:g}"]
    return []


# What selection_serving may set: how a checkpoint is served, never which one.
SERVING_KEYS = {
    "vllm": {
        "tensor_parallel_size",
        "dtype",
        "max_model_len",
        "gpu_memory_utilization",
        "enforce_eager",
        "quantization",
    },
    "transformers": {"dtype", "device", "batch_size"},
}


def serving_problems(backend: str, serving: Mapping[str, Any]) -> list[str]:
    """Unknown or bad selection_serving keys, checked as the backend itself checks them."""
    backends = ["vllm", "transformers"] if backend == "auto" else [backend]
    known = set().union(*(SERVING_KEYS.get(b, set()) for b in backends))
    unknown = sorted(set(serving) - known)
    if unknown:
        return [
            f"selection_serving: unknown key {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(known))})"
        ]
    problems = []
    for name in backends:
        options = {k: v for k, v in serving.items() if k in SERVING_KEYS[name]}
        try:
            backend_check(name, {"model": "checkpoint", **options})
        except BackendConfigError as error:
            problems.append(f"selection_serving for {name}: {error}")
    return problems
