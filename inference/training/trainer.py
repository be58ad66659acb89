"""Fine-tuning a base model with the LIMA recipe on transformers' Trainer. No database here.

The parts the recipe owns sit around the Trainer: the end-of-turn token and assistant-only
labels (`eot`), residual dropout (`dropout`), AdamW with β2 0.95 and a linear decay from 1e-5
to exactly 1e-6 at the last step with no warm-up (`LimaTrainer.create_scheduler`), and a
callback that reports progress, stops on request and keeps only the checkpoints worth keeping.
The Trainer brings gradient accumulation, mixed precision, checkpointing and resumption, and
FSDP or DeepSpeed when started under `accelerate launch` (docs/training.md).

Checkpoints are saved at every epoch's end (and every `save_every_steps` steps, and when
stopped). Once a newer one is saved, an older one keeps only its weights if it ends an epoch
that checkpoint selection will look at, and is deleted otherwise; the newest always keeps the
optimizer state, so that a restarted worker continues from it.
"""

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypedDict

from inference.training import memory
from inference.training.data import Example, LengthStats, length_stats
from inference.training.dropout import apply_residual_dropout
from inference.training.eot import (
    IGNORE_INDEX,
    Encoded,
    add_end_of_turn,
    encode_conversation,
    prepare_model_and_tokenizer,
)
from inference.training.recipe import Recipe

CHECKPOINT_MARK = "evalplatform_checkpoint.json"
# Written once training has run to its end: from then on the run only selects.
TRAINED_MARK = "evalplatform_trained.json"
# Files of a checkpoint needed only to resume training from it (Trainer, FSDP, DeepSpeed).
TRAINING_STATE_PREFIXES = ("optimizer", "scheduler", "rng_state", "scaler", "global_step")
TRAINING_STATE_FILES = ("latest", "zero_to_fp32.py")
# The database is asked whether to stop at most this often.
STOP_CHECK_SECONDS = 2.0


class TrainingInvalid(ValueError):
    """The run cannot start as configured; the message says what to fix."""


# ---------------------------------------------------------------- before training


def is_local_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~"))


def _transformers():
    try:
        import transformers
    except ImportError as error:
        raise TrainingInvalid(
            f"transformers is not installed here ({error}): install the train extra, "
            "pip install '.[train]'."
        ) from None
    return transformers


def load_config(base_model: str) -> Any:
    """The base model's config, or a clear error naming what is missing."""
    AutoConfig = _transformers().AutoConfig

    if is_local_path(base_model):
        folder = Path(base_model).expanduser()
        if not folder.is_dir():
            raise TrainingInvalid(
                f"The base model folder {folder} does not exist on this worker: give a folder "
                "saved with save_pretrained (config.json, weights, tokenizer) or a hub id."
            )
        if not (folder / "config.json").is_file():
            raise TrainingInvalid(
                f"{folder} has no config.json: it is not a transformers checkpoint folder."
            )
    try:
        return AutoConfig.from_pretrained(os.path.expanduser(base_model))
    except (OSError, ValueError) as error:
        raise TrainingInvalid(
            f"Could not read the base model {base_model!r}: {error}. Give a checkpoint folder "
            "on this worker or a hub id it can download (HF_TOKEN for gated models)."
        ) from None


def load_tokenizer(base_model: str) -> Any:
    AutoTokenizer = _transformers().AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(os.path.expanduser(base_model))
    except (OSError, ValueError) as error:
        raise TrainingInvalid(f"Could not load the tokenizer of {base_model!r}: {error}") from None


def encode_examples(
    tokenizer: Any, examples: Sequence[Example], *, end_of_turn: str, max_length: int
) -> tuple[list[Encoded], LengthStats]:
    """Every example encoded as it will be trained on, and the set's length statistics."""
    token_id, _ = add_end_of_turn(tokenizer, end_of_turn)
    encoded = [
        encode_conversation(
            tokenizer, example.conversations, end_of_turn=token_id, max_length=max_length
        )
        for example in examples
    ]
    stats = length_stats(
        examples,
        [e.full_length for e in encoded],
        max_length=max_length,
        tokenizer=getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__,
        answer_starts=[e.answer_start for e in encoded],
    )
    return encoded, stats


@dataclass(frozen=True)
class TrainingPlan:
    """The resolved recipe and how it runs on the hardware at hand."""

    recipe: dict[str, Any]
    parameters: int
    processes: int
    device: str
    precision: str
    micro_batch_size: int
    gradient_accumulation: int
    memory_needed_gb: float
    memory_available_gb: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingPlan":
        return cls(**data)

    @property
    def resolved(self) -> Recipe:
        return Recipe(**self.recipe)


def _device_and_precision(recipe: Recipe) -> tuple[str, str]:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = recipe.precision
    if precision == "auto":
        precision = "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision in ("bf16", "fp16") and device == "cpu":
        raise TrainingInvalid(
            f"precision {precision!r} needs a GPU and this worker has none: use 'fp32' or 'auto'."
        )
    return device, precision


def accelerate_config_path(name: str) -> Path:
    """A config file as given, or relative to the project folder (configs/accelerate/...)."""
    path = Path(name).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return Path(__file__).resolve().parents[2] / path


class _MemorySettings(TypedDict):
    """The keyword arguments that `memory.micro_batch_for` and `memory.training_bytes` share."""

    max_length: int
    gradient_checkpointing: bool
    half_precision: bool
    layout: memory.StateLayout


def plan_training(*, config: Any, recipe: Recipe) -> TrainingPlan:
    """Resolve the size-dependent defaults and choose the micro-batch that fits in memory.

    Raises TrainingInvalid when even one example at a time cannot fit.
    """
    shape = memory.model_shape(config)
    recipe = recipe.resolve(shape.parameters)
    device, precision = _device_and_precision(recipe)
    processes = recipe.num_processes
    layout = memory.StateLayout()
    if recipe.launcher == "accelerate":
        config_file = accelerate_config_path(recipe.accelerate_config)
        if not config_file.is_file():
            raise TrainingInvalid(f"The accelerate config {config_file} does not exist.")
        layout = memory.state_layout(config_file, processes)
    batch_size = recipe.batch_size
    assert batch_size is not None  # Recipe.resolve always fills in the batch size.
    if batch_size % processes:
        raise TrainingInvalid(
            f"A batch of {batch_size} examples does not split evenly across {processes} processes."
        )
    per_process = batch_size // processes
    if recipe.memory_limit_gb is not None:
        limit = int(recipe.memory_limit_gb * memory.GIB)
    else:
        limit = memory.available_bytes(device)
    half = precision in ("bf16", "fp16")
    settings: _MemorySettings = {
        "max_length": recipe.max_length,
        "gradient_checkpointing": recipe.gradient_checkpointing,
        "half_precision": half,
        "layout": layout,
    }
    micro: int | None
    if recipe.micro_batch_size is not None:
        micro = recipe.micro_batch_size
        if per_process % micro:
            raise TrainingInvalid(
                f"micro_batch_size {micro} does not divide the {per_process} examples each "
                "process takes per step."
            )
    else:
        micro = memory.micro_batch_for(
            shape, per_process_batch=per_process, limit_bytes=limit, **settings
        )
    needed = memory.training_bytes(shape, micro_batch=micro or 1, **settings)
    if micro is None or needed > limit:
        raise TrainingInvalid(
            f"Not enough memory: fine-tuning {shape.parameters / 1e9:.1f}B parameters at "
            f"{recipe.max_length} tokens needs about {needed / memory.GIB:.1f} GiB per process "
            f"(weights, gradients and AdamW state take {layout.bytes_per_parameter:g} bytes a "
            f"parameter{f', split {layout.shards} ways' if layout.shards > 1 else ''}), and "
            f"{limit / memory.GIB:.1f} "
            f"GiB is available on {device}. Shard the model across more GPUs (launcher "
            "'accelerate' with an FSDP or DeepSpeed config, docs/training.md), lower "
            "micro_batch_size or max_length, or turn on gradient_checkpointing."
        )
    return TrainingPlan(
        recipe=recipe.as_dict(),
        parameters=shape.parameters,
        processes=processes,
        device=device,
        precision=precision,
        micro_batch_size=micro,
        gradient_accumulation=per_process // micro,
        memory_needed_gb=round(needed / memory.GIB, 2),
        memory_available_gb=round(limit / memory.GIB, 2),
    )


# ---------------------------------------------------------------- the schedule


def linear_to_floor(optimizer: Any, *, steps: int, start: float, end: float, warmup: int = 0):
    """A LambdaLR from `start` at the first step to exactly `end` at the last (step `steps` - 1).

    With warm-up, the rate rises linearly over the first `warmup` steps, then decays.
    """
    from torch.optim.lr_scheduler import LambdaLR

    floor = end / start

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        span = steps - 1 - warmup
        if span <= 0:
            return 1.0
        done = min(step - warmup, span) / span
        return 1.0 - (1.0 - floor) * done

    return LambdaLR(optimizer, factor)


# ---------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    epoch: int
    epoch_end: bool

    @property
    def resumable(self) -> bool:
        return (
            any(p.name.startswith(TRAINING_STATE_PREFIXES) for p in self.path.iterdir())
            and (self.path / "trainer_state.json").is_file()
        )


def checkpoints(output_dir: Path) -> list[Checkpoint]:
    """The complete checkpoints (marked once saved), oldest first."""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        mark = path / CHECKPOINT_MARK
        if not mark.is_file():
            continue
        data = json.loads(mark.read_text())
        found.append(Checkpoint(path, int(data["step"]), int(data["epoch"]), data["epoch_end"]))
    return sorted(found, key=lambda c: c.step)


def last_checkpoint(output_dir: Path) -> Checkpoint | None:
    resumable = [c for c in checkpoints(output_dir) if c.resumable]
    return resumable[-1] if resumable else None


def _strip_training_state(path: Path) -> None:
    for entry in path.iterdir():
        if entry.name.startswith(TRAINING_STATE_PREFIXES) or entry.name in TRAINING_STATE_FILES:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def prune_checkpoints(output_dir: Path, *, keep_epochs: Sequence[int]) -> None:
    """All but the newest checkpoint: weights only if they end an epoch in `keep_epochs`,
    deleted otherwise. Folders never marked complete (a crash while saving) go too."""
    output_dir = Path(output_dir)
    complete = checkpoints(output_dir)
    if not complete:
        return
    newest = complete[-1]
    for path in output_dir.glob("checkpoint-*"):
        if path == newest.path:
            continue
        if not (path / CHECKPOINT_MARK).is_file() and _step_of(path) < newest.step:
            shutil.rmtree(path, ignore_errors=True)
    for checkpoint in complete[:-1]:
        if checkpoint.epoch_end and checkpoint.epoch in keep_epochs:
            _strip_training_state(checkpoint.path)
        else:
            shutil.rmtree(checkpoint.path, ignore_errors=True)


def _step_of(path: Path) -> int:
    try:
        return int(path.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


# ---------------------------------------------------------------- training


@dataclass(frozen=True)
class Progress:
    epoch: float
    step: int
    max_steps: int
    loss: float
    learning_rate: float
    tokens_per_second: float | None
    eta_seconds: float | None
    tokens_seen: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Outcome:
    stopped: bool
    step: int
    max_steps: int
    resumed_from: int | None


Report = Callable[[Progress], None]
ShouldStop = Callable[[], bool]


class _ExampleDataset:
    def __init__(self, encoded: Sequence[Encoded]) -> None:
        self.items = [{"input_ids": e.input_ids, "labels": e.labels} for e in encoded]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.items[index]


def _collate(pad_id: int, multiple: int) -> Callable[[list[dict]], dict]:
    def collate(features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        width = math.ceil(longest / multiple) * multiple
        ids, labels, mask = [], [], []
        for feature in features:
            padding = width - len(feature["input_ids"])
            ids.append(feature["input_ids"] + [pad_id] * padding)
            labels.append(feature["labels"] + [IGNORE_INDEX] * padding)
            mask.append([1] * len(feature["input_ids"]) + [0] * padding)
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }

    return collate


def _trainer_classes():
    from transformers import Trainer, TrainerCallback

    class LimaTrainer(Trainer):
        lima_recipe: Recipe  # Set by train() before training starts.

        def create_scheduler(self, num_training_steps: int, optimizer: Any = None):
            if self.lr_scheduler is None:
                recipe: Recipe = self.lima_recipe
                self.lr_scheduler = linear_to_floor(
                    optimizer or self.optimizer,
                    steps=num_training_steps,
                    start=recipe.learning_rate,
                    end=recipe.final_learning_rate,
                    warmup=recipe.warmup_steps,
                )
                self._created_lr_scheduler = True
            return self.lr_scheduler

    class RunCallback(TrainerCallback):
        def __init__(self, recipe: Recipe, report: Report | None, should_stop: ShouldStop | None):
            self.recipe = recipe
            self.report = report
            self.should_stop = should_stop
            self.stopped = False
            self.saved_step = -1
            self._checked_at = 0.0
            self._stop_answer = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.monotonic()
            self.first_step = state.global_step
            self.first_tokens = state.num_input_tokens_seen

        def _stop_requested(self, args, state) -> bool:
            # Rank 0 asks (at most every few seconds) and tells the others, so that every
            # process stops at the same step.
            answer = False
            if state.is_world_process_zero and self.should_stop is not None:
                now = time.monotonic()
                if now - self._checked_at >= STOP_CHECK_SECONDS:
                    self._checked_at = now
                    self._stop_answer = bool(self.should_stop())
                answer = self._stop_answer
            if args.world_size > 1:
                from accelerate.utils import broadcast_object_list

                answer = broadcast_object_list([answer], from_process=0)[0]
            return answer

        def on_step_end(self, args, state, control, **kwargs):
            every = self.recipe.save_every_steps
            if every and state.global_step % every == 0:
                control.should_save = True
            if self._stop_requested(args, state):
                self.stopped = True
                control.should_training_stop = True
                control.should_save = True
            return control

        def on_epoch_end(self, args, state, control, **kwargs):
            # Already saved at this step (a periodic save on the epoch's last step, or a stop).
            if self.saved_step == state.global_step:
                control.should_save = False
            return control

        def on_save(self, args, state, control, **kwargs):
            self.saved_step = state.global_step
            if not state.is_world_process_zero:
                return control
            epoch = state.epoch or 0.0
            epoch_end = abs(epoch - round(epoch)) < 1e-9
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            mark = {"step": state.global_step, "epoch": round(epoch) if epoch_end else int(epoch)}
            mark["epoch_end"] = epoch_end
            (folder / CHECKPOINT_MARK).write_text(json.dumps(mark))
            prune_checkpoints(Path(args.output_dir), keep_epochs=self.recipe.selection_epochs)
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs or not state.is_world_process_zero:
                return control
            if self.report is None:
                return control
            elapsed = time.monotonic() - self.started
            steps = state.global_step - self.first_step
            tokens = state.num_input_tokens_seen - self.first_tokens
            per_step = elapsed / steps if steps else None
            self.report(
                Progress(
                    epoch=round(state.epoch or 0.0, 4),
                    step=state.global_step,
                    max_steps=state.max_steps,
                    loss=float(logs["loss"]),
                    learning_rate=float(logs.get("learning_rate", 0.0)),
                    tokens_per_second=tokens / elapsed if elapsed > 0 else None,
                    eta_seconds=(
                        per_step * (state.max_steps - state.global_step) if per_step else None
                    ),
                    tokens_seen=int(state.num_input_tokens_seen),
                )
            )
            return control

    return LimaTrainer, RunCallback


def train(
    *,
    base_model: str,
    examples: Sequence[Example],
    plan: TrainingPlan,
    output_dir: Path,
    report: Report | None = None,
    should_stop: ShouldStop | None = None,
    callbacks: Sequence[Any] = (),
) -> Outcome:
    """Train, or continue from the newest resumable checkpoint in `output_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, TrainingArguments, set_seed
    from transformers.trainer_callback import PrinterCallback

    recipe = plan.resolved
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    set_seed(recipe.seed)
    tokenizer = load_tokenizer(base_model)
    model = AutoModelForCausalLM.from_pretrained(
        os.path.expanduser(base_model), dtype=torch.float32
    )
    end_of_turn = prepare_model_and_tokenizer(model, tokenizer, recipe.end_of_turn)
    model.config.use_cache = False
    if recipe.residual_dropout:
        apply_residual_dropout(model, recipe.residual_dropout)
    encoded = [
        encode_conversation(
            tokenizer, example.conversations, end_of_turn=end_of_turn, max_length=recipe.max_length
        )
        for example in examples
    ]
    # An example trimmed before its first answer token has nothing to learn from.
    encoded = [e for e in encoded if any(label != IGNORE_INDEX for label in e.labels)]
    if not encoded:
        raise TrainingInvalid(
            f"No example keeps an answer token within max_length={recipe.max_length}."
        )
    arguments = TrainingArguments(
        **_checkpointing_argument(TrainingArguments, recipe.gradient_checkpointing),
        output_dir=str(output_dir),
        num_train_epochs=recipe.epochs,
        per_device_train_batch_size=plan.micro_batch_size,
        gradient_accumulation_steps=plan.gradient_accumulation,
        learning_rate=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        adam_beta1=recipe.adam_beta1,
        adam_beta2=recipe.adam_beta2,
        adam_epsilon=recipe.adam_epsilon,
        max_grad_norm=recipe.max_grad_norm,
        optim="adamw_torch",
        logging_steps=1,
        save_strategy="epoch",
        bf16=plan.precision == "bf16",
        fp16=plan.precision == "fp16",
        use_cpu=plan.device == "cpu",
        train_sampling_strategy="group_by_length" if recipe.group_by_length else "random",
        seed=recipe.seed,
        data_seed=recipe.seed,
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
    )
    trainer_class, callback_class = _trainer_classes()
    run_callback = callback_class(recipe, report, should_stop)
    trainer = trainer_class(
        model=model,
        args=arguments,
        train_dataset=_ExampleDataset(encoded),
        data_collator=_collate(tokenizer.pad_token_id, 8 if plan.device == "cuda" else 1),
        processing_class=tokenizer,
        callbacks=[run_callback, *callbacks],
    )
    trainer.lima_recipe = recipe
    trainer.remove_callback(PrinterCallback)
    resume = last_checkpoint(output_dir)
    trainer.train(resume_from_checkpoint=str(resume.path) if resume else None)
    return Outcome(
        stopped=run_callback.stopped,
        step=trainer.state.global_step,
        max_steps=trainer.state.max_steps,
        resumed_from=resume.step if resume else None,
    )


def _checkpointing_argument(arguments_class: type, wanted: bool) -> dict[str, Any]:
    """Keyword arguments for TrainingArguments that turn on activation checkpointing by the
    Trainer, unless FSDP does it (its config's fsdp_activation_checkpointing, which must not be
    combined with the Trainer's)."""
    if os.environ.get("FSDP_ACTIVATION_CHECKPOINTING", "false").lower() == "true":
        wanted = False
    names = {f.name for f in fields(arguments_class)}
    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in names
        else "gradient_checkpointing"
    )
    return {name: wanted}


def finish_checkpoints(output_dir: Path, *, keep_epochs: Sequence[int]) -> list[Checkpoint]:
    """After the last epoch: no checkpoint needs its optimizer state any more. Returns the
    checkpoints to select from."""
    output_dir = Path(output_dir)
    (output_dir / TRAINED_MARK).write_text(
        json.dumps({"checkpoints": len(checkpoints(output_dir))})
    )
    for checkpoint in checkpoints(output_dir):
        _strip_training_state(checkpoint.path)
    return [c for c in checkpoints(output_dir) if c.epoch_end and c.epoch in keep_epochs]


def training_finished(output_dir: Path) -> bool:
    return (Path(output_dir) / TRAINED_MARK).is_file()
