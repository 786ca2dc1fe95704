"""Models <-> devops.scm: a credential's provider client, token refresh, repositories, webhooks.

devops/scm sees plain data (App, Token, Repo); this module reads and writes
the rows around each call. Token refresh is serialised per credential (the
row `FOR UPDATE`): GitLab invalidates the old pair and Bitbucket Cloud rotates
the refresh token, so two processes refreshing with the same refresh token
would leave one of them holding a dead pair. The new pair is committed before
it is used. A 401 marks the credential `revoked` (the repositories page
offers "reconnect"); no token ever reaches a log line or an error message.
"""
from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from devops.kinds import KindUnavailable
from devops.models import (
    Pipeline,
    SourceCodeCredential,
    SourceCodeProviderConfig,
    SourceCodeRepository,
)
from devops.scm import base, http
from devops.scm.providers import PROVIDERS, oauth_provider_id

log = logging.getLogger(__name__)

REFRESH_AHEAD = timedelta(minutes=10)  # GitLab and Bitbucket tokens live 2 h; refresh well before


class NotConnected(Exception):
    """The provider type has no app in this project, or no API module."""


def callback_url(kind_name: str) -> str:
    return f"{settings.PUBLIC_URL}/accounts/{oauth_provider_id(PROVIDERS.get(kind_name))}/login/callback/"


def webhook_url(pipeline: Pipeline, provider: str) -> str:
    return f"{settings.PUBLIC_URL}/api/v1/hooks/{provider}/{pipeline.name}"


def app_of(project_id: str, kind_name: str) -> base.App:
    config = SourceCodeProviderConfig.objects.filter(project_id=project_id, type=kind_name).first()
    if config is None or not config.client_id:
        raise NotConnected(f"no {kind_name} app is set up in this project")
    return base.App(client_id=config.client_id, client_secret=config.client_secret or "",
                    hostname=config.hostname, redirect_uri=callback_url(kind_name),
                    allow_private=settings.SLIPWAY_SCM_ALLOW_PRIVATE)


def provider_class(kind_name: str) -> type[base.Provider]:
    try:
        return PROVIDERS.load(kind_name)
    except KindUnavailable:
        raise NotConnected(f"{kind_name} has no provider API in Slipway") from None


def repo_data(row: SourceCodeRepository) -> base.Repo:
    return base.Repo(external_id=row.external_id, full_name=row.full_name, clone_url=row.url,
                     html_url=row.html_url, default_branch=row.default_branch, private=row.private,
                     api_id=row.api_id)


def _expiry(token: base.Token) -> datetime | None:
    return datetime.fromtimestamp(token.expires_at, tz=UTC) if token.expires_at else None


def mark_revoked(cred: SourceCodeCredential, why: str) -> None:
    SourceCodeCredential.objects.filter(pk=cred.pk).update(revoked=True, last_error=why[:500])
    cred.revoked, cred.last_error = True, why[:500]
    log.warning("credential %s (%s): revoked: %s", cred.pk, cred.source_code_type, why)


def refresh(cred: SourceCodeCredential, *, force: bool = False) -> SourceCodeCredential:
    """Refresh the token pair if it expires within REFRESH_AHEAD (or `force`); the row is updated in place.

    The refresh runs under the row lock and the new pair is saved before the
    lock is released, so a concurrent caller waits and then sees the new pair.
    A refused refresh (4xx) marks the credential revoked; Transient propagates.
    """
    cls = provider_class(cred.source_code_type)
    if not cls.expiring_tokens:
        return cred
    with transaction.atomic():
        row = SourceCodeCredential.objects.select_for_update().get(pk=cred.pk)
        due = row.expiry is not None and row.expiry - timezone.now() < REFRESH_AHEAD
        if row.revoked or not row.refresh_token or not (due or force):
            _copy(row, cred)
            return cred
        if force and cred.access_token != row.access_token:
            _copy(row, cred)  # another process refreshed while we waited: use its pair
            return cred
        app = app_of(row.project_id, row.source_code_type)
        refused = ""
        try:
            token = cls.refresh(app, row.refresh_token)
        except http.Transient:
            raise
        except (http.ProviderError, ValueError) as exc:
            # Saved under the lock (not raised out of it, which would roll the mark back).
            refused = f"the token could not be refreshed: {exc}"[:500]
            row.revoked, row.last_error = True, refused
            row.save(update_fields=["revoked", "last_error"])
        else:
            row.access_token = token.access
            row.refresh_token = token.refresh or row.refresh_token
            row.expiry = _expiry(token)
            row.save(update_fields=["access_token", "refresh_token", "expiry"])
    _copy(row, cred)
    if refused:
        log.warning("credential %s (%s): refresh refused", row.pk, row.source_code_type)
        raise http.Unauthorized(refused, 401)
    return cred


def _copy(src: SourceCodeCredential, dst: SourceCodeCredential) -> None:
    for f in ("access_token", "refresh_token", "expiry", "revoked", "last_error"):
        setattr(dst, f, getattr(src, f))


def call(cred: SourceCodeCredential, fn):
    """fn(provider) with a fresh token; on 401 one forced refresh and retry, then `revoked`."""
    cls = provider_class(cred.source_code_type)
    app = app_of(cred.project_id, cred.source_code_type)
    refresh(cred)
    if cred.revoked:
        raise http.Unauthorized(cred.last_error or "the token was revoked: reconnect", 401)
    try:
        return fn(cls(app, cred.access_token))
    except http.Unauthorized:
        if not (cls.expiring_tokens and cred.refresh_token):
            mark_revoked(cred, "the provider refused the token (401): reconnect")
            raise
    refresh(cred, force=True)  # maybe only expired early: one refresh, one retry
    if cred.revoked:
        raise http.Unauthorized(cred.last_error, 401)
    try:
        return fn(cls(app, cred.access_token))
    except http.Unauthorized:
        mark_revoked(cred, "the provider refused the refreshed token (401): reconnect")
        raise


def refresh_due_credentials(limit: int = 20) -> bool:
    """Refresh every expiring token before it expires (the controller's tick). True if any was refreshed."""
    soon = timezone.now() + REFRESH_AHEAD
    did = False
    rows = (SourceCodeCredential.objects.filter(revoked=False, expiry__lt=soon)
            .exclude(refresh_token="").exclude(source_code_type="git").order_by("expiry")[:limit])
    for cred in rows:
        try:
            refresh(cred)
            did = True
        except (http.ProviderError, NotConnected) as exc:
            log.info("credential %s: not refreshed: %s", cred.pk, exc)
        except DatabaseError:
            raise
        except Exception:  # one bad row never stops the controller's pass
            log.exception("credential %s: refresh failed", cred.pk)
    return did


# --- repositories ---------------------------------------------------------------------


def clone_url_problem(url: str) -> str | None:
    """Why a provider's `clone_url` may not become a pipeline's repository, or None.

    The listing is the provider's answer (a self-hosted one is whatever server
    the owner named), and enabling puts its URL on a pipeline unchecked by the
    API's rules: so only a plain https URL to a public host, with no
    credentials in it. `file:///...`, a local path or `ext::` would read the
    Slipway host's own repositories (other projects' mirrors among them).
    """
    from urllib.parse import urlsplit

    from devops.scm.git import embedded_credentials

    if not url or any(c.isspace() or ord(c) < 32 for c in url):
        return "the provider's clone URL is empty or has spaces"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the provider's clone URL is not a URL"
    if parts.scheme != "https" or not parts.hostname:
        return f"the provider's clone URL is not an https:// URL: {url[:200]!r}"
    if embedded_credentials(url):
        return "the provider's clone URL holds credentials"
    return http.host_problem(parts.netloc.rpartition("@")[2], allow_private=settings.SLIPWAY_SCM_ALLOW_PRIVATE)


def _web_link(url: str) -> str:
    """A provider's page link, kept only when it is http(s) (it becomes an href on the page)."""
    return url if url.lower().startswith(("https://", "http://")) else ""


def refresh_repositories(cred: SourceCodeCredential) -> int:
    """List the provider's repositories into SourceCodeRepository rows; the number listed.

    A repository whose clone URL Slipway would not clone (`clone_url_problem`) is left out."""
    repos = call(cred, lambda p: p.list_repos())
    now = timezone.now()
    seen = []
    for r in repos:
        problem = clone_url_problem(r.clone_url)
        if problem:
            log.warning("credential %s: %s left out: %s", cred.pk, r.full_name[:200], problem)
            continue
        row, _ = SourceCodeRepository.objects.update_or_create(
            credential=cred, external_id=r.external_id or r.full_name,
            defaults={"project_id": cred.project_id, "source_code_type": cred.source_code_type,
                      "url": r.clone_url, "full_name": r.full_name, "api_id": r.api_id,
                      "html_url": _web_link(r.html_url),
                      "default_branch": r.default_branch, "private": r.private, "language": r.language,
                      "permissions": r.permissions, "refreshed": now})
        seen.append(row.pk)
    # Gone from the provider's list (deleted, access lost): drop unless a pipeline uses it.
    (SourceCodeRepository.objects.filter(credential=cred, pipeline__isnull=True).exclude(pk__in=seen).delete())
    return len(seen)


def enable(row: SourceCodeRepository, *, name: str = "", display_name: str = "") -> Pipeline:
    """A Pipeline for the repository and its provider webhook (secret generated, stored encrypted).

    The hook is created after the pipeline row (its URL names the pipeline);
    if the provider refuses, the pipeline is removed again and the error raised.
    """
    if row.pipeline_id:
        raise ValueError(f"{row.full_name} already has pipeline {row.pipeline.name}")
    problem = clone_url_problem(row.url)
    if problem:
        raise http.ProviderError(problem)
    cred = row.credential
    pipeline = Pipeline(project_id=row.project_id, repository_url=row.url, credential=cred,
                        display_name=display_name or row.full_name, default_branch=row.default_branch or "main",
                        trigger_webhook_push=True, trigger_webhook_tag=True, trigger_webhook_pr=True,
                        webhook_token=secrets.token_urlsafe(32))
    if name:
        pipeline.name = name
    pipeline.save()
    url = webhook_url(pipeline, cred.source_code_type)
    try:
        hook = call(cred, lambda p: p.create_hook(repo_data(row), url, pipeline.webhook_token))
    except BaseException:
        pipeline.delete()
        raise
    Pipeline.objects.filter(pk=pipeline.pk).update(webhook_id=hook)
    pipeline.webhook_id = hook
    row.pipeline, row.hook_id, row.hook_error = pipeline, hook, ""
    row.save(update_fields=["pipeline", "hook_id", "hook_error"])
    log.info("%s: pipeline %s with webhook %s", row.full_name, pipeline.name, hook)
    return pipeline


def delete_hook_of_pipeline(sender, instance: Pipeline, **kwargs) -> None:
    """pre_delete of a Pipeline: delete its provider webhook after the commit, best effort.

    Never blocks the delete: the provider may be down or the token revoked;
    the outcome is logged and the webhook left for the user to remove.
    """
    row = SourceCodeRepository.objects.filter(pipeline=instance).select_related("credential").first()
    if row is None or not row.hook_id or row.credential is None:
        return
    cred, repo, hook, name = row.credential, repo_data(row), row.hook_id, instance.name

    def delete() -> None:
        try:
            call(cred, lambda p: p.delete_hook(repo, hook))
            log.info("pipeline %s deleted: webhook %s of %s deleted", name, hook, repo.full_name)
        except Exception as exc:  # best effort: logged, never raised into the delete
            log.warning("pipeline %s deleted: webhook %s of %s NOT deleted: %s", name, hook, repo.full_name,
                        type(exc).__name__ if not isinstance(exc, http.ProviderError) else exc)
        SourceCodeRepository.objects.filter(pk=row.pk).update(hook_id="")

    transaction.on_commit(delete)


def pipeline_file(pipeline: Pipeline, commit: str, filenames: tuple[str, ...] | list[str],
                  limit: int) -> tuple[str, bytes] | None:
    """(filename, content) of the first pipeline file at `commit` through the provider's contents API.

    None when the pipeline is not a provider repository (generic Git: the mirror
    is read) or none of the names exists at that commit. Provider errors propagate.
    """
    row = getattr(pipeline, "scm_repository", None) if pipeline.pk else None
    if row is None or row.credential is None:
        return None
    repo = repo_data(row)
    for name in filenames:
        body = call(row.credential, lambda p, n=name: p.read_file(repo, n, commit, limit))
        if body is not None:
            return name, body
    return None
