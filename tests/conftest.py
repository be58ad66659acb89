import pytest
from celery.contrib.testing.worker import start_worker
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from annotation import ratelimits


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _crowd_rate_limits_fresh():
    """Every test starts with empty rate-limit counters: all tests come from 127.0.0.1.

    Only a per-process cache is cleared: clearing a Redis one empties its whole database.
    """
    cache = caches[ratelimits.CACHE_ALIAS]
    if isinstance(cache, LocMemCache):
        cache.clear()


@pytest.fixture(scope="session")
def celery_broker(tmp_path_factory):
    """The Celery app, on a private broker folder for the session (filesystem transport).

    Set once: the app's producer pool keeps its first connection, so a folder changed later
    would leave workers listening where nothing is sent. CI's Redis broker is used as it is.
    """
    from evalplatform.celery import app

    if app.conf.broker_url.startswith("filesystem://"):
        folder = str(tmp_path_factory.mktemp("broker"))
        app.conf.broker_transport_options = {
            "data_folder_in": folder,
            "data_folder_out": folder,
            "control_folder": str(tmp_path_factory.mktemp("control")),
        }
    return app


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker, celery_broker):
    """A real Celery worker in this process, on every queue but `gpu`, for a module's tests.

    Those tests use `django_db(transaction=True)`: the worker's thread sees what they commit.
    """
    with (
        django_db_blocker.unblock(),
        start_worker(
            celery_broker,
            pool="solo",
            queues=["default", "api", "train"],
            perform_ping_check=False,
            shutdown_timeout=30,
        ),
    ):
        yield


@pytest.fixture(autouse=True)
def _test_api_keys(settings):
    """The key variables the tests' local servers use, allowed to any URL (as an operator
    would allow a variable for their own server); OpenAI's stays limited to OpenAI."""
    settings.API_KEYS = {
        "OPENAI_API_KEY": ("https://api.openai.com/",),
        "EVALPLATFORM_TEST_*": ("*",),
        "TEST_API_KEY": ("*",),
    }
