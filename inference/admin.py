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
