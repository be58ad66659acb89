"""Every API route of the machine side; mounted under /api/ by evalplatform.urls."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from inference.dialogue import api as dialogue
from inference.experiments import api as experiments
from inference.generation import api as generation
from inference.judge import api as judge
from inference.training import api as training

router = SimpleRouter(use_regex_path=False)
router.register("models", generation.LanguageModelViewSet, basename="api-model")

urlpatterns = [
    # Generation
    path(
        "rounds/<int:round_id>/generation/",
        generation.RoundGenerationAPI.as_view(),
        name="api-round-generation",
    ),
    path(
        "rounds/<int:round_id>/generation/cancel/",
        generation.RoundGenerationCancelAPI.as_view(),
        name="api-round-generation-cancel",
    ),
    # Judges
    path("rounds/<int:round_id>/judges/", judge.RoundJudgesAPI.as_view(), name="api-round-judges"),
    path(
        "judge-runs/<int:run_id>/retry/", judge.JudgeRunRetryAPI.as_view(), name="api-judge-retry"
    ),
    # Training
    path("training-runs/", training.TrainingRunsAPI.as_view(), name="api-training-runs"),
    path("training-runs/<int:run_id>/", training.TrainingRunAPI.as_view(), name="api-training-run"),
    path(
        "training-runs/<int:run_id>/cancel/",
        training.TrainingRunCancelAPI.as_view(),
        name="api-training-run-cancel",
    ),
    path(
        "training-runs/<int:run_id>/resume/",
        training.TrainingRunResumeAPI.as_view(),
        name="api-training-run-resume",
    ),
    path("training-sets/", training.TrainingSetsAPI.as_view(), name="api-training-sets"),
    # Experiments
    path("experiments/", experiments.ExperimentsAPI.as_view(), name="api-experiments"),
    path(
        "experiments/<int:experiment_id>/",
        experiments.ExperimentAPI.as_view(),
        name="api-experiment",
    ),
    path(
        "experiments/<int:experiment_id>/cancel/",
        experiments.ExperimentCancelAPI.as_view(),
        name="api-experiment-cancel",
    ),
    path(
        "experiments/<int:experiment_id>/resume/",
        experiments.ExperimentResumeAPI.as_view(),
        name="api-experiment-resume",
    ),
    # Dialogues
    path("dialogues/", dialogue.DialoguesAPI.as_view(), name="api-dialogues"),
    path("dialogues/import/", dialogue.DialogueImportAPI.as_view(), name="api-dialogue-import"),
    path("dialogues/pairs/", dialogue.DialoguePairsAPI.as_view(), name="api-dialogue-pairs"),
    path(
        "dialogues/comparisons/",
        dialogue.DialogueComparisonsAPI.as_view(),
        name="api-dialogue-comparisons",
    ),
    path("dialogues/report/", dialogue.DialogueReportAPI.as_view(), name="api-dialogue-report"),
    path("dialogues/rounds/", dialogue.DialogueRoundsAPI.as_view(), name="api-dialogue-rounds"),
    path("dialogues/studies/", dialogue.DialogueStudiesAPI.as_view(), name="api-dialogue-studies"),
    path(
        "dialogues/studies/<int:study_id>/workers/",
        dialogue.DialogueStudyWorkersAPI.as_view(),
        name="api-dialogue-study-workers",
    ),
    path("dialogues/<int:dialogue_id>/", dialogue.DialogueAPI.as_view(), name="api-dialogue"),
    path(
        "dialogues/<int:dialogue_id>/messages/",
        dialogue.DialogueMessageAPI.as_view(),
        name="api-dialogue-messages",
    ),
    path(
        "dialogues/<int:dialogue_id>/finish/",
        dialogue.DialogueFinishAPI.as_view(),
        name="api-dialogue-finish",
    ),
    path(
        "dialogues/<int:dialogue_id>/labels/",
        dialogue.DialogueLabelAPI.as_view(),
        name="api-dialogue-labels",
    ),
    *router.urls,
]
