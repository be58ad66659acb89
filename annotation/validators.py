"""Domain rules shared by the models, the API and the machine side."""

import math
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

# Whole words, so that `max_tokens`, `tokenizer` or `top_k` are not mistaken for secrets.
_SECRET_WORDS = {"key", "token"}
_SECRET_PARTS = ("apikey", "password", "passwd", "secret")
_ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _looks_secret(key: str, value: Any) -> bool:
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()
    words = [word for word in re.split(r"[^a-z0-9]+", snake) if word]
    if words[-1:] == ["env"] and isinstance(value, str) and _ENV_VAR_NAME.match(value):
        return False  # `api_key_env: "OPENAI_API_KEY"` names where the secret is read from.
    compact = "".join(words)
    return bool(_SECRET_WORDS.intersection(words)) or any(p in compact for p in _SECRET_PARTS)


def secret_config_keys(config: Any, prefix: str = "") -> list[str]:
    """The config's keys, at any depth, that look like they hold a secret."""
    if isinstance(config, list):
        return [
            found
            for index, value in enumerate(config)
            for found in secret_config_keys(value, f"{prefix}{index}.")
        ]
    if not isinstance(config, dict):
        return []
    found = []
    for key, value in config.items():
        if _looks_secret(str(key), value):
            found.append(f"{prefix}{key}")
        found.extend(secret_config_keys(value, f"{prefix}{key}."))
    return found


def secrets_refused(config: Any) -> str:
    """Why a model config may not be stored, or "" when it holds no secret."""
    secrets = secret_config_keys(config)
    if not secrets:
        return ""
    return (
        f"The config must not hold secrets ({', '.join(secrets)}): put the secret in an "
        'environment variable and give its name instead, e.g. "api_key_env": "OPENAI_API_KEY".'
    )


def not_a_key(value: str) -> None:
    # The field names a variable; a pasted key must never reach the database.
    if value.lower().startswith("sk"):
        raise ValidationError("Give the name of the environment variable, not the key itself.")


env_var_name = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_]*$", "An environment variable name: letters, digits and _."
)


# What an import may store (docs/imports.md, "Limits"). Names and ids fit the models' 200-character
# columns. A text of 100,000 characters (about 25,000 tokens) is six times the longest response
# in the AlpacaEval leaderboard files and still renders as a crowd page of a few hundred KB.
MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 100_000
MAX_EXTRA_LENGTH = 100_000
MAX_JSON_DEPTH = 32

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str, *, limit: int = MAX_TEXT_LENGTH) -> str:
    """Why a text cannot be stored, or "" when it can."""
    if len(value) > limit:
        return f"{len(value):,} characters long, more than the {limit:,} allowed"
    if "\x00" in value:
        return (
            f"contains a NUL character (U+0000) at character {value.index(chr(0)) + 1}, "
            "which the database cannot store"
        )
    surrogate = _LONE_SURROGATE.search(value)
    if surrogate:
        return (
            f"contains a lone surrogate (U+{ord(surrogate.group()):04X}) at character "
            f"{surrogate.start() + 1}, which is not Unicode text"
        )
    return ""


def json_depth_problem(value: Any, *, limit: int = MAX_JSON_DEPTH) -> tuple[str, str] | None:
    """(where, why) when a JSON value nests more than `limit` arrays and objects, else None."""
    stack: list[tuple[str, Any, int]] = [("", value, 1)]
    while stack:
        path, current, depth = stack.pop()
        if not isinstance(current, dict | list):
            continue
        if depth > limit:
            return path, f"nested more than {limit} levels deep"
        pairs = current.items() if isinstance(current, dict) else enumerate(current)
        stack.extend((_joined(path, key), child, depth + 1) for key, child in pairs)
    return None


def json_value_problem(value: Any) -> tuple[str, str] | None:
    """(where, why) when a parsed JSON value cannot be stored as JSON: NaN or Infinity (not
    JSON, though Python's reader takes them), or a key or text `text_problem` refuses."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, current = stack.pop()
        if isinstance(current, float) and not math.isfinite(current):
            shown = "NaN" if math.isnan(current) else "Infinity"
            return path, f"{shown} is not a JSON number; write null instead"
        if isinstance(current, str) and (problem := text_problem(current)):
            return path, problem
        if isinstance(current, dict):
            for key, child in current.items():
                if problem := text_problem(key, limit=MAX_NAME_LENGTH):
                    return _joined(path, "…"), f"a key that is {problem}"
                stack.append((_joined(path, key), child))
        elif isinstance(current, list):
            stack.extend((_joined(path, index), child) for index, child in enumerate(current))
    return None


def _joined(path: str, key: object) -> str:
    # Paths go into error messages: a key that is not plain text is shown escaped.
    shown = str(key) if str(key).isprintable() else ascii(str(key))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{path}.{shown}" if path else shown
