"""Generation backends: one interface over vLLM, OpenAI-compatible endpoints and transformers.

Everything here is free of the ORM. A backend takes requests (a prompt's chat messages and its
seed) and yields one result per request, text or error, as soon as each is ready. Heavy
libraries (torch, transformers, vllm) are imported only when a backend is loaded on a worker.
"""

import hashlib
import importlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol


class BackendConfigError(ValueError):
    """A model's backend settings cannot work; the message says what to fix."""


# ---------------------------------------------------------------- sampling


@dataclass(frozen=True)
class SamplingSettings:
    """The LIMA paper's sampling for locally run models; a model or a round overrides fields."""

    temperature: float = 0.7
    top_p: float = 0.9
    repetition_penalty: float = 1.2
    max_tokens: int = 2048
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @classmethod
    def from_overrides(cls, *layers: Mapping[str, Any] | None) -> "SamplingSettings":
        """The defaults with each layer's keys applied in order (later layers win)."""
        values: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}
        for layer in layers:
            if not layer:
                continue
            if not isinstance(layer, Mapping):
                raise BackendConfigError("Sampling settings must be a JSON object.")
            unknown = sorted(set(layer) - known)
            if unknown:
                raise BackendConfigError(
                    f"Unknown sampling setting {', '.join(map(repr, unknown))}; "
                    f"known: {', '.join(sorted(known))}."
                )
            values.update(layer)
        settings = cls(**{**values, "stop": tuple(values.get("stop") or ())})
        settings.validate()
        return settings

    def validate(self) -> None:
        problems = []
        if not _is_number(self.temperature) or self.temperature < 0:
            problems.append("temperature must be a number ≥ 0")
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            problems.append("top_p must be a number in (0, 1]")
        if not _is_number(self.repetition_penalty) or self.repetition_penalty <= 0:
            problems.append("repetition_penalty must be a number > 0")
        if not _is_int(self.max_tokens) or self.max_tokens < 1:
            problems.append("max_tokens must be an integer ≥ 1")
        if self.seed is not None and not _is_int(self.seed):
            problems.append("seed must be an integer")
        if not all(isinstance(s, str) and s for s in self.stop):
            problems.append("stop must be a list of non-empty strings")
        if problems:
            raise BackendConfigError("Bad sampling settings: " + "; ".join(problems) + ".")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def prompt_seed(run_seed: int, key: object) -> int:
    """A seed per prompt, stable across runs: a resumed run samples what a full run would."""
    digest = hashlib.sha256(f"{run_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


# How prompt_seed derives each prompt's seed from the run's. Part of every settings key: a new
# derivation must get a new name here, so that its responses never pass for the old ones.
PROMPT_SEED_POLICY = "sha256(run_seed:prompt_id)[:31 bits]"


# ---------------------------------------------------------------- requests and results


@dataclass(frozen=True)
class GenerationRequest:
    key: int
    # Chat messages ending with a user turn: [{"role": "user", "content": ...}, ...].
    messages: tuple[dict[str, str], ...]
    seed: int | None = None


@dataclass
class GenerationResult:
    key: int
    text: str | None = None
    error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    attempts: int = 1
    # What this response was made with beyond the sampling settings (seed, batch, ...).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.text is not None and not self.error


class Backend(Protocol):
    #: Sampling settings and options actually used, stored with every response.
    def describe(self, sampling: SamplingSettings) -> dict[str, Any]: ...

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingSettings
    ) -> Iterator[GenerationResult]: ...


def messages_for(text: str, turns: Sequence[str] = ()) -> tuple[dict[str, str], ...]:
    """Chat messages for a prompt and the turns after it (user, assistant, user, ...).

    A trailing assistant turn is the reference answer of a training example: it is dropped so
    that the model writes that turn.
    """
    contents = [text, *turns]
    if len(contents) % 2 == 0:
        contents.pop()
    roles = ("user", "assistant")
    return tuple(
        {"role": roles[index % 2], "content": content} for index, content in enumerate(contents)
    )


def plain_prompt(messages: Sequence[Mapping[str, str]], template: str) -> str:
    """A single-turn prompt in a plain format such as "{prompt}\\n\\n" (no chat template)."""
    if len(messages) != 1:
        raise ValueError(
            "a multi-turn prompt needs prompt_format 'chat' (a plain format has one turn)"
        )
    return template.replace("{prompt}", messages[0]["content"])


class LocalModelBackend:
    """What the backends that run a checkpoint with its own tokenizer share: how a request's
    messages become the prompt text, and how a batch's settings are described."""

    name: str
    options: Mapping[str, Any]
    tokenizer: Any

    def describe(self, sampling: SamplingSettings) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.options["model"],
            "prompt_format": self.options["prompt_format"],
            "end_of_turn": self.options["end_of_turn"],
            "sampling": sampling.as_dict(),
        }

    def _render(self, request: GenerationRequest) -> str:
        if self.options["prompt_format"] == "chat":
            return self.tokenizer.apply_chat_template(
                list(request.messages), tokenize=False, add_generation_prompt=True
            )
        return plain_prompt(request.messages, self.options["prompt_format"])


def trim_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut the text at the first stop string; says whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


# ---------------------------------------------------------------- configuration


_REQUIRED = object()


@dataclass(frozen=True)
class Option:
    kinds: tuple[type, ...]
    default: Any = _REQUIRED
    check: Callable[[Any], bool] | None = None
    hint: str = ""
    # False for how a model is run (concurrency, timeouts, memory), as opposed to what it
    # writes: changing such an option keeps the responses already made.
    affects_output: bool = True


def read_config(
    backend: str, config: Mapping[str, Any], options: Mapping[str, Option]
) -> dict[str, Any]:
    """The config with defaults filled in; unknown keys, missing keys and bad values refused."""
    if not isinstance(config, Mapping):
        raise BackendConfigError(f"The {backend} config must be a JSON object.")
    problems = []
    unknown = sorted(set(config) - set(options) - {"sampling"})
    if unknown:
        problems.append(
            f"unknown key {', '.join(map(repr, unknown))} (known: "
            f"{', '.join(sorted([*options, 'sampling']))})"
        )
    values: dict[str, Any] = {}
    for name, option in options.items():
        if name not in config or config[name] is None:
            if option.default is _REQUIRED:
                problems.append(f"{name!r} is required: {option.hint}")
            values[name] = None if option.default is _REQUIRED else option.default
            continue
        value = config[name]
        wrong_kind = not isinstance(value, option.kinds) or (
            isinstance(value, bool) and bool not in option.kinds
        )
        if wrong_kind or (option.check is not None and not option.check(value)):
            problems.append(f"{name!r} = {value!r} is not valid: {option.hint}")
        values[name] = value
    if problems:
        raise BackendConfigError(f"Fix the {backend} model config: " + "; ".join(problems) + ".")
    try:
        SamplingSettings.from_overrides(config.get("sampling"))
    except BackendConfigError as error:
        raise BackendConfigError(f"Fix the {backend} model config's 'sampling': {error}") from None
    return values


def is_prompt_format(value: str) -> bool:
    return value == "chat" or "{prompt}" in value


PROMPT_FORMAT_HINT = (
    "'chat' (the tokenizer's chat template) or a plain format containing {prompt}, e.g. "
    '"{prompt}\\n\\n"'
)


# What every backend that runs a checkpoint with its own tokenizer takes (vLLM, transformers).
LOCAL_MODEL_OPTIONS = {
    "model": Option((str,), hint="a local checkpoint folder or a hub id", check=bool),
    "prompt_format": Option((str,), "chat", is_prompt_format, PROMPT_FORMAT_HINT),
    "chat_template": Option((str,), "", hint="a Jinja chat template replacing the tokenizer's"),
    "end_of_turn": Option(
        (str,), "", hint="an end-of-turn token that stops generation, e.g. <EOT>"
    ),
}


def is_local_path(model: str) -> bool:
    """A checkpoint folder rather than a hub id ("org/name")."""
    return model.startswith(("/", "./", "../", "~"))


# ---------------------------------------------------------------- registry

BACKENDS: dict[str, str] = {
    "transformers": "inference.backends.transformers",
    "openai": "inference.backends.openai_compat",
    "vllm": "inference.backends.vllm",
}

# Which Celery queue runs each backend's generation: GPU, API and CPU work scale separately.
QUEUES: dict[str, str] = {"vllm": "gpu", "openai": "api", "transformers": "default"}


def _module(backend: str):
    if backend not in BACKENDS:
        raise BackendConfigError(
            f"Unknown backend {backend!r}: use one of {', '.join(sorted(BACKENDS))} "
            "(or 'imported' for responses imported from files)."
        )
    return importlib.import_module(BACKENDS[backend])


def backend_check(backend: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Check a model's settings without loading anything; returns them with defaults filled."""
    return _module(backend).check_config(config)


def backend_load(backend: str, config: Mapping[str, Any]) -> Backend:
    """The backend ready to generate, on the worker: loads weights, opens clients."""
    return _module(backend).load(config)


def backends_release() -> None:
    """Let go of what the backends loaded in this process keep loaded between tasks (a vLLM
    engine, a transformers model), e.g. before a training run needs the GPU."""
    for name in BACKENDS.values():
        module = sys.modules.get(name)
        release = getattr(module, "release", None)
        if callable(release):
            release()


def settings_key(backend: str, config: Mapping[str, Any], sampling: SamplingSettings) -> str:
    """The key generated responses are kept under: the same key, the same way of writing them.

    A short SHA-256 of the canonical JSON of what shapes the text: the backend, the model's
    options that affect output (defaults filled in, so that spelling a default out changes
    nothing), the effective sampling with the run's seed, and how per-prompt seeds are derived.
    Changing what goes in here gives every setting a new key: earlier responses are then made
    again, never mixed in.
    """
    module = _module(backend)
    options = module.OPTIONS
    checked = backend_check(backend, config)
    # What the engine itself would refuse or silently change is refused here, at launch.
    sampling_check = getattr(module, "check_sampling", None)
    if sampling_check is not None:
        sampling_check(sampling, checked)
    sampled = sampling.as_dict()
    for name in ("temperature", "top_p", "repetition_penalty"):
        sampled[name] = float(sampled[name])
    canonical = json.dumps(
        {
            "backend": backend,
            "config": {k: v for k, v in checked.items() if options[k].affects_output},
            "sampling": sampled,
            "seed_policy": PROMPT_SEED_POLICY,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
