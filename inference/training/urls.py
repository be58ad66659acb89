from django.urls import path

from inference.training import views

urlpatterns = [
    path("inference/training/", views.training, name="training"),
    path("inference/training/runs/<int:run_id>/", views.training_run, name="training-run"),
    path(
        "inference/training/runs/<int:run_id>/cancel/",
        views.training_run_cancel_view,
        name="training-run-cancel",
    ),
    path(
        "inference/training/runs/<int:run_id>/resume/",
        views.training_run_resume_view,
        name="training-run-resume",
    ),
    path("api/training-runs/", views.TrainingRunsAPI.as_view(), name="api-training-runs"),
    path(
        "api/training-runs/<int:run_id>/", views.TrainingRunAPI.as_view(), name="api-training-run"
    ),
    path(
        "api/training-runs/<int:run_id>/cancel/",
        views.TrainingRunCancelAPI.as_view(),
        name="api-training-run-cancel",
    ),
    path(
        "api/training-runs/<int:run_id>/resume/",
        views.TrainingRunResumeAPI.as_view(),
        name="api-training-run-resume",
    ),
    path("api/training-sets/", views.TrainingSetsAPI.as_view(), name="api-training-sets"),
]
