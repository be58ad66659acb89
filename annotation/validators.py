"""Domain rules shared by the models, the API and the machine side."""

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
