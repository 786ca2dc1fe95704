"""`${CICD_*}` substitution: the fields Rancher substituted, never shellScript."""
from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from devops.pipeline import load, substitute
from tests.pipeline.strategies import pipeline

ENV = {"CICD_GIT_BRANCH": "main", "CICD_EXECUTION_SEQUENCE": "7", "CICD_GIT_REPO_NAME": "app", "HOME": "/root"}

TEXT = textwrap.dedent(
    """
    stages:
    - name: ${CICD_GIT_REPO_NAME}
      steps:
      - runScriptConfig:
          image: golang:${CICD_GIT_BRANCH}
          shellScript: echo ${CICD_GIT_BRANCH} ${CICD_EXECUTION_SEQUENCE}
        env:
          REF: ${CICD_GIT_BRANCH}-${CICD_UNKNOWN}
          H: ${HOME}
          S: ${CICD_GIT_BRANCH,,}
      - publishImageConfig:
          tag: org/${CICD_GIT_REPO_NAME}:${CICD_EXECUTION_SEQUENCE}
          dockerfilePath: ./${CICD_GIT_BRANCH}/Dockerfile
          buildContext: ${CICD_GIT_BRANCH}
          registry: reg-${CICD_GIT_BRANCH}.example.com
      - applyYamlConfig: {path: "deploy/${CICD_GIT_BRANCH}.yaml", namespace: "ns-${CICD_GIT_BRANCH}"}
      - applyYamlConfig: {content: "image: $CICD_GIT_BRANCH ${CICD_GIT_BRANCH}"}
      - applyAppConfig:
          catalogTemplate: c:${CICD_GIT_BRANCH}
          version: 1.${CICD_EXECUTION_SEQUENCE}
          name: ${CICD_GIT_REPO_NAME}
          targetNamespace: ${CICD_GIT_REPO_NAME}-ns
          answers:
            tag: ${CICD_EXECUTION_SEQUENCE}
      - publishCatalogConfig:
          path: charts/${CICD_GIT_REPO_NAME}
          catalogTemplate: ${CICD_GIT_REPO_NAME}
          version: ${CICD_EXECUTION_SEQUENCE}
          gitUrl: https://git/${CICD_GIT_REPO_NAME}.git
          gitBranch: ${CICD_GIT_BRANCH}
          gitAuthor: ${CICD_GIT_BRANCH}
          gitEmail: ${CICD_GIT_BRANCH}@x
    """
)


def test_substituted_fields():
    config = substitute(load(TEXT).config, ENV)
    run, pub, yml, content, app, cat = config.stages[1].steps
    assert run.type.image == "golang:main"
    assert run.type.shell_script == "echo ${CICD_GIT_BRANCH} ${CICD_EXECUTION_SEQUENCE}"  # untouched
    assert dict(run.env) == {"REF": "main-${CICD_UNKNOWN}", "H": "${HOME}", "S": "${CICD_GIT_BRANCH,,}"}
    assert (pub.type.tag, pub.type.dockerfile_path, pub.type.build_context, pub.type.registry) == (
        "org/app:7", "./main/Dockerfile", "main", "reg-main.example.com",
    )
    assert (yml.type.path, yml.type.namespace) == ("deploy/main.yaml", "ns-main")
    assert content.type.content == "image: $CICD_GIT_BRANCH main"
    assert (app.type.catalog_template, app.type.version, app.type.name, app.type.target_namespace) == (
        "c:main", "1.7", "app", "app-ns",
    )
    assert dict(app.type.answers) == {"tag": "7"}
    assert (cat.type.path, cat.type.catalog_template, cat.type.version, cat.type.git_url,
            cat.type.git_branch, cat.type.git_author, cat.type.git_email) == (
        "charts/app", "app", "7", "https://git/app.git", "main", "main", "main@x",
    )
    assert config.stages[1].name == "${CICD_GIT_REPO_NAME}"  # stage names are not substituted


@settings(max_examples=25, deadline=None, database=None)
@given(pipeline, st.dictionaries(st.from_regex(r"CICD_[A-Z_]{1,8}", fullmatch=True), st.text(max_size=5)))
def test_never_touches_shell_script(config, env):
    out = substitute(config, env)
    before = [s.type.shell_script for st_ in config.stages for s in st_.steps if s.kind == "runScriptConfig"]
    after = [s.type.shell_script for st_ in out.stages for s in st_.steps if s.kind == "runScriptConfig"]
    assert before == after
    assert substitute(config, {}) == config
