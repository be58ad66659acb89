"""The generation backends without a database: sampling, configuration, transformers, vLLM."""

import re
import sys
import types

import pytest

from inference.backends import vllm as vllm_backend
from inference.backends.base import (
    BackendConfigError,
    GenerationRequest,
    SamplingSettings,
    backend_check,
    backend_load,
    messages_for,
    prompt_seed,
    settings_key,
)
from tests.support.tiny_model import build_tiny_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("transformers", reason="the train extra (transformers) is not installed")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


def requests_for(texts, seed=7):
    return [
        GenerationRequest(key=i, messages=messages_for(text), seed=prompt_seed(seed, i))
        for i, text in enumerate(texts)
    ]


# ---------------------------------------------------------------- sampling and configuration


def test_it_defaults_to_the_papers_sampling():
    sampling = SamplingSettings.from_overrides()
    assert (sampling.top_p, sampling.temperature, sampling.repetition_penalty) == (0.9, 0.7, 1.2)
    assert sampling.max_tokens == 2048


def test_it_applies_model_then_round_overrides():
    sampling = SamplingSettings.from_overrides(
        {"temperature": 0.2, "max_tokens": 64}, {"max_tokens": 16, "stop": ["###"]}
    )
    assert (sampling.temperature, sampling.max_tokens, sampling.stop) == (0.2, 16, ("###",))
    assert sampling.top_p == 0.9


@pytest.mark.parametrize(
    "override, message",
    [
        ({"temprature": 0.5}, "Unknown sampling setting 'temprature'"),
        ({"top_p": 1.5}, "top_p must be a number in (0, 1]"),
        ({"max_tokens": 0}, "max_tokens must be an integer ≥ 1"),
        ({"max_tokens": "many"}, "max_tokens must be an integer ≥ 1"),
    ],
)
def test_it_refuses_bad_sampling_with_what_to_fix(override, message):
    with pytest.raises(BackendConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SamplingSettings.from_overrides(override)


def test_it_refuses_an_unknown_backend_naming_the_known_ones():
    with pytest.raises(BackendConfigError) as error:
        backend_check("llamacpp", {"model": "x"})
    assert "Unknown backend 'llamacpp'" in str(error.value)
    assert "openai, transformers, vllm" in str(error.value)


def test_it_refuses_unknown_keys_and_a_missing_model():
    with pytest.raises(BackendConfigError) as error:
        backend_check("transformers", {"modle": "/models/x", "batch_size": 0})
    message = str(error.value)
    assert "unknown key 'modle'" in message
    assert "'model' is required" in message
    assert "'batch_size' = 0 is not valid" in message


def test_it_fills_in_defaults_for_a_valid_config():
    options = backend_check("openai", {"model": "gpt-4", "sampling": {"temperature": 0.5}})
    assert options["base_url"] == "https://api.openai.com/v1"
    assert options["api_key_env"] == "OPENAI_API_KEY"
    assert options["concurrency"] == 8


def test_it_gives_each_prompt_a_stable_seed():
    assert prompt_seed(1234, 5) == prompt_seed(1234, 5)
    assert prompt_seed(1234, 5) != prompt_seed(1234, 6)
    assert prompt_seed(1234, 5) != prompt_seed(4321, 5)
    assert 0 <= prompt_seed(1234, 5) < 2**31


def test_it_keys_settings_by_what_shapes_the_text_and_nothing_else():
    config = {"model": "gpt-4", "api_key_env": "OPENAI_API_KEY"}
    paper = SamplingSettings.from_overrides({"seed": 7})
    key = settings_key("openai", config, paper)
    assert re.fullmatch(r"[0-9a-f]{16}", key)

    # Defaults spelled out, an integer for a float, and how the model is run change nothing.
    assert key == settings_key("openai", {"model": "gpt-4", "endpoint": "chat"}, paper)
    assert key == settings_key(
        "openai", {**config, "concurrency": 64, "timeout": 5, "rpm_limit": 100}, paper
    )
    assert settings_key(
        "openai", config, SamplingSettings.from_overrides({"seed": 7, "temperature": 1})
    ) == settings_key(
        "openai", config, SamplingSettings.from_overrides({"seed": 7, "temperature": 1.0})
    )

    others = [
        settings_key("openai", config, SamplingSettings.from_overrides({"seed": 7, "top_p": 1})),
        settings_key("openai", config, SamplingSettings.from_overrides({"seed": 8})),
        settings_key("openai", config, SamplingSettings.from_overrides()),
        settings_key("openai", {**config, "end_of_turn": "<EOT>"}, paper),
        settings_key("openai", {**config, "model": "gpt-4o"}, paper),
        settings_key("vllm", {"model": "gpt-4"}, paper),
    ]
    assert len({key, *others}) == 1 + len(others)


def test_it_builds_chat_messages_and_drops_a_trailing_reference_answer():
    assert messages_for("Hi") == ({"role": "user", "content": "Hi"},)
    dialogue = messages_for("Hi", ["Hello!", "How are you?", "Fine, thanks."])
    assert [m["role"] for m in dialogue] == ["user", "assistant", "user"]


# ---------------------------------------------------------------- transformers


def test_it_generates_a_batch_with_transformers_on_a_tiny_llama(tiny_model):
    config = {"model": str(tiny_model), "batch_size": 4}
    backend = backend_load("transformers", config)
    sampling = SamplingSettings.from_overrides({"max_tokens": 6})
    texts = ["write a poem about the sea", "what is the capital of france", "why", "tell a story"]
    results = {r.key: r for r in backend.generate(requests_for(texts), sampling)}
    assert sorted(results) == [0, 1, 2, 3]
    for result in results.values():
        assert result.ok, result.error
        assert 0 <= result.completion_tokens <= 6
        assert result.prompt_tokens > 0
        assert result.details["seed_scope"] == "batch"
    described = backend.describe(sampling)
    assert described["sampling"]["top_p"] == 0.9 and described["sampling"]["max_tokens"] == 6

    again = {r.key: r.text for r in backend.generate(requests_for(texts), sampling)}
    assert again == {key: r.text for key, r in results.items()}


def test_it_keeps_a_loaded_model_for_the_next_task(tiny_model):
    first = backend_load("transformers", {"model": str(tiny_model)})
    second = backend_load("transformers", {"model": str(tiny_model), "batch_size": 2})
    assert first.model is second.model


def test_it_uses_a_plain_prompt_format_without_a_chat_template(tiny_model):
    backend = backend_load("transformers", {"model": str(tiny_model), "prompt_format": "{prompt}"})
    sampling = SamplingSettings.from_overrides({"max_tokens": 3})
    [result] = backend.generate(requests_for(["the quick brown fox"]), sampling)
    assert result.ok
    dialogue = GenerationRequest(key=9, messages=messages_for("a", ["b", "c"]))
    [refused] = backend.generate([dialogue], sampling)
    assert not refused.ok and "needs prompt_format 'chat'" in refused.error


def test_it_says_what_to_fix_when_the_model_folder_is_missing(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(BackendConfigError) as error:
        backend_load("transformers", {"model": str(tmp_path / "nowhere")})
    assert "does not exist on this worker" in str(error.value)
    assert "fix 'model'" in str(error.value)


def test_it_refuses_an_end_of_turn_token_the_tokenizer_lacks(tiny_model):
    with pytest.raises(BackendConfigError, match=re.escape("'<|eot_id|>' is not in the tokenizer")):
        backend_load("transformers", {"model": str(tiny_model), "end_of_turn": "<|eot_id|>"})


# ---------------------------------------------------------------- vLLM, without vLLM


def test_it_maps_round_sampling_to_vllm_sampling_params():
    sampling = SamplingSettings.from_overrides({"max_tokens": 512, "stop": ["</s>"]})
    kwargs = vllm_backend.sampling_kwargs(sampling, seed=42, stop_token_ids=[32000])
    assert kwargs == {
        "n": 1,
        "temperature": 0.7,
        "top_p": 0.9,
        "repetition_penalty": 1.2,
        "max_tokens": 512,
        "skip_special_tokens": True,
        "seed": 42,
        "stop": ["</s>"],
        "stop_token_ids": [32000],
    }


def test_it_maps_model_settings_to_vllm_engine_args():
    args = vllm_backend.engine_args(
        {
            "model": "meta-llama/Llama-2-7b-hf",
            "tensor_parallel_size": 2,
            "dtype": "bfloat16",
            "max_model_len": 4096,
            "gpu_memory_utilization": 0.85,
            "prompt_format": "{prompt}\n\n",
            "end_of_turn": "<EOT>",
        }
    )
    assert args == {
        "model": "meta-llama/Llama-2-7b-hf",
        "tensor_parallel_size": 2,
        "dtype": "bfloat16",
        "max_model_len": 4096,
        "gpu_memory_utilization": 0.85,
        "trust_remote_code": False,
        "enforce_eager": False,
        "seed": 0,
    }


def test_it_refuses_bad_vllm_settings_with_what_to_fix():
    with pytest.raises(BackendConfigError) as error:
        backend_check("vllm", {"model": "x", "gpu_memory_utilization": 1.5, "dtype": "fp8"})
    assert "'gpu_memory_utilization' = 1.5 is not valid: the share of GPU memory" in str(
        error.value
    )
    assert "'dtype' = 'fp8' is not valid" in str(error.value)


def test_it_says_how_to_get_vllm_when_the_worker_lacks_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    monkeypatch.setattr(vllm_backend, "_engine", {})
    with pytest.raises(BackendConfigError) as error:
        backend_load("vllm", {"model": "meta-llama/Llama-2-7b-hf"})
    assert "vLLM is not installed on this worker" in str(error.value)
    assert "pip install '.[gpu]'" in str(error.value)


class FakeLLM:
    """Stands in for vllm.LLM, which needs a GPU: records its construction and what every
    generate call was given. The tokenizer is the model's own (a real Hugging Face one)."""

    created: list[dict] = []
    max_model_len = 64

    def __init__(self, **kwargs):
        FakeLLM.created.append(kwargs)
        self.calls = []
        self.llm_engine = types.SimpleNamespace(
            model_config=types.SimpleNamespace(max_model_len=FakeLLM.max_model_len)
        )

    def generate(self, prompts, params, use_tqdm=True):
        self.calls.append((prompts, params))
        return [
            types.SimpleNamespace(
                prompt_token_ids=p["prompt_token_ids"],
                outputs=[
                    types.SimpleNamespace(
                        text=f" reply to {len(p['prompt_token_ids'])} tokens ",
                        token_ids=[5, 6],
                        finish_reason="stop",
                    )
                ],
            )
            for p in prompts
        ]


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = lambda **kwargs: kwargs
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr(vllm_backend, "_engine", {})
    FakeLLM.created = []
    return module


@pytest.fixture(scope="module")
def llama_like(tmp_path_factory):
    """A tiny model whose tokenizer adds BOS to plain text and whose template starts with it."""
    pytest.importorskip("transformers", reason="the train extra (transformers) is not installed")
    return build_tiny_model(tmp_path_factory.mktemp("llama-like"), add_bos=True)


def test_it_sends_all_prompts_in_one_generate_call_and_keeps_the_engine(fake_vllm, llama_like):
    config = {"model": str(llama_like), "end_of_turn": "<EOT>"}
    backend = backend_load("vllm", config)
    texts = [f"question number {i % 9}" for i in range(300)]
    results = list(backend.generate(requests_for(texts), SamplingSettings()))

    [(prompts, params)] = backend.engine.calls
    assert len(prompts) == 300 and set(prompts[0]) == {"prompt_token_ids"}
    eot = backend.tokenizer.convert_tokens_to_ids("<EOT>")
    assert params[0]["seed"] == prompt_seed(7, 0) and params[0]["stop_token_ids"] == [eot]
    assert params[1]["seed"] != params[0]["seed"]
    assert [r.key for r in results] == list(range(300))
    assert results[0].text.startswith("reply to") and results[0].completion_tokens == 2

    assert backend_load("vllm", config).engine is backend.engine
    other = {"model": str(llama_like), "end_of_turn": "<EOT>", "max_model_len": 128}
    backend_load("vllm", other)
    assert [c.get("max_model_len") for c in FakeLLM.created] == [None, 128]


def test_a_chat_prompt_starts_with_one_bos_as_the_model_was_trained(fake_vllm, llama_like):
    tokenizer = vllm_backend.load_tokenizer(
        {"tokenizer": "", "model": str(llama_like), "trust_remote_code": False}
    )
    bos = tokenizer.bos_token_id
    assert tokenizer("question")["input_ids"][0] == bos  # It adds BOS to text, like LLaMA's.
    backend = backend_load("vllm", {"model": str(llama_like), "end_of_turn": "<EOT>"})
    list(backend.generate(requests_for(["what is the capital of france"]), SamplingSettings()))
    [(prompts, _)] = backend.engine.calls
    ids = prompts[0]["prompt_token_ids"]
    assert ids[0] == bos and ids[1] != bos  # The template's BOS, and no second one.
    expected = tokenizer.apply_chat_template(
        [{"role": "user", "content": "what is the capital of france"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert ids == tokenizer(expected, add_special_tokens=False)["input_ids"]
    plain = backend_load(
        "vllm", {"model": str(llama_like), "prompt_format": "{prompt}\n\n", "end_of_turn": "<EOT>"}
    )
    list(plain.generate(requests_for(["the sea"]), SamplingSettings()))
    plain_prompts, _ = plain.engine.calls[-1]
    plain_ids = plain_prompts[0]["prompt_token_ids"]
    assert plain_ids[0] == bos and plain_ids.count(bos) == 1  # Plain text gets its one BOS.


def test_a_chat_template_in_the_config_is_the_one_used(fake_vllm, llama_like):
    template = "{{ bos_token }}{% for m in messages %}{{ m['content'] }} ? {% endfor %}answer : "
    backend = backend_load(
        "vllm", {"model": str(llama_like), "chat_template": template, "end_of_turn": "<EOT>"}
    )
    list(backend.generate(requests_for(["the sea"]), SamplingSettings()))
    [(prompts, _)] = backend.engine.calls
    ids = prompts[0]["prompt_token_ids"]
    tokenizer = backend.tokenizer
    assert ids == tokenizer("<s>the sea ? answer : ", add_special_tokens=False)["input_ids"]
    own = tokenizer.apply_chat_template(
        [{"role": "user", "content": "the sea"}], tokenize=False, add_generation_prompt=True
    )
    assert ids != tokenizer(own, add_special_tokens=False)["input_ids"]


def test_a_prompt_longer_than_the_context_fails_alone(fake_vllm, llama_like, monkeypatch):
    monkeypatch.setattr(FakeLLM, "max_model_len", 12)
    backend = backend_load("vllm", {"model": str(llama_like), "end_of_turn": "<EOT>"})
    long_question = " ".join(["the quick brown fox jumps over the lazy dog"] * 3)
    results = list(backend.generate(requests_for(["the sea", long_question]), SamplingSettings()))
    by_key = {r.key: r for r in results}
    assert by_key[0].ok
    assert not by_key[1].ok and "the model's context (max_model_len) is 12" in by_key[1].error
    [(prompts, _)] = backend.engine.calls
    assert len(prompts) == 1  # The long prompt never reached the engine.


def test_aborted_errored_repeating_and_empty_outputs_are_failures(
    fake_vllm, llama_like, monkeypatch
):
    reasons = iter(["abort", "error", "repetition", "stop", "length"])
    texts = iter(["half", "", "again again", "   ", "a fine answer"])

    def generate(self, prompts, params, use_tqdm=True):
        return [
            types.SimpleNamespace(
                prompt_token_ids=p["prompt_token_ids"],
                outputs=[
                    types.SimpleNamespace(
                        text=next(texts), token_ids=[1], finish_reason=next(reasons)
                    )
                ],
            )
            for p in prompts
        ]

    monkeypatch.setattr(FakeLLM, "generate", generate)
    backend = backend_load("vllm", {"model": str(llama_like), "end_of_turn": "<EOT>"})
    results = list(backend.generate(requests_for(["the sea"] * 5), SamplingSettings()))
    assert [r.ok for r in results] == [False, False, False, False, True]
    assert "finish reason 'abort'" in results[0].error and "no text" in results[3].error
    assert results[4].finish_reason == "length"


def test_sampling_vllm_would_refuse_or_change_is_refused_up_front():
    from inference.backends.base import BackendConfigError, settings_key

    for temperature, message in ((2.5, "above 2"), (0.005, "use 0 for greedy")):
        sampling = SamplingSettings.from_overrides({"temperature": temperature})
        with pytest.raises(BackendConfigError, match=message):
            settings_key("vllm", {"model": "org/model"}, sampling)
        with pytest.raises(BackendConfigError, match=message):
            vllm_backend.check_config(
                {"model": "org/model", "sampling": {"temperature": temperature}}
            )
    settings_key(
        "vllm", {"model": "org/model"}, SamplingSettings.from_overrides({"temperature": 0})
    )


def test_an_engine_start_failure_keeps_its_hint(fake_vllm, llama_like, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("Engine core initialization failed. See root cause above.")

    monkeypatch.setattr(fake_vllm, "LLM", broken)
    with pytest.raises(BackendConfigError) as error:
        backend_load("vllm", {"model": str(llama_like)})
    assert "Engine core initialization failed" in str(error.value)
    assert "lower max_model_len, raise gpu_memory_utilization" in str(error.value)


def _load_in_a_daemon_process(model: str, answers) -> None:
    import django

    django.setup()
    try:
        vllm_backend.refuse_daemon_process()
    except BackendConfigError as error:
        answers.put(str(error))
    else:
        answers.put("started")


def test_a_prefork_pool_child_is_refused_with_the_pool_to_use():
    billiard = pytest.importorskip("billiard")
    answers = billiard.Queue()
    child = billiard.Process(target=_load_in_a_daemon_process, args=("m", answers), daemon=True)
    child.start()
    child.join(30)
    message = answers.get(timeout=5)
    assert "cannot start inside a Celery prefork pool child" in message and "--pool solo" in message
    vllm_backend.refuse_daemon_process()  # This process is not daemonic: nothing to refuse.


@pytest.mark.gpu
def test_it_generates_with_vllm_on_a_gpu(tiny_model):
    pytest.importorskip("vllm", reason="vLLM is not installed (pip install '.[gpu]')")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    backend = backend_load(
        "vllm", {"model": str(tiny_model), "gpu_memory_utilization": 0.2, "enforce_eager": True}
    )
    sampling = SamplingSettings.from_overrides({"max_tokens": 8})
    results = list(backend.generate(requests_for(["what is the capital of france"] * 8), sampling))
    assert len(results) == 8 and all(r.ok for r in results)
    assert all(r.completion_tokens <= 8 for r in results)


def test_a_vllm_server_gets_every_sampling_field_the_end_of_turn_first_and_special_tokens(
    monkeypatch,
):
    from tests.support.openai_completions_server import OpenAICompletionsServer

    monkeypatch.setenv("TEST_API_KEY", "sk-test")
    with OpenAICompletionsServer() as server:
        config = {
            "model": "lima-7b",
            "base_url": server.url,
            "api_key_env": "TEST_API_KEY",
            "end_of_turn": "<EOT>",
            "send_repetition_penalty": True,
            "max_attempts": 1,
        }
        sampling = SamplingSettings.from_overrides({"stop": ["###", "Q:", "User:"]})
        backend = backend_load("openai", config)
        [result] = list(backend.generate(requests_for(["the sea"]), sampling))
        assert result.ok
        (entry,) = server.log
    body = entry.body
    assert body["stop"] == ["<EOT>", "###", "Q:", "User:"]
    assert body["skip_special_tokens"] is False
    assert (body["repetition_penalty"], body["top_k"], body["min_p"]) == (1.2, -1, 0.0)
    assert body["max_tokens"] == 2048
    sent = backend.describe(sampling)["sent"]  # What Response.generation stores.
    assert {k: body[k] for k in sent} == sent
    with pytest.raises(BackendConfigError, match="give at most 3 in 'stop'"):
        settings_key(
            "openai", config, SamplingSettings.from_overrides({"stop": ["a", "b", "c", "d"]})
        )


def test_openais_chat_api_gets_max_completion_tokens_and_other_servers_max_tokens(monkeypatch):
    monkeypatch.setenv("TEST_API_KEY", "sk-test")
    sampling = SamplingSettings.from_overrides({"max_tokens": 300})
    base = {"model": "gpt-4o", "api_key_env": "TEST_API_KEY"}
    openai = backend_load("openai", base)
    local = backend_load("openai", {**base, "base_url": "http://gpu-host:8000/v1"})
    forced = backend_load(
        "openai",
        {
            **base,
            "base_url": "http://gpu-host:8000/v1",
            "max_tokens_field": "max_completion_tokens",
        },
    )
    assert openai.describe(sampling)["sent"]["max_completion_tokens"] == 300
    assert "max_tokens" not in openai.describe(sampling)["sent"]
    assert local.describe(sampling)["sent"]["max_tokens"] == 300
    assert forced.describe(sampling)["sent"]["max_completion_tokens"] == 300
