"""Fine-tuning throughput and model FLOPs utilisation (MFU) of the LIMA recipe's training step.

    python benchmarks/train_throughput.py [--steps 5] [--warmup 2] [--micro-batch N]
                                          [--batch 64] [--length 2048] [--no-checkpointing]

On CUDA: a ~1.1B-parameter LLaMA-shaped model (TinyLlama's shape: hidden 2048, 22 layers, 32
heads, 4 key-value heads, MLP 5632, vocabulary 32,000) with random weights, fp32 master weights
and bf16 autocast, AdamW (β 0.9/0.95, weight decay 0.1), residual dropout 0.2 at the top layer,
activation checkpointing, the LIMA batch for a smaller model (64 examples of 2,048 tokens, by
micro-batches with gradient accumulation). Without CUDA it runs the same step on a tiny config,
only to show that the script works; it says which.

Printed: tokens/s, model TFLOP/s (6·N + 12·layers·hidden·length FLOPs a token, N the
parameters less the input embedding; activation recomputation is not counted) and the bf16
matrix-multiply rate measured in the same run on the same device (8192³ matmuls), whose ratio
is the MFU.
"""

import argparse
import sys
import time
from pathlib import Path

from _requirements import require_train_extra  # the script folder is on sys.path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def matmul_rate(torch, device: str, size: int, repeats: int) -> float:
    """bf16 matrix-multiply FLOP/s on this device."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(2):
        a @ b
    synchronize(torch, device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(torch, device)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def flop_rate(value: float) -> str:
    return f"{value / 1e12:.1f} TFLOP/s" if value >= 1e12 else f"{value / 1e9:.2f} GFLOP/s"


def synchronize(torch, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def model_config(cuda: bool):
    from transformers import LlamaConfig

    if cuda:
        return LlamaConfig(
            vocab_size=32000,
            hidden_size=2048,
            intermediate_size=5632,
            num_hidden_layers=22,
            num_attention_heads=32,
            num_key_value_heads=4,
            max_position_embeddings=2048,
            attn_implementation="sdpa",
        )
    return LlamaConfig(
        vocab_size=1000,
        hidden_size=64,
        intermediate_size=172,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
    )


def main() -> None:
    require_train_extra()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="Optimiser steps timed.")
    parser.add_argument("--warmup", type=int, default=2, help="Optimiser steps not timed.")
    parser.add_argument("--batch", type=int, default=64, help="Examples per optimiser step.")
    parser.add_argument("--micro-batch", type=int, default=0, help="Default: 8 (CUDA), 4 (CPU).")
    parser.add_argument("--length", type=int, default=0, help="Default: 2048 (CUDA), 128 (CPU).")
    parser.add_argument("--no-checkpointing", action="store_true")
    args = parser.parse_args()

    import torch
    from transformers import LlamaForCausalLM

    from inference.training.dropout import apply_residual_dropout

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    length = args.length or (2048 if cuda else 128)
    micro = args.micro_batch or (8 if cuda else 4)
    batch = args.batch if cuda else min(args.batch, 2 * micro)
    if batch % micro:
        parser.error("--batch must be a multiple of the micro-batch")
    accumulation = batch // micro
    if cuda:
        name = torch.cuda.get_device_name()
        print(f"Device: CUDA, {name}; ~1.1B LLaMA-shaped model, bf16 autocast")
    else:
        print("Device: CPU (no CUDA here); tiny config, to check the script only")

    config = model_config(cuda)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(device)
    model.config.use_cache = False
    if not args.no_checkpointing:
        enable = getattr(model, "activation_checkpointing_enable", None) or (
            model.gradient_checkpointing_enable
        )
        enable({"use_reentrant": False})
    apply_residual_dropout(model, 0.2)
    model.train()
    parameters = sum(p.numel() for p in model.parameters())
    counted = parameters - model.get_input_embeddings().weight.numel()
    flops_per_token = 6 * counted + 12 * config.num_hidden_layers * config.hidden_size * length
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=1e-5, betas=(0.9, 0.95), weight_decay=0.1, fused=cuda
    )
    print(
        f"Model: {parameters / 1e9:.3f}B parameters, {config.num_hidden_layers} layers, hidden "
        f"{config.hidden_size}; batch {batch} x {length} tokens = micro-batch {micro} x "
        f"{accumulation} accumulation; activation checkpointing "
        f"{'off' if args.no_checkpointing else 'on'}"
    )

    def step() -> None:
        for _ in range(accumulation):
            tokens = torch.randint(0, config.vocab_size, (micro, length), device=device)
            with torch.autocast(device_type=device, dtype=torch.bfloat16):
                loss = model(input_ids=tokens, labels=tokens).loss / accumulation
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    synchronize(torch, device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize(torch, device)
    seconds = (time.perf_counter() - started) / args.steps
    tokens_per_second = batch * length / seconds
    achieved = tokens_per_second * flops_per_token
    peak = matmul_rate(torch, device, 8192 if cuda else 512, 20 if cuda else 3)

    print(f"Step: {seconds:.3f} s for {batch * length:,} tokens")
    print(f"Throughput: {tokens_per_second:,.0f} tokens/s")
    print(f"Model FLOPs: {flop_rate(achieved)} ({flops_per_token / 1e9:.3g} GFLOP a token)")
    print(f"bf16 matmul measured: {flop_rate(peak)}")
    print(f"MFU: {100 * achieved / peak:.1f} % of the measured matmul rate")
    if cuda:
        print(f"Peak memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
