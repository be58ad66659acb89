from django.contrib import admin

from annotation import models


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    filter_horizontal = ["members"]


@admin.register(models.PromptSet)
class PromptSetAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "created_at"]
    list_filter = ["project"]


@admin.register(models.Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["external_id", "prompt_set", "position"]
    list_filter = ["prompt_set"]
    search_fields = ["text", "external_id"]


@admin.register(models.LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "backend", "created_at"]
    list_filter = ["project", "backend"]


@admin.register(models.Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["id", "model", "prompt", "settings_key", "created_at"]
    list_filter = ["model"]
    raw_id_fields = ["prompt"]
    list_select_related = ["model", "prompt__prompt_set"]


@admin.register(models.Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "candidate", "annotators_per_item", "created_at"]
    list_filter = ["project"]
    filter_horizontal = ["baselines"]


@admin.register(models.Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "round", "baseline", "candidate_first", "is_shared", "taken", "completed"]
    list_filter = ["round", "is_shared"]
    raw_id_fields = ["prompt", "candidate_response", "baseline_response"]


@admin.register(models.Annotator)
class AnnotatorAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "user", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]


@admin.register(models.WorkerSession)
class WorkerSessionAdmin(admin.ModelAdmin):
    list_display = ["annotator", "round", "completed_items", "started_at", "finished_at"]
    list_filter = ["round"]


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "session", "status", "leased_at", "expires_at"]
    list_filter = ["status"]
    raw_id_fields = ["item", "session"]


@admin.register(models.Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "annotator", "choice", "shown_choice", "seconds_spent"]
    list_filter = ["choice", "annotator__kind"]
    raw_id_fields = ["item", "assignment"]


@admin.register(models.ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["original_name", "kind", "status", "processed", "total", "created_at"]
    list_filter = ["status", "kind"]


@admin.register(models.Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ["id", "annotator", "model", "question", "turn", "scale", "label", "score"]
    list_filter = ["scale", "annotator__kind"]
    raw_id_fields = ["response"]
    list_select_related = ["annotator", "model"]
