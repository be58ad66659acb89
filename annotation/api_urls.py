from rest_framework.routers import SimpleRouter

from annotation import api

router = SimpleRouter(use_regex_path=False)
router.register("projects", api.ProjectViewSet, basename="api-project")
router.register("prompt-sets", api.PromptSetViewSet, basename="api-prompt-set")
router.register("responses", api.ResponseViewSet, basename="api-response")
router.register("models", api.LanguageModelViewSet, basename="api-model")
router.register("rounds", api.RoundViewSet, basename="api-round")
router.register("annotations", api.AnnotationViewSet, basename="api-annotation")

urlpatterns = router.urls
