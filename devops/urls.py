from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("devops.oauth.urls")),  # GitHub's paths with a per-app host (GitHub Enterprise)
    path("accounts/", include("allauth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("devops.api.urls")),
    path("", include("devops.triggers.urls")),  # api/v1/hooks/... (webhooks, image pushes), the badge
    # The browser UI: `/` is your projects (anonymous: the login page).
    path("", include("devops.web.urls")),
]
