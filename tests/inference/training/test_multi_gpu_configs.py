"""The multi-GPU launch configs start: accelerate's DeepSpeed file points to a DeepSpeed config
whose optimizer DeepSpeed runs on the CPU under offload (a torch AdamW is refused there)."""

import json
from pathlib import Path

import pytest
import yaml

from inference.training.recipe import Recipe

ROOT = Path(__file__).resolve().parents[3]
ACCELERATE = ROOT / "configs" / "accelerate" / "deepspeed_zero3_offload.yaml"


def deepspeed_file() -> Path:
    settings = yaml.safe_load(ACCELERATE.read_text())["deepspeed_config"]
    # accelerate refuses DeepSpeed keys beside a config file: everything is in the file.
    assert set(settings) <= {"deepspeed_config_file", "zero3_init_flag"}
    return ROOT / settings["deepspeed_config_file"]


def test_the_accelerate_file_names_a_deepspeed_config_with_its_own_optimizer():
    config = json.loads(deepspeed_file().read_text())
    zero = config["zero_optimization"]
    assert zero["stage"] == 3 and zero["offload_optimizer"]["device"] == "cpu"
    assert config["optimizer"]["type"] == "AdamW"  # DeepSpeed's, built as DeepSpeedCPUAdam
    assert zero["stage3_gather_16bit_weights_on_model_save"] is True  # vLLM loads checkpoints


def test_the_trainer_fills_the_deepspeed_config_from_the_lima_recipe():
    pytest.importorskip("deepspeed", reason="pip install '.[deepspeed]'")
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    recipe = Recipe()
    config = HfTrainerDeepSpeedConfig(json.loads(deepspeed_file().read_text()))
    arguments = TrainingArguments(
        output_dir="unused",
        learning_rate=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        adam_beta1=recipe.adam_beta1,
        adam_beta2=recipe.adam_beta2,
        adam_epsilon=recipe.adam_epsilon,
        max_grad_norm=recipe.max_grad_norm,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=4,
        optim="adamw_torch",
    )
    config.trainer_config_process(arguments)
    assert config.is_zero3() and config.is_offload()
    assert config.config["optimizer"]["params"] == {
        "lr": recipe.learning_rate,
        "betas": [recipe.adam_beta1, recipe.adam_beta2],
        "eps": recipe.adam_epsilon,
        "weight_decay": recipe.weight_decay,
    }
    assert config.config["gradient_clipping"] == recipe.max_grad_norm
