import pytest
from django.core.exceptions import ImproperlyConfigured

from evalplatform.env import env_bool, env_choice, env_int


def test_it_names_the_variable_when_a_boolean_is_bad(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DEBUG='maybe'"):
        env_bool("DEBUG", True)


def test_it_refuses_an_integer_below_its_minimum(monkeypatch):
    monkeypatch.setenv("CROWD_LEASE_SECONDS", "3")
    with pytest.raises(ImproperlyConfigured, match="CROWD_LEASE_SECONDS=3 must be at least 10"):
        env_int("CROWD_LEASE_SECONDS", 1800, minimum=10)


def test_it_accepts_a_log_level_in_any_case_and_refuses_an_unknown_one(monkeypatch):
    levels = ("DEBUG", "INFO", "WARNING")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    assert env_choice("LOG_LEVEL", "INFO", levels) == "WARNING"
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL='loud' is not one of DEBUG"):
        env_choice("LOG_LEVEL", "INFO", levels)


def test_it_uses_the_default_when_the_variable_is_unset(monkeypatch):
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    assert env_choice("LOG_LEVEL", "INFO", ("INFO",)) == "INFO"
