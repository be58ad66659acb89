"""The dialogue API: start a dialogue, say the next message, label an answer, read it all."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.common import member_project, named_in_project, request_user
from annotation.models import LanguageModel
from inference.dialogue.models import Dialogue, DialogueTurn
from inference.dialogue.selectors import dialogue_labels, dialogues_for_user
from inference.dialogue.services import (
    MAX_MESSAGE_CHARACTERS,
    DialogueRefused,
    dialogue_label,
    dialogue_say,
    dialogue_start,
)


class TurnSerializer(serializers.ModelSerializer):
    class Meta:
        model = DialogueTurn
        fields = ["index", "role", "text", "status", "error", "generation", "created_at"]


class DialogueSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.name")
    model = serializers.CharField(source="model.name")
    annotator = serializers.CharField(source="annotator.name")
    turns = TurnSerializer(many=True, read_only=True)
    labels = serializers.SerializerMethodField(
        help_text="The label of each answer, by its number from 1 (as a string key)."
    )

    class Meta:
        model = Dialogue
        fields = [
            "id", "project", "model", "annotator", "turns_planned", "sampling", "seed",
            "status", "turns", "labels", "created_at", "finished_at",
        ]  # fmt: skip

    def get_labels(self, dialogue: Dialogue) -> dict[str, str]:
        return {str(number): label for number, label in dialogue_labels(dialogue).items()}


class StartSerializer(serializers.Serializer):
    project = serializers.CharField()
    model = serializers.CharField(help_text="A model of the project with a generation backend.")
    turns = serializers.IntegerField(required=False, min_value=1, max_value=50)
    sampling = serializers.DictField(required=False)


class MessageSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=MAX_MESSAGE_CHARACTERS, trim_whitespace=False)


class LabelSerializer(serializers.Serializer):
    number = serializers.IntegerField(min_value=1, max_value=50, help_text="The answer, from 1.")
    rating = serializers.ChoiceField(choices=["fail", "pass", "excellent"])


def _refused(problem: Exception) -> serializers.ValidationError:
    return serializers.ValidationError({"detail": str(problem)})


class DialoguesAPI(APIView):
    """Dialogues: list (GET) and start one with a model (POST)."""

    @extend_schema(responses=DialogueSerializer(many=True))
    def get(self, request: Request) -> Response:
        found = dialogues_for_user(request_user(request)).prefetch_related("turns")[:100]
        return Response(DialogueSerializer(found, many=True).data)

    @extend_schema(request=StartSerializer, responses={201: DialogueSerializer})
    def post(self, request: Request) -> Response:
        params = StartSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        project = member_project(request, data["project"])
        try:
            dialogue = dialogue_start(
                project=project,
                model=named_in_project(LanguageModel, project, data["model"], "model"),
                user=request_user(request),
                turns=data.get("turns", 5),
                sampling=data.get("sampling") or {},
            )
        except DialogueRefused as problem:
            raise _refused(problem) from None
        return Response(DialogueSerializer(dialogue).data, status=status.HTTP_201_CREATED)


class DialogueAPI(APIView):
    @extend_schema(responses=DialogueSerializer)
    def get(self, request: Request, dialogue_id: int) -> Response:
        found = get_object_or_404(dialogues_for_user(request_user(request)), pk=dialogue_id)
        return Response(DialogueSerializer(found).data)


class DialogueMessageAPI(APIView):
    """Say the next message; the model's answer is made on a worker (poll the dialogue)."""

    @extend_schema(request=MessageSerializer, responses={202: DialogueSerializer})
    def post(self, request: Request, dialogue_id: int) -> Response:
        found = get_object_or_404(dialogues_for_user(request_user(request)), pk=dialogue_id)
        params = MessageSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            dialogue_say(dialogue=found, text=params.validated_data["text"])
        except DialogueRefused as problem:
            raise _refused(problem) from None
        found.refresh_from_db()
        return Response(DialogueSerializer(found).data, status=status.HTTP_202_ACCEPTED)


class DialogueLabelAPI(APIView):
    """Label the model's answer: Fail, Pass or Excellent (a new label replaces the old)."""

    @extend_schema(request=LabelSerializer, responses=DialogueSerializer)
    def post(self, request: Request, dialogue_id: int) -> Response:
        found = get_object_or_404(dialogues_for_user(request_user(request)), pk=dialogue_id)
        params = LabelSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            data = params.validated_data
            dialogue_label(dialogue=found, number=data["number"], label=data["rating"])
        except DialogueRefused as problem:
            raise _refused(problem) from None
        return Response(DialogueSerializer(found).data)
