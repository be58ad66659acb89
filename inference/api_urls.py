from django.urls import path

from inference import api

urlpatterns = [
    path("rounds/<int:round_id>/judges/", api.RoundJudgesAPI.as_view(), name="api-round-judges"),
    path("judge-runs/<int:run_id>/retry/", api.JudgeRunRetryAPI.as_view(), name="api-judge-retry"),
]
