"""Every page of the machine side; mounted at the site root by evalplatform.urls."""

from django.urls import path

from inference.dialogue import crowd as dialogue_crowd
from inference.dialogue import views as dialogue
from inference.experiments import views as experiments
from inference.generation import views as generation
from inference.judge import views as judge
from inference.training import views as training

urlpatterns = [
    # Generation
    path(
        "inference/rounds/<int:round_id>/generation/",
        generation.round_generation,
        name="generation-round",
    ),
    path(
        "inference/generation-runs/<int:run_id>/cancel/",
        generation.run_cancel,
        name="generation-run-cancel",
    ),
    path("inference/models/new/", generation.model_new, name="generation-model-new"),
    # Judges
    path("inference/rounds/<int:round_id>/judges/", judge.round_judges, name="judge-round"),
    path(
        "inference/judge-runs/<int:run_id>/retry/", judge.run_retry_failed, name="judge-run-retry"
    ),
    # Training
    path("inference/training/", training.training, name="training"),
    path("inference/training/runs/<int:run_id>/", training.training_run, name="training-run"),
    path(
        "inference/training/runs/<int:run_id>/cancel/",
        training.training_run_cancel_view,
        name="training-run-cancel",
    ),
    path(
        "inference/training/runs/<int:run_id>/resume/",
        training.training_run_resume_view,
        name="training-run-resume",
    ),
    # Experiments
    path("inference/experiments/", experiments.experiments, name="experiments"),
    path(
        "inference/experiments/<int:experiment_id>/",
        experiments.experiment,
        name="experiment",
    ),
    path(
        "inference/experiments/<int:experiment_id>/figure.png",
        experiments.experiment_figure_png,
        name="experiment-figure",
    ),
    path(
        "inference/experiments/<int:experiment_id>/results.csv",
        experiments.experiment_csv,
        name="experiment-csv",
    ),
    path(
        "inference/experiments/<int:experiment_id>/cancel/",
        experiments.experiment_cancel_view,
        name="experiment-cancel",
    ),
    path(
        "inference/experiments/<int:experiment_id>/resume/",
        experiments.experiment_resume_view,
        name="experiment-resume",
    ),
    # Dialogues
    path("inference/dialogues/", dialogue.dialogues, name="dialogues"),
    path("inference/dialogues/<int:dialogue_id>/", dialogue.dialogue, name="dialogue"),
    path("inference/dialogues/report/", dialogue.dialogue_report_page, name="dialogue-report"),
    path("inference/dialogues/compare/", dialogue.dialogue_compare_page, name="dialogue-compare"),
    # A dialogue study's crowd pages: no account, the study's and the dialogue's tokens.
    path("talk/<str:study_token>/", dialogue_crowd.study_landing, name="dialogue-study"),
    path(
        "talk/<str:study_token>/<str:dialogue_token>/",
        dialogue_crowd.study_talk,
        name="dialogue-study-talk",
    ),
    path(
        "inference/dialogues/report/<int:project_id>/comparisons.png",
        dialogue.dialogue_comparison_figure,
        name="dialogue-comparison-figure",
    ),
    path(
        "inference/dialogues/report/<int:project_id>/figure.png",
        dialogue.dialogue_report_figure,
        name="dialogue-report-figure",
    ),
]
