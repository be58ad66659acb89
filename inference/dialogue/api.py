"""The dialogue API: start a dialogue, say the next message, finish it, label an answer, read
it all; import conversations; list the pairs of two models' dialogues that open alike and
record which of the two is better; the report."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.common import (
    ImportErrorSerializer,
    import_params_refused,
    import_refused,
    import_upload_size_check,
    member_project,
    named_in_project,
    request_user,
)
from annotation.imports.records import ImportFailed
from annotation.links import crowd_link
from annotation.models import LanguageModel, Project
from annotation.selectors import projects_for_user
from annotation.validators import MAX_NAME_LENGTH
from inference.dialogue.imports import dialogues_import
from inference.dialogue.models import Dialogue, DialogueComparison, DialogueStudy, DialogueTurn
from inference.dialogue.selectors import (
    author_of,
    comparison_report,
    dialogue_labels,
    dialogue_pairs,
    dialogue_report,
    dialogues_for_user,
    studies_for_user,
    study_link,
    study_workers,
)
from inference.dialogue.services import (
    MAX_MESSAGE_CHARACTERS,
    DialogueRefused,
    dialogue_compare,
    dialogue_finish,
    dialogue_label,
    dialogue_pairs_round_create,
    dialogue_round_create,
    dialogue_say,
    dialogue_start,
    study_create,
)


class TurnSerializer(serializers.ModelSerializer):
    class Meta:
        model = DialogueTurn
        fields = ["index", "role", "text", "status", "error", "generation", "created_at"]


class DialogueSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.name")
    model = serializers.CharField(source="model.name")
    annotator = serializers.SerializerMethodField(
        help_text="Who spoke to the model; null for an imported conversation."
    )
    turns = TurnSerializer(many=True, read_only=True)
    labels = serializers.SerializerMethodField(
        help_text="Your label of each answer, by its number from 1 (as a string key)."
    )

    class Meta:
        model = Dialogue
        fields = [
            "id", "project", "model", "origin", "annotator", "system", "source",
            "turns_planned", "sampling", "seed", "status", "turns", "labels", "created_at",
            "finished_at",
        ]  # fmt: skip

    def get_annotator(self, dialogue: Dialogue) -> str | None:
        return dialogue.annotator.name if dialogue.annotator else None

    def get_labels(self, dialogue: Dialogue) -> dict[str, str]:
        labeller = author_of(dialogue, self.context["request"].user)
        return {str(number): label for number, label in dialogue_labels(dialogue, labeller).items()}


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


def _models_named(project: Project, names: list[str]) -> list[LanguageModel]:
    return [
        named_in_project(LanguageModel, project, name, "models") for name in dict.fromkeys(names)
    ]


def _refused(problem: Exception) -> serializers.ValidationError:
    return serializers.ValidationError({"detail": str(problem)})


class DialoguesAPI(APIView):
    """Dialogues: list (GET) and start one with a model (POST)."""

    @extend_schema(responses=DialogueSerializer(many=True))
    def get(self, request: Request) -> Response:
        found = dialogues_for_user(request_user(request)).prefetch_related("turns")[:100]
        return Response(DialogueSerializer(found, many=True, context={"request": request}).data)

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
        data = DialogueSerializer(dialogue, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED)


class DialogueAPI(APIView):
    @extend_schema(responses=DialogueSerializer)
    def get(self, request: Request, dialogue_id: int) -> Response:
        found = get_object_or_404(dialogues_for_user(request_user(request)), pk=dialogue_id)
        return Response(DialogueSerializer(found, context={"request": request}).data)


class DialogueMessageAPI(APIView):
    """Say the next message; the model's answer is made on a worker (poll the dialogue)."""

    @extend_schema(request=MessageSerializer, responses={202: DialogueSerializer})
    def post(self, request: Request, dialogue_id: int) -> Response:
        found = get_object_or_404(dialogues_for_user(request_user(request)), pk=dialogue_id)
        params = MessageSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            dialogue_say(
                dialogue=found, text=params.validated_data["text"], by=request_user(request)
            )
        except DialogueRefused as problem:
            raise _refused(problem) from None
        found.refresh_from_db()
        data = DialogueSerializer(found, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED)


class DialogueFinishAPI(APIView):
    """End a live dialogue before its planned number of answers."""

    @extend_schema(request=None, responses=DialogueSerializer)
    def post(self, request: Request, dialogue_id: int) -> Response:
        found = get_object_or_404(dialogues_for_user(request_user(request)), pk=dialogue_id)
        try:
            found = dialogue_finish(dialogue=found, by=request_user(request))
        except DialogueRefused as problem:
            raise _refused(problem) from None
        return Response(DialogueSerializer(found, context={"request": request}).data)


class DialogueLabelAPI(APIView):
    """Label the model's answer: Fail, Pass or Excellent (a new label replaces the old)."""

    @extend_schema(request=LabelSerializer, responses=DialogueSerializer)
    def post(self, request: Request, dialogue_id: int) -> Response:
        found = get_object_or_404(dialogues_for_user(request_user(request)), pk=dialogue_id)
        params = LabelSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            data = params.validated_data
            dialogue_label(
                dialogue=found,
                number=data["number"],
                label=data["rating"],
                by=request_user(request),
            )
        except DialogueRefused as problem:
            raise _refused(problem) from None
        return Response(DialogueSerializer(found, context={"request": request}).data)


class ImportSerializer(serializers.Serializer):
    project = serializers.CharField(help_text="A project of yours, by name.")
    model = serializers.CharField(
        required=False,
        max_length=MAX_NAME_LENGTH,
        help_text="The model of every conversation; otherwise each record names its 'model'.",
    )
    file = serializers.FileField(
        help_text='JSON Lines or a JSON array: {"conversations": [...]} (the LIMA release) or '
        '{"messages": [{"role", "content"}, ...]} (OpenAI chat format).'
    )

    def validate_project(self, name: str) -> Project:
        project = projects_for_user(request_user(self.context["request"])).filter(name=name)
        found = project.first()
        if found is None:
            raise serializers.ValidationError("No such project of yours.")
        return found


class ImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Conversations added.")
    skipped = serializers.IntegerField(help_text="Conversations the project already held.")
    answers = serializers.IntegerField(help_text="Answers added, to be labelled.")
    models_created = serializers.ListField(child=serializers.CharField())


class DialogueImportAPI(APIView):
    """Import conversations to label turn by turn; a bad file changes nothing."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": ImportSerializer},
        responses={201: ImportResultSerializer, 400: ImportErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        params = ImportSerializer(data=request.data, context={"request": request})
        if not params.is_valid():
            return import_params_refused(params, request.data)
        data = params.validated_data
        project = data["project"]
        import_upload_size_check(data["file"])
        try:
            summary = dialogues_import(
                project=project,
                raw=data["file"].read(),
                file=data["file"].name,
                model_name=data.get("model"),
                user=request_user(request),
            )
        except ImportFailed as error:
            return import_refused(error)
        result = {
            "created": summary.created,
            "skipped": summary.skipped,
            "answers": summary.answers,
            "models_created": summary.models_created,
        }
        return Response(result, status=status.HTTP_201_CREATED)


class PairSerializer(serializers.Serializer):
    first = serializers.IntegerField(source="first.pk", help_text="The dialogue with the lower id.")
    second = serializers.IntegerField(source="second.pk")
    first_model = serializers.CharField(source="first.model.name")
    second_model = serializers.CharField(source="second.model.name")


PAIR_PARAMETERS = [
    OpenApiParameter("project", str, required=True),
    OpenApiParameter("model_a", str, required=True, description="A model's name."),
    OpenApiParameter("model_b", str, required=True, description="The other model's name."),
]


class DialoguePairsAPI(APIView):
    """Two models' finished dialogues paired by their opening message."""

    @extend_schema(parameters=PAIR_PARAMETERS, responses=PairSerializer(many=True))
    def get(self, request: Request) -> Response:
        query = request.query_params
        missing = [name for name in ("project", "model_a", "model_b") if not query.get(name)]
        if missing:
            raise serializers.ValidationError(
                {name: ["This parameter is required."] for name in missing}
            )
        project = member_project(request, query["project"])
        model_a = named_in_project(LanguageModel, project, query["model_a"], "model_a")
        model_b = named_in_project(LanguageModel, project, query["model_b"], "model_b")
        pairs = dialogue_pairs(project.pk, model_a, model_b)
        return Response(PairSerializer(pairs, many=True).data)


class VerdictSerializer(serializers.Serializer):
    first = serializers.IntegerField(help_text="One dialogue's id.")
    second = serializers.IntegerField(help_text="The other's, of another model, same opening.")
    choice = serializers.ChoiceField(
        choices=["first", "second", "neither"], help_text="Which conversation is better."
    )


class ComparisonSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.name")

    class Meta:
        model = DialogueComparison
        fields = ["id", "annotator", "first", "second", "first_on_left", "choice", "created_at"]


class DialogueComparisonsAPI(APIView):
    """Record your verdict on two models' dialogues that open alike (a new verdict on the same
    two replaces the old)."""

    @extend_schema(request=VerdictSerializer, responses={201: ComparisonSerializer})
    def post(self, request: Request) -> Response:
        params = VerdictSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        visible = dialogues_for_user(request_user(request))
        found = {
            dialogue.pk: dialogue
            for dialogue in visible.filter(pk__in=[data["first"], data["second"]])
        }
        missing = {
            field: [f"No dialogue {data[field]} of yours."]
            for field in ("first", "second")
            if data[field] not in found
        }
        if missing:
            raise serializers.ValidationError(missing)
        first, second = found[data["first"]], found[data["second"]]
        paired = {pair.key for pair in dialogue_pairs(first.project_id, first.model, second.model)}
        if first.model_id != second.model_id and tuple(sorted((first.pk, second.pk))) not in paired:
            raise serializers.ValidationError(
                {"detail": "These two dialogues are not a pair (see /api/dialogues/pairs/)."}
            )
        side = {"first": "left", "second": "right", "neither": "neither"}[data["choice"]]
        try:
            comparison = dialogue_compare(
                left=first, right=second, choice=side, by=request_user(request)
            )
        except DialogueRefused as problem:
            raise _refused(problem) from None
        return Response(ComparisonSerializer(comparison).data, status=status.HTTP_201_CREATED)


class TurnCountSerializer(serializers.Serializer):
    answers = serializers.IntegerField()
    fails = serializers.IntegerField()


class ModelRowSerializer(serializers.Serializer):
    model = serializers.CharField()
    dialogues = serializers.IntegerField()
    answers = serializers.IntegerField()
    fails = serializers.IntegerField()
    shares = serializers.DictField(child=serializers.FloatField())
    ci95 = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    by_turn = serializers.DictField(child=TurnCountSerializer(), help_text="By answer number.")


class ComparisonRowSerializer(serializers.Serializer):
    model = serializers.CharField()
    other = serializers.CharField()
    pairs = serializers.IntegerField()
    wins = serializers.IntegerField()
    ties = serializers.IntegerField()
    losses = serializers.IntegerField()
    n = serializers.IntegerField()
    win_or_tie = serializers.FloatField()
    win_rate = serializers.FloatField()
    ci95 = serializers.ListField(child=serializers.FloatField(), allow_null=True)


class DialogueReportSerializer(serializers.Serializer):
    models = ModelRowSerializer(many=True)
    comparisons = ComparisonRowSerializer(many=True)


class DialogueReportAPI(APIView):
    """The dialogue study of a project: each model's labels, fails by turn, and comparisons."""

    @extend_schema(
        parameters=[OpenApiParameter("project", str, required=True)],
        responses=DialogueReportSerializer,
    )
    def get(self, request: Request) -> Response:
        name = request.query_params.get("project")
        if not name:
            raise serializers.ValidationError({"project": ["This parameter is required."]})
        project = member_project(request, name)
        rows, _ = dialogue_report(project.pk)
        return Response(
            {
                "models": [row.as_json() for row in rows],
                "comparisons": [row.as_json() for row in comparison_report(project.pk)],
            }
        )


class CrowdRoundSerializer(serializers.Serializer):
    project = serializers.CharField()
    models = serializers.ListField(
        child=serializers.CharField(),
        min_length=1,
        help_text="The models whose finished dialogues' answers are labelled.",
    )
    name = serializers.CharField(max_length=150)
    annotators_per_item = serializers.IntegerField(required=False, min_value=1, max_value=20)
    shared_items = serializers.IntegerField(required=False, min_value=0, max_value=100_000)
    completion_url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    pairs = serializers.BooleanField(
        required=False,
        help_text="With two models: a pairwise round over their dialogues that open with the "
        "same message (each dialogue after its opening is an answer), instead of labels.",
    )


class CrowdRoundResultSerializer(serializers.Serializer):
    round = serializers.IntegerField()
    items = serializers.IntegerField(
        help_text="Answers to label (or pairs to compare), one item each."
    )
    crowd_link = serializers.CharField()


class DialogueRoundsAPI(APIView):
    """Make an absolute round in which the crowd labels the models' dialogue answers turn by
    turn (each shown after the conversation before it)."""

    @extend_schema(request=CrowdRoundSerializer, responses={201: CrowdRoundResultSerializer})
    def post(self, request: Request) -> Response:
        params = CrowdRoundSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        project = member_project(request, data["project"])
        models = _models_named(project, data["models"])
        settings = {
            "project": project,
            "name": data["name"],
            "annotators_per_item": data.get("annotators_per_item", 1),
            "shared_items": data.get("shared_items", 0),
            "completion_url": data.get("completion_url", ""),
        }
        try:
            if data.get("pairs"):
                if len(models) != 2:
                    raise DialogueRefused("A pairwise round compares two models: name two.")
                round_ = dialogue_pairs_round_create(
                    model_a=models[0], model_b=models[1], **settings
                )
            else:
                round_ = dialogue_round_create(models=models, **settings)
        except DialogueRefused as problem:
            raise _refused(problem) from None
        body = {"round": round_.pk, "items": round_.items.count(), "crowd_link": crowd_link(round_)}
        return Response(body, status=status.HTTP_201_CREATED)


class StudyInputSerializer(serializers.Serializer):
    project = serializers.CharField()
    models = serializers.ListField(
        child=serializers.CharField(), min_length=1, help_text="Models with a generation backend."
    )
    name = serializers.CharField(max_length=150)
    turns = serializers.IntegerField(required=False, min_value=1, max_value=50)
    max_workers = serializers.IntegerField(required=False, min_value=1, allow_null=True)
    completion_url = serializers.URLField(required=False, allow_blank=True, max_length=500)


class StudySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(source="project.name")
    name = serializers.CharField()
    models = serializers.SerializerMethodField()
    turns = serializers.IntegerField()
    max_workers = serializers.IntegerField(allow_null=True)
    workers = serializers.SerializerMethodField(help_text="Workers who have a dialogue so far.")
    link = serializers.SerializerMethodField(help_text="The link crowd workers open.")

    def get_models(self, study: DialogueStudy) -> list[str]:
        return [model.name for model in study.language_models.all()]

    def get_workers(self, study: DialogueStudy) -> int:
        return study.dialogues.count()

    def get_link(self, study: DialogueStudy) -> str:
        return study_link(study)


class DialogueStudiesAPI(APIView):
    """Dialogue studies: crowd workers talk to the models live through the study's link."""

    @extend_schema(responses=StudySerializer(many=True))
    def get(self, request: Request) -> Response:
        found = studies_for_user(request_user(request))[:100]
        return Response(StudySerializer(found, many=True).data)

    @extend_schema(request=StudyInputSerializer, responses={201: StudySerializer})
    def post(self, request: Request) -> Response:
        params = StudyInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        project = member_project(request, data["project"])
        models = _models_named(project, data["models"])
        try:
            study = study_create(
                project=project,
                models=models,
                name=data["name"],
                user=request_user(request),
                turns=data.get("turns", 5),
                max_workers=data.get("max_workers"),
                completion_url=data.get("completion_url", ""),
            )
        except DialogueRefused as problem:
            raise _refused(problem) from None
        return Response(StudySerializer(study).data, status=status.HTTP_201_CREATED)


class StudyWorkerSerializer(serializers.Serializer):
    worker = serializers.CharField()
    dialogue = serializers.IntegerField()
    model = serializers.CharField()
    status = serializers.CharField()
    answers = serializers.IntegerField()
    labelled = serializers.IntegerField()
    completion_code = serializers.CharField(
        help_text="The code the worker was shown; empty until they finished and labelled all."
    )


class DialogueStudyWorkersAPI(APIView):
    """A study's workers, their dialogues and their completion codes (to check those handed in)."""

    @extend_schema(responses=StudyWorkerSerializer(many=True))
    def get(self, request: Request, study_id: int) -> Response:
        study = get_object_or_404(studies_for_user(request_user(request)), pk=study_id)
        return Response(StudyWorkerSerializer(study_workers(study), many=True).data)
