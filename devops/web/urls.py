"""The browser UI's URLs (namespace "web"). Stable: links are real hrefs and each page works on reload.

`<project>` is the project id (`p-xxxxx`, as in the API), `<pipeline>` the
pipeline's name. The execution page (`web:run`) and the log viewer live in
`urls_run.py` / `urls_logs.py`, wired in beside these.
"""
from __future__ import annotations

from django.urls import include, path

from devops.web import (
    urls_editor,
    urls_run,
    views,
    views_accounts,
    views_notify,
    views_scm,
    views_settings,
)

app_name = "web"

P = "p/<str:project>/"
PIPE = P + "pipelines/<str:pipeline>/"

urlpatterns = [
    path("", views.projects, name="projects"),
    path(P, views.project, name="project"),
    path(P + "pipelines/new", views.pipeline_new, name="pipeline-new"),
    path(PIPE, views.pipeline, name="pipeline"),
    path(PIPE + "run", views.pipeline_run, name="pipeline-run"),
    path(PIPE + "delete", views.pipeline_delete, name="pipeline-delete"),
    path(P + "settings/", views_settings.project_settings, name="settings"),
    path(P + "settings/settings/<str:name>", views_settings.setting, name="setting"),
    path(P + "settings/members", views_settings.member_add, name="member-add"),
    path(P + "settings/members/<str:user>", views_settings.member, name="member"),
    path(P + "settings/secrets", views_settings.secret_set, name="secret-set"),
    path(P + "settings/secrets/<str:name>/delete", views_settings.secret_delete, name="secret-delete"),
    path(P + "settings/registry-credentials", views_settings.registry_credential_set,
         name="registry-credential-set"),
    path(P + "settings/registry-credentials/<int:pk>/delete", views_settings.registry_credential_delete,
         name="registry-credential-delete"),
    path(P + "settings/caches/clear", views_settings.caches_clear, name="caches-clear"),
    path(P + "settings/providers/", views_scm.providers, name="scm-providers"),
    path(P + "settings/providers/<str:kind_name>", views_scm.provider, name="scm-provider"),
    path(P + "repositories/", views_scm.repositories, name="scm-repositories"),
    path(P + "repositories/connect/<str:kind_name>", views_scm.connect, name="scm-connect"),
    path(P + "repositories/refresh/<int:credential>", views_scm.repositories_refresh, name="scm-refresh"),
    path(P + "repositories/<int:pk>/enable", views_scm.repository_enable, name="scm-enable"),
    path(P + "settings/notifiers", views_notify.notifier_set, name="notifier-set"),
    path(P + "settings/notifiers/<str:name>/delete", views_notify.notifier_delete, name="notifier-delete"),
    path(P + "settings/notifiers/<str:name>/test", views_notify.notifier_test, name="notifier-test"),
    path("account/tokens/", views_accounts.tokens, name="tokens"),
    path("account/tokens/new", views_accounts.token_create, name="token-create"),
    path("account/tokens/revoke", views_accounts.token_revoke, name="token-revoke"),
    *urls_run.urlpatterns,
    *urls_editor.urlpatterns,
    path("", include("devops.web.urls_logs")),
]
