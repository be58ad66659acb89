"""The human side's API routes; mounted under /api/ by evalplatform.urls."""

from rest_framework.routers import SimpleRouter

from annotation.api import (
    annotations,
    import_jobs,
    projects,
    prompt_sets,
    ratings,
    responses,
    rounds,
)

router = SimpleRouter(use_regex_path=False)
router.register("projects", projects.ProjectViewSet, basename="api-project")
router.register("prompt-sets", prompt_sets.PromptSetViewSet, basename="api-prompt-set")
router.register("responses", responses.ResponseViewSet, basename="api-response")
router.register("rounds", rounds.RoundViewSet, basename="api-round")
router.register("annotations", annotations.AnnotationViewSet, basename="api-annotation")
router.register("ratings", ratings.RatingViewSet, basename="api-rating")
router.register("import-jobs", import_jobs.ImportJobViewSet, basename="api-import-job")

urlpatterns = router.urls
