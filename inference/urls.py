from django.urls import path

from inference import views

urlpatterns = [
    path("rounds/<int:round_id>/judges/", views.round_judges, name="judge-round"),
    path("judge-runs/<int:run_id>/retry/", views.run_retry_failed, name="judge-run-retry"),
]
