"""LIMA's residual dropout: 0.0 at the bottom decoder layer rising linearly to p at the top.

Dropout is applied to what each sub-layer adds to the residual stream, before the addition:
the output of the attention block and of the MLP of every LLaMA-family decoder layer
(`model.model.layers[i].self_attn` and `.mlp`: LLaMA, Mistral, Qwen2, ...). It is added with
forward hooks, so the module tree and the saved weights stay those of the base architecture
(a checkpoint loads in vLLM unchanged), and it only acts in training mode.
"""

from collections.abc import Sequence
from typing import Any


class UnsupportedArchitecture(ValueError):
    """The model has no LLaMA-style decoder layers to put residual dropout on."""


def layer_probabilities(layers: int, top: float) -> list[float]:
    """p_i = top · i / (n - 1) for layer i of n (a single layer gets `top`)."""
    if layers < 1:
        raise ValueError("a model has at least one layer")
    if layers == 1:
        return [top]
    return [top * index / (layers - 1) for index in range(layers)]


def decoder_layers(model: Any) -> Sequence[Any]:
    """The decoder layers of a LLaMA-family causal LM, each with `self_attn` and `mlp`."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None or not len(layers):
        raise UnsupportedArchitecture(
            f"{type(model).__name__} has no model.layers: residual dropout is implemented for "
            "LLaMA-family decoder layers; set residual_dropout to 0 to train without it."
        )
    for index, layer in enumerate(layers):
        if not hasattr(layer, "self_attn") or not hasattr(layer, "mlp"):
            raise UnsupportedArchitecture(
                f"Decoder layer {index} ({type(layer).__name__}) has no self_attn and mlp: "
                "residual dropout is implemented for LLaMA-family decoder layers; set "
                "residual_dropout to 0 to train without it."
            )
    return layers


class _BranchDropout:
    """A forward hook dropping out a sub-layer's output (the first element of a tuple)."""

    def __init__(self, probability: float) -> None:
        self.probability = probability

    def __call__(self, module: Any, args: Any, output: Any) -> Any:
        if not module.training or self.probability == 0:
            return output
        import torch.nn.functional as F

        if isinstance(output, tuple):
            return (F.dropout(output[0], self.probability, training=True), *output[1:])
        return F.dropout(output, self.probability, training=True)


class ResidualDropout:
    """The hooks on a model; `remove()` takes them off again."""

    def __init__(self, probabilities: list[float], handles: list[Any]) -> None:
        self.probabilities = probabilities
        self._handles = handles

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def apply_residual_dropout(model: Any, top: float) -> ResidualDropout:
    """Hook dropout onto both residual branches of every decoder layer."""
    layers = decoder_layers(model)
    probabilities = layer_probabilities(len(layers), top)
    handles = []
    for layer, probability in zip(layers, probabilities, strict=True):
        for branch in (layer.self_attn, layer.mlp):
            handles.append(branch.register_forward_hook(_BranchDropout(probability)))
    return ResidualDropout(probabilities, handles)


def branch_probabilities(model: Any) -> list[float]:
    """The dropout of each decoder layer as hooked (read back from the attention hooks)."""
    found = []
    for layer in decoder_layers(model):
        hooks = [
            h for h in layer.self_attn._forward_hooks.values() if isinstance(h, _BranchDropout)
        ]
        found.append(hooks[0].probability if hooks else 0.0)
    return found
