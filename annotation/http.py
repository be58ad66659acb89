"""Request types for the pages: what the middleware adds, so views are type-checked."""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxRequest(HttpRequest):
    """Any page request: django-htmx's middleware sets `htmx`."""

    htmx: HtmxDetails


class ResearcherRequest(HtmxRequest):
    """A request to a `login_required` page: the user is signed in."""

    user: User
