"""One execution's pages: the run, its config, Rerun and Stop."""
from __future__ import annotations

from django.urls import path

from devops.web import views_run as views

_RUN = "p/<str:project>/pipelines/<str:pipeline>/runs/<int:n>/"

urlpatterns: list = [
    path(_RUN, views.run_page, name="run"),
    path(_RUN + "config", views.run_config, name="run-config"),
    path(_RUN + "rerun", views.run_rerun, name="run-rerun"),
    path(_RUN + "stop", views.run_stop, name="run-stop"),
]
