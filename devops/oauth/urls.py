"""allauth's GitHub paths, answered by the per-app-host adapter; included before allauth.urls."""
from __future__ import annotations

from django.urls import path

from devops.oauth import github

urlpatterns = [
    path("accounts/github/login/", github.oauth2_login),
    path("accounts/github/login/callback/", github.oauth2_callback),
]
