"""The pipeline editor's URLs (namespace "web", wired into urls.py beside the others)."""
from __future__ import annotations

from django.urls import path

from devops.web import views_editor

PIPE = "p/<str:project>/pipelines/<str:pipeline>/"

urlpatterns = [
    path(PIPE + "edit", views_editor.editor, name="pipeline-edit"),
    path(PIPE + "edit/op", views_editor.editor_op, name="pipeline-edit-op"),
    path(PIPE + "edit/lint", views_editor.editor_lint, name="pipeline-edit-lint"),
    path(PIPE + "edit/save", views_editor.editor_save, name="pipeline-edit-save"),
]
