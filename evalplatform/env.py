"""Strict readers for environment variables: a bad value fails loudly at start-up."""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().upper()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={raw!r} is not one of {', '.join(choices)}.")
    return value


def env_key_routes(name: str, default: str) -> dict[str, tuple[str, ...]]:
    """Which API-key variables may be sent where: "VAR=URL_PREFIX,URL_PREFIX;VAR2=*".

    A variable may be a pattern (EVAL_KEY_*); "*" as a prefix allows any URL.
    """
    raw = os.environ.get(name, default)
    routes: dict[str, tuple[str, ...]] = {}
    for entry in filter(None, (part.strip() for part in raw.split(";"))):
        variable, sep, prefixes = entry.partition("=")
        allowed = tuple(p.strip() for p in prefixes.split(",") if p.strip())
        if not sep or not variable.strip() or not allowed:
            raise ImproperlyConfigured(
                f"{name}: {entry!r} is not VARIABLE=URL_PREFIX[,URL_PREFIX...] (or =*)."
            )
        routes[variable.strip()] = allowed
    return routes
