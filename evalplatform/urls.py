from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("c/", include("annotation.crowd_urls")),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script from a URL of its own, not inline: the
    # Content-Security-Policy allows scripts from this site only.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="api/swagger_ui.html"
        ),
        name="api-docs",
    ),
    path("api/", include("inference.api_urls")),
    path("api/", include("annotation.api_urls")),
    path("", include("inference.urls")),
    path("", include("annotation.urls")),
]

# JSON errors for /api/ paths no API view answers; Django's pages elsewhere.
handler400 = "evalplatform.api_errors.bad_request"
handler403 = "evalplatform.api_errors.permission_denied"
handler404 = "evalplatform.api_errors.page_not_found"
handler500 = "evalplatform.api_errors.server_error"
