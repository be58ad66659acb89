"""How much memory a full fine-tune takes, to refuse a run that cannot fit before it starts.

A rough, deliberately generous model of mixed-precision AdamW training: fp32 master weights,
fp32 gradients and two fp32 Adam moments (16 bytes a parameter, divided across processes when
FSDP or DeepSpeed ZeRO-3 shards them), plus activations and logits for one micro-batch.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 1024**3
BYTES_PER_PARAMETER = 16
# Activation bytes per token per layer for a transformer layer without recomputation, at
# 2-byte activations (Korthikanti et al., 2022: 34·h, attention scores left out as fused
# attention does not keep them).
ACTIVATION_FACTOR = 34
# CUDA context, allocator fragmentation, communication buffers.
OVERHEAD_BYTES = 2 * GIB
OVERHEAD_SHARE = 0.15


@dataclass(frozen=True)
class ModelShape:
    parameters: int
    hidden_size: int
    layers: int
    vocab_size: int


def model_shape(config: Any) -> ModelShape:
    """The shape of a model from its config, parameters counted on the meta device."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    parameters = sum(p.numel() for p in model.parameters())
    return ModelShape(
        parameters=parameters,
        hidden_size=int(config.hidden_size),
        layers=int(config.num_hidden_layers),
        vocab_size=int(config.vocab_size),
    )


def training_bytes(
    shape: ModelShape,
    *,
    micro_batch: int,
    max_length: int,
    gradient_checkpointing: bool,
    half_precision: bool,
    shards: int = 1,
) -> int:
    """Peak bytes on one process."""
    state = BYTES_PER_PARAMETER * shape.parameters / shards
    tokens = micro_batch * max_length
    scale = 1 if half_precision else 2
    per_layer = ACTIVATION_FACTOR * shape.hidden_size * tokens * scale
    if gradient_checkpointing:
        # One layer's input kept per layer, plus one layer recomputed at a time.
        activations = shape.layers * 2 * shape.hidden_size * tokens * scale + per_layer
    else:
        activations = shape.layers * per_layer
    # fp32 logits, their softmax and its gradient.
    logits = 3 * 4 * tokens * shape.vocab_size
    peak = state + activations + logits
    return int(peak * (1 + OVERHEAD_SHARE) + OVERHEAD_BYTES)


def available_bytes(device: str) -> int:
    """Memory of one process's device: the GPU's total, or the machine's RAM."""
    if device.startswith("cuda"):
        import torch

        index = int(device.split(":")[1]) if ":" in device else 0
        return int(torch.cuda.get_device_properties(index).total_memory)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def shards_in_accelerate_config(path: str | Path, processes: int) -> int:
    """How many ways the training state is split under an accelerate config file."""
    import yaml

    config = yaml.safe_load(Path(path).read_text()) or {}
    kind = str(config.get("distributed_type", "")).upper()
    if kind == "FSDP":
        fsdp = config.get("fsdp_config") or {}
        strategy = str(fsdp.get("fsdp_sharding_strategy", "FULL_SHARD")).upper()
        return processes if strategy in ("FULL_SHARD", "1", "HYBRID_SHARD") else 1
    if kind == "DEEPSPEED":
        deepspeed = config.get("deepspeed_config") or {}
        return processes if int(deepspeed.get("zero_stage", 0)) >= 2 else 1
    return 1


def micro_batch_for(
    shape: ModelShape,
    *,
    per_process_batch: int,
    limit_bytes: int,
    max_length: int,
    gradient_checkpointing: bool,
    half_precision: bool,
    shards: int,
) -> int | None:
    """The largest micro-batch dividing the per-process batch that fits, or None."""
    for micro in range(per_process_batch, 0, -1):
        if per_process_batch % micro:
            continue
        needed = training_bytes(
            shape,
            micro_batch=micro,
            max_length=max_length,
            gradient_checkpointing=gradient_checkpointing,
            half_precision=half_precision,
            shards=shards,
        )
        if needed <= limit_bytes:
            return micro
    return None
