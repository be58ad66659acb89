"""The versions pyproject.toml declares are ones this environment satisfies: a floor that the
code outgrew (an import or keyword argument only newer releases have) fails here first."""

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PYPROJECT = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
DECLARED = [
    *PYPROJECT["project"]["dependencies"],
    *PYPROJECT["project"]["optional-dependencies"]["dev"],
    *PYPROJECT["project"]["optional-dependencies"]["train"],
]


@pytest.mark.parametrize("declared", DECLARED)
def test_the_installed_version_meets_the_declared_floor(declared):
    requirement = Requirement(declared)
    try:
        installed = version(requirement.name)
    except PackageNotFoundError:
        if requirement.name in {"torch", "transformers", "accelerate", "PyYAML"}:
            pytest.skip(f"the train extra is not installed ({requirement.name})")
        raise
    # Local builds such as torch's "+cpu" wheel satisfy the release they build.
    assert requirement.specifier.contains(installed.split("+")[0], prereleases=True), (
        f"{requirement.name} {installed} does not satisfy {declared!r}"
    )


def test_the_openai_client_brings_the_http_library_the_client_module_imports():
    import httpx2  # noqa: F401
    import openai

    assert int(openai.__version__.split(".")[0]) >= 3


def test_transformers_has_the_arguments_the_trainer_passes():
    transformers = pytest.importorskip("transformers")
    import inspect

    assert "train_sampling_strategy" in inspect.signature(transformers.TrainingArguments).parameters
    add_special_tokens = transformers.PreTrainedTokenizerBase.add_special_tokens
    assert "replace_extra_special_tokens" in inspect.signature(add_special_tokens).parameters
