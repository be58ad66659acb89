from django.urls import path

from inference import generation_views as views

urlpatterns = [
    path(
        "inference/rounds/<int:round_id>/generation/",
        views.round_generation,
        name="generation-round",
    ),
    path(
        "inference/generation-runs/<int:run_id>/cancel/",
        views.run_cancel,
        name="generation-run-cancel",
    ),
    path("inference/models/new/", views.model_new, name="generation-model-new"),
    path(
        "api/rounds/<int:round_id>/generation/",
        views.RoundGenerationAPI.as_view(),
        name="api-round-generation",
    ),
    path(
        "api/rounds/<int:round_id>/generation/cancel/",
        views.RoundGenerationCancelAPI.as_view(),
        name="api-round-generation-cancel",
    ),
]
