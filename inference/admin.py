from django.contrib import admin

from inference import models


@admin.register(models.Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "model", "base_url", "mode", "template_version"]
    list_filter = ["project", "mode"]
    readonly_fields = ["annotator"]


@admin.register(models.JudgeRun)
class JudgeRunAdmin(admin.ModelAdmin):
    list_display = ["judge", "round", "status", "created_at", "finished_at"]
    list_filter = ["status"]


@admin.register(models.JudgeCall)
class JudgeCallAdmin(admin.ModelAdmin):
    list_display = ["id", "run", "item", "candidate_first", "status", "verdict", "attempts"]
    list_filter = ["status", "cached"]
    raw_id_fields = ["run", "item", "response"]


@admin.register(models.JudgeCache)
class JudgeCacheAdmin(admin.ModelAdmin):
    list_display = ["key", "model", "template_version", "verdict", "created_at"]
    search_fields = ["key"]


@admin.register(models.TrainingSet)
class TrainingSetAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "original_name", "created_at"]
    list_filter = ["project"]


@admin.register(models.TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "base_model", "status", "created_at", "finished_at"]
    list_filter = ["status", "project"]
    raw_id_fields = ["training_set", "dev_set", "judge", "registered_model"]


@admin.register(models.CheckpointScore)
class CheckpointScoreAdmin(admin.ModelAdmin):
    list_display = ["run", "epoch", "step", "mean_score", "scored", "failed", "chosen"]
    list_filter = ["chosen"]
