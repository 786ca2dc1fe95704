"""The settings page's Notifiers section: add or change, delete, send a test (README *Notifications*).

Validated by the API's rules (`devops.api.notifiers.apply`), so the page and
`/api/v1/projects/{project}/notifiers/` refuse the same things with the
same messages, each under its field. Secret fields (URL, signing secret)
are password inputs that never render a value: left empty on a change,
they keep what is stored.
"""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from devops.api import notifiers
from devops.controller.notifications import send_test
from devops.models import Notifier
from devops.notifications.base import DeliveryFailure
from devops.notifications.kinds import NOTIFIERS
from devops.web.access import project_for


def _config_fields() -> dict[str, tuple[str, bool, list[str], str]]:
    """{field: (label, secret, kinds using it, help)}: the union of the kinds' fields."""
    out: dict[str, tuple[str, bool, list[str], str]] = {}
    for kind in notifiers.kinds_help():
        for f in kind["fields"]:
            label, secret, kinds, help_text = out.get(f["name"], (f["label"], f["secret"], [], f["help"]))
            out[f["name"]] = (label, secret or f["secret"], [*kinds, kind["name"]], help_text)
    return out


class NotifierForm(forms.Form):
    """Fields are prefixed `notifier-` (ids and names): the page's other forms have a `name` too."""

    prefix = "notifier"
    name = forms.CharField(label="Notifier name", max_length=63,
                           help_text="the pipeline file names it: notification.recipients[].notifier")
    kind = forms.ChoiceField(label="Kind", choices=NOTIFIERS.choices())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (label, secret, kinds, help_text) in _config_fields().items():
            widget = forms.PasswordInput(render_value=False) if secret else forms.TextInput()
            self.fields[f"config_{name}"] = forms.CharField(
                label=label, required=False, strip=True, widget=widget,
                help_text=f"{', '.join(kinds)}: {help_text}" + (" (write-only; empty keeps the stored value)"
                                                               if secret else ""))

    def config(self) -> dict[str, str]:
        kind_fields = {f.name for f in NOTIFIERS.load(self.cleaned_data["kind"]).fields}
        secret = set(NOTIFIERS.load(self.cleaned_data["kind"]).secret_fields())
        out = {}
        for name in kind_fields:
            value = self.cleaned_data.get(f"config_{name}", "")
            if value or name not in secret:
                out[name] = value
        return out


def _back(project) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("web:settings", args=[project.id]) + "#notifiers")


@login_required
@require_POST
def notifier_set(request: HttpRequest, project: str):
    """Add a notifier, or change the one of that name (same kind: empty secret fields keep their values)."""
    from devops.web.views_settings import project_settings

    proj = project_for(request, project, "write")
    form = NotifierForm(request.POST)
    if form.is_valid():
        existing = Notifier.objects.filter(project=proj, name=form.cleaned_data["name"]).first()
        try:
            obj = notifiers.apply(proj, {"name": form.cleaned_data["name"], "kind": form.cleaned_data["kind"],
                                         "config": form.config()}, existing)
        except notifiers.NotifierInvalid as exc:
            for field, errs in exc.errors.items():
                if isinstance(errs, dict):
                    for sub, sub_errs in errs.items():
                        target = f"config_{sub}" if f"config_{sub}" in form.fields else None
                        form.add_error(target, f"{sub}: {'; '.join(sub_errs)}" if target is None else
                                       "; ".join(sub_errs))
                else:
                    form.add_error(field if field in form.fields else None, "; ".join(errs))
        else:
            messages.success(request, f"Notifier {obj.name} saved.")
            return _back(proj)
    return project_settings(request, project, forms={"notifier": form}, status=400)


@login_required
@require_POST
def notifier_delete(request: HttpRequest, project: str, name: str):
    proj = project_for(request, project, "write")
    get_object_or_404(Notifier, project=proj, name=name).delete()
    messages.success(request, f"Notifier {name} deleted.")
    return _back(proj)


@login_required
@require_POST
def notifier_test(request: HttpRequest, project: str, name: str):
    """Send a test message now; the outcome or the error is shown as a message."""
    proj = project_for(request, project, "write")
    obj = get_object_or_404(Notifier, project=proj, name=name)
    recipient = request.POST.get("recipient", "")[:1024]
    try:
        outcome = send_test(obj, recipient)
    except DeliveryFailure as exc:
        messages.error(request, f"Test of {name} failed: {exc}")
    else:
        messages.success(request, f"Test of {name} sent: {outcome}.")
    return _back(proj)


def notifier_context(project, form: NotifierForm | None) -> dict:
    """The section's context for views_settings.project_settings: the rows (no secret values) and the form."""
    rows = list(Notifier.objects.filter(project=project).order_by("name"))
    for n in rows:
        try:
            n.secret_names = sorted(n.secrets or {})
        except ValueError:  # stored under another key: listed without its fields
            n.secret_names = []
    return {"notifiers": rows, "notifier_form": form or NotifierForm()}
