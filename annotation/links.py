from django.conf import settings
from django.urls import reverse

from annotation.models import Round


def crowd_link(round_: Round) -> str:
    return settings.PUBLIC_BASE_URL + reverse("crowd-landing", args=[round_.crowd_token])
