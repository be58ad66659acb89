import pytest

from inference.training.dropout import (
    UnsupportedArchitecture,
    apply_residual_dropout,
    branch_probabilities,
    layer_probabilities,
)

torch = pytest.importorskip("torch")


def test_layer_i_of_n_drops_out_with_probability_p_times_i_over_n_minus_1():
    assert layer_probabilities(4, 0.3) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert layer_probabilities(80, 0.3)[0] == 0.0
    assert layer_probabilities(80, 0.3)[40] == pytest.approx(0.3 * 40 / 79)
    assert layer_probabilities(80, 0.3)[-1] == pytest.approx(0.3)
    assert layer_probabilities(1, 0.2) == [0.2]


def _model(base_model):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(base_model)


def test_it_hooks_both_residual_branches_of_every_decoder_layer(base_model):
    model = _model(base_model)
    keys = set(model.state_dict())

    dropout = apply_residual_dropout(model, 0.3)

    assert branch_probabilities(model) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert dropout.probabilities == pytest.approx([0.0, 0.1, 0.2, 0.3])
    for layer in model.model.layers:
        assert len(layer.self_attn._forward_hooks) == len(layer.mlp._forward_hooks) == 1
    # Hooks, not wrappers: the saved weights keep the base architecture's names.
    assert set(model.state_dict()) == keys


def test_it_drops_out_in_training_mode_only(base_model):
    model = _model(base_model)
    inputs = torch.tensor([[2, 5, 6, 7, 8, 9, 10, 11]])
    with torch.no_grad():
        model.eval()
        before = model(inputs).logits
        apply_residual_dropout(model, 0.9)
        assert torch.equal(model(inputs).logits, before)
        model.train()
        torch.manual_seed(0)
        assert not torch.allclose(model(inputs).logits, before)
        # The bottom layer has none: its MLP's output is untouched even in training mode.
        seen = {}
        handle = model.model.layers[0].mlp.register_forward_hook(
            lambda module, args, output: seen.setdefault("mlp", output)
        )
        hidden = torch.randn(1, 8, 32)
        assert torch.equal(model.model.layers[0].mlp(hidden), seen["mlp"])
        handle.remove()


def test_it_refuses_a_model_without_llama_decoder_layers():
    with pytest.raises(UnsupportedArchitecture, match="set residual_dropout to 0"):
        apply_residual_dropout(torch.nn.Linear(2, 2), 0.3)
