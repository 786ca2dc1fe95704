"""Forms of the browser UI. Each validates through the rules the API uses, so both refuse the same input
with the same message (the DRF serializers of `devops.api.serializers` and `devops.api.validation`)."""
from __future__ import annotations

from django import forms
from django.db import IntegrityError, transaction

from devops.api.serializers import PipelineSpecSerializer, SettingValueSerializer
from devops.api.validation import check_secret_data, check_secret_name
from devops.api.views_pipelines import PIPELINE_NAME
from devops.models import Pipeline, SourceCodeCredential
from devops.scm.git import embedded_credentials

CREDENTIAL_KINDS = [("none", "None (public repository)"), ("token", "Access token"), ("ssh", "SSH private key")]


def _first_errors(errors: dict) -> dict[str, str]:
    """DRF's {"field": ["message", ...]} -> {"field": "message; message"}."""
    return {field: "; ".join(str(m) for m in messages) for field, messages in errors.items()}


class PipelineForm(forms.Form):
    """Add a pipeline from a Git URL, with an optional credential stored encrypted (SourceCodeCredential)."""

    repository_url = forms.CharField(label="Git URL", max_length=1024)
    name = forms.CharField(label="Name", max_length=48, required=False,
                           help_text="lowercase letters, digits and '-'; empty: a generated id")
    display_name = forms.CharField(label="Display name", max_length=255, required=False)
    default_branch = forms.CharField(label="Default branch", max_length=255, initial="main")
    credential_kind = forms.ChoiceField(label="Credential", choices=CREDENTIAL_KINDS, initial="none",
                                        widget=forms.RadioSelect)
    username = forms.CharField(label="User name (for the token)", max_length=255, required=False)
    token = forms.CharField(label="Token", required=False, max_length=4096,
                            widget=forms.PasswordInput(render_value=False), strip=False)
    ssh_private_key = forms.CharField(label="SSH private key", required=False, max_length=16384,
                                      widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}), strip=False)

    def __init__(self, *args, request=None, project=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request, self.project = request, project

    def clean(self):
        data = super().clean()
        # The API's own serializer: the same URL rules (no embedded credentials,
        # file:// for administrators only) and branch rules, with its messages.
        spec = {"repositoryUrl": data.get("repository_url", ""), "defaultBranch": data.get("default_branch", "")}
        serializer = PipelineSpecSerializer(data=spec, partial=True, context={"request": self.request})
        if not serializer.is_valid():
            field_of = {"repositoryUrl": "repository_url", "defaultBranch": "default_branch"}
            for field, message in _first_errors(serializer.errors).items():
                self.add_error(field_of.get(field), message)
            if embedded_credentials(spec["repositoryUrl"].strip()):
                # never render the password back into the page
                self.data = self.data.copy()
                self.data["repository_url"] = ""
        else:
            data["repository_url"] = serializer.validated_data["repositoryUrl"]
        name = data.get("name") or ""
        if name and not PIPELINE_NAME.match(name):
            self.add_error("name", "lowercase letters, digits and '-', at most 48")
        kind = data.get("credential_kind")
        if kind == "token" and not data.get("token"):
            self.add_error("token", "an access token is needed for this credential")
        if kind == "ssh" and "PRIVATE KEY" not in (data.get("ssh_private_key") or ""):
            self.add_error("ssh_private_key", "paste an SSH private key (-----BEGIN ... PRIVATE KEY-----)")
        return data

    def save(self) -> Pipeline:
        """The new pipeline (and its credential). Call after is_valid(); a taken name is a field error."""
        data = self.cleaned_data
        pipeline = Pipeline(project=self.project, repository_url=data["repository_url"],
                            display_name=data.get("display_name") or "", default_branch=data["default_branch"])
        if data.get("name"):
            pipeline.name = data["name"]
        try:
            with transaction.atomic():
                pipeline.save()
                kind = data["credential_kind"]
                if kind in ("token", "ssh"):
                    pipeline.credential = SourceCodeCredential.objects.create(
                        project=self.project, name=f"{pipeline.name}-git",
                        user=self.request.user if self.request else None, source_code_type="git",
                        login_name=data.get("username") or "" if kind == "token" else "",
                        access_token=data["token"] if kind == "token" else "",
                        ssh_private_key=data["ssh_private_key"] if kind == "ssh" else "",
                    )
                    pipeline.save(update_fields=["credential"])
        except IntegrityError:
            self.add_error("name", f"a pipeline named {pipeline.name!r} exists")
            raise
        return pipeline


class RunForm(forms.Form):
    """The Run dialog: what `do_run` takes from a person."""

    branch = forms.CharField(label="Branch", max_length=255, required=False)
    commit = forms.CharField(label="Commit", max_length=64, required=False,
                             help_text="empty: the head of the branch")
    config = forms.CharField(label="Use an edited config", required=False, strip=False,
                             widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
                             help_text="YAML run once as a temporary config, without committing it")


def setting_error(name: str, value: str, *, superuser: bool) -> tuple[str, str | None]:
    """(cleaned value, None) or (value, the API's message): SettingValueSerializer, exactly as the API."""
    serializer = SettingValueSerializer(data={"value": value},
                                        context={"setting_name": name, "superuser": superuser})
    if serializer.is_valid():
        return serializer.validated_data["value"], None
    return value, _first_errors(serializer.errors).get("value", "invalid value")


class SecretForm(forms.Form):
    """Add or change one key of a secret; the value is write-only (never rendered back)."""

    name = forms.CharField(label="Secret name", max_length=253)
    key = forms.CharField(label="Key", max_length=253)
    value = forms.CharField(label="Value", strip=False, required=False,
                            widget=forms.PasswordInput(render_value=False))

    def clean_name(self):
        try:
            return check_secret_name(self.cleaned_data["name"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        if "key" in data:
            try:
                check_secret_data({data["key"]: data.get("value") or ""})
            except ValueError as exc:
                self.add_error("key", str(exc))
        return data


class RegistryCredentialForm(forms.Form):
    host = forms.CharField(label="Registry host", max_length=255)
    username = forms.CharField(label="User name", max_length=255)
    password = forms.CharField(label="Password", max_length=4096, strip=False,
                               widget=forms.PasswordInput(render_value=False))


class MemberForm(forms.Form):
    user = forms.CharField(label="User name", max_length=150)
    role = forms.ChoiceField(label="Role", choices=[("owner", "Owner"), ("member", "Member"),
                                                    ("read-only", "Read-only")], initial="member")
