"""The machine side's models, defined with each pipeline and gathered here for Django."""

from inference.dialogue.models import Dialogue, DialogueComparison, DialogueStudy, DialogueTurn
from inference.experiments.models import Experiment, ExperimentArm
from inference.generation.models import GenerationFailure, GenerationRun, GenerationTask
from inference.judge.models import Judge, JudgeCache, JudgeCall, JudgeRun
from inference.training.models import CheckpointScore, TrainingExample, TrainingRun, TrainingSet

__all__ = [
    "CheckpointScore",
    "Dialogue",
    "DialogueComparison",
    "DialogueStudy",
    "DialogueTurn",
    "Experiment",
    "ExperimentArm",
    "GenerationFailure",
    "GenerationRun",
    "GenerationTask",
    "Judge",
    "JudgeCache",
    "JudgeCall",
    "JudgeRun",
    "TrainingExample",
    "TrainingRun",
    "TrainingSet",
]
