"""The crowd's pages, under /c/: first in the URL configuration, since every answer resolves one."""

from django.urls import path

from annotation.views import crowd

urlpatterns = [
    path("<str:crowd_token>/", crowd.crowd_landing, name="crowd-landing"),
    path("w/<str:session_token>/", crowd.crowd_work, name="crowd-work"),
    path("w/<str:session_token>/answer/", crowd.crowd_answer, name="crowd-answer"),
    path("w/<str:session_token>/screening/", crowd.crowd_screening, name="crowd-screening"),
    path("w/<str:session_token>/practice/", crowd.crowd_practice, name="crowd-practice"),
]
