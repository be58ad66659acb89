"""How much memory a full fine-tune takes, to refuse a run that cannot fit before it starts.

A rough, deliberately generous model of mixed-precision AdamW training: fp32 master weights,
fp32 gradients and two fp32 Adam moments (16 bytes a parameter, divided across processes when
FSDP or DeepSpeed ZeRO shards them, less on the GPU when offloaded to the CPU), plus
activations and logits for one micro-batch.
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


@dataclass(frozen=True)
class StateLayout:
    """Where the training state lives under a launcher configuration."""

    # Bytes a parameter takes on the GPU for weights, gradients and optimizer state.
    bytes_per_parameter: float = BYTES_PER_PARAMETER
    # How many processes that state is split across.
    shards: int = 1


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
    layout: StateLayout | None = None,
) -> int:
    """Peak bytes on one process."""
    layout = layout or StateLayout()
    state = layout.bytes_per_parameter * shape.parameters / layout.shards
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


def state_layout(path: str | Path, processes: int) -> StateLayout:
    """The layout an accelerate config file gives (FSDP, DeepSpeed ZeRO, or plain DDP)."""
    import yaml

    config = yaml.safe_load(Path(path).read_text()) or {}
    kind = str(config.get("distributed_type", "")).upper()
    if kind == "FSDP":
        fsdp = config.get("fsdp_config") or {}
        strategy = str(fsdp.get("fsdp_sharding_strategy", "FULL_SHARD")).upper()
        shards = processes if strategy in ("FULL_SHARD", "1", "HYBRID_SHARD") else 1
        # Offloaded parameters (and with them their gradients and optimizer state) live in
        # CPU memory; a layer at a time comes to the GPU in 16 bits.
        if fsdp.get("fsdp_offload_params"):
            return StateLayout(bytes_per_parameter=2, shards=shards)
        return StateLayout(shards=shards)
    if kind == "DEEPSPEED":
        deepspeed = config.get("deepspeed_config") or {}
        stage = int(deepspeed.get("zero_stage", 0))
        shards = processes if stage >= 1 else 1
        # ZeRO-1/2 shard the optimizer state (and gradients) but keep whole weights.
        if str(deepspeed.get("offload_optimizer_device", "none")) == "cpu":
            # fp32 master weights and AdamW moments on the CPU; 16-bit weights and gradients
            # on the GPU (sharded by ZeRO-3).
            return StateLayout(bytes_per_parameter=4, shards=shards if stage >= 3 else 1)
        if stage >= 3:
            return StateLayout(shards=shards)
        return StateLayout(bytes_per_parameter=8 + 8 / shards)
    return StateLayout()


def micro_batch_for(
    shape: ModelShape,
    *,
    per_process_batch: int,
    limit_bytes: int,
    max_length: int,
    gradient_checkpointing: bool,
    half_precision: bool,
    layout: StateLayout,
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
            layout=layout,
        )
        if needed <= limit_bytes:
            return micro
    return None
