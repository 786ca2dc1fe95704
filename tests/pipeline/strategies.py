"""Hypothesis strategies for normalised pipeline configs.

They generate configs in normal form (what `load` can return): the Clone
stage first, no empty constraints, no empty `cache`/`notification` blocks,
unique env/answers keys, valid globs, events, quantities, workspace paths,
image references, registries and environment variable names.
"""
from __future__ import annotations

from hypothesis import strategies as st

from devops.pipeline.config import (
    ApplyAppConfig,
    ApplyYamlConfig,
    CacheConfig,
    Constraint,
    Constraints,
    EnvFrom,
    Notification,
    PipelineConfig,
    PublishCatalogConfig,
    PublishImageConfig,
    RunScriptConfig,
    Stage,
    Step,
)
from devops.pipeline.normalise import CLONE_STAGE

# Any text YAML can carry: no surrogates; include quotes, colons, hashes,
# `${CICD_*}`, newlines, leading/trailing spaces and look-alikes of numbers.
_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufeff")
text = st.one_of(
    st.text(_chars, max_size=20),
    st.sampled_from(["10.20", "true", "0x1F", "null", "~", "", " lead", "trail ", "a: b", "# c", "'q'",
                     '"dq"', "${CICD_GIT_BRANCH}", "line1\nline2\n", "  indented\n", "|", "- x", "<<", "1e3"]),
)
nonempty = text.filter(lambda s: s.strip() != "")
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,12}", fullmatch=True)
rel_path = st.from_regex(r"(\./)?([a-z0-9_\-]{1,8}/){0,2}[a-z0-9_.\-]{1,10}", fullmatch=True).filter(
    lambda p: ".." not in p
)
abs_path = st.from_regex(r"/[a-z0-9_\-]{1,8}(/[a-z0-9_.\-]{1,8}){0,2}", fullmatch=True)
globs = st.sampled_from(["master", "main", "release-*", "feature/*", "v[0-9]*", "dev?", "*", "a\\*b", "[^x]y"])
cpu = st.sampled_from(["", "100m", "1", "0.5", "2e3", "0"])
memory = st.sampled_from(["", "1", "256Mi", "1Gi", "2e3", "1.5Ki", "0"])  # whole bytes only
# valid image references and registries (lint refuses the rest, issue 9 point 8)
registries = st.sampled_from(["index.docker.io", "reg.example.com:5000", "127.0.0.1:5000", "harbor.io/team"])
image_tags = st.sampled_from(["app", "org/app:1", "${CICD_GIT_REPO_NAME}:${CICD_GIT_BRANCH}", "a.b-c_d/e__f:v1.0-x",
                              "reg.example.com/app:1,latest", "localhost:5000/app", "0", "10.20"])
remote_tags = image_tags.filter(lambda t: t.startswith(("reg.", "localhost")))


def _constraint(patterns) -> st.SearchStrategy[Constraint]:
    lists = st.lists(patterns, max_size=3).map(tuple)
    return st.tuples(lists, lists).filter(lambda t: t[0] or t[1]).map(
        lambda t: Constraint(include=t[0], exclude=t[1])
    )


constraint = _constraint(globs)
event_constraint = _constraint(st.sampled_from(["push", "pull_request", "tag"]))
when = st.builds(Constraints, branch=st.none() | constraint, event=st.none() | event_constraint).filter(
    lambda c: c.branch is not None or c.event is not None
)
cache = st.builds(
    CacheConfig,
    enabled=st.none() | st.booleans(),
    # a cache path is never the whole workspace (`.`, `./.`): lint refuses it
    paths=st.lists(rel_path.filter(lambda p: p.strip("./") != "") | abs_path, max_size=3).map(tuple),
).filter(lambda c: c.enabled is not None or c.paths)
pairs = st.dictionaries(names, text, max_size=4).map(lambda d: tuple(d.items()))

step_type = st.one_of(
    st.builds(RunScriptConfig, image=nonempty, shellScript=text),
    st.builds(PublishImageConfig, dockerfilePath=rel_path, buildContext=rel_path | st.just("."), tag=image_tags,
              pushRemote=st.just(False), registry=st.just("") | registries),
    st.builds(PublishImageConfig, dockerfilePath=rel_path, buildContext=rel_path | st.just("."), tag=image_tags,
              pushRemote=st.just(True), registry=registries),
    st.builds(PublishImageConfig, dockerfilePath=rel_path, buildContext=rel_path | st.just("."), tag=remote_tags,
              pushRemote=st.just(True)),
    st.builds(ApplyYamlConfig, path=rel_path, namespace=text),
    st.builds(ApplyYamlConfig, content=nonempty, namespace=text),
    st.builds(
        PublishCatalogConfig, path=rel_path, catalogTemplate=nonempty, version=text, gitUrl=text,
        gitBranch=text, gitAuthor=text, gitEmail=text,
    ),
    st.builds(
        ApplyAppConfig, catalogTemplate=nonempty, version=text, answers=pairs, name=text, targetNamespace=text,
    ),
)
env_from = st.builds(EnvFrom, sourceName=nonempty, sourceKey=names, targetKey=st.just("") | names)
step = st.builds(
    Step,
    type=step_type,
    env=pairs,
    envFrom=st.lists(env_from, max_size=2).map(tuple),
    privileged=st.booleans(),
    cpuRequest=cpu, cpuLimit=cpu, memoryRequest=memory, memoryLimit=memory,
    when=st.none() | when,
    cache=st.none() | cache,
)
stage = st.builds(
    Stage,
    name=nonempty,
    steps=st.lists(step, min_size=1, max_size=3).map(tuple),
    when=st.none() | when,
    cache=st.none() | cache,
)
# Rancher's recipient shape (lint warns about other keys, a missing `notifier`, and recipients
# without a `condition`).
recipient = st.tuples(text, names).map(lambda rn: (("recipient", rn[0]), ("notifier", rn[1])))
notification = st.builds(
    Notification,
    recipients=st.lists(recipient, max_size=2).map(tuple),
    message=text,
    condition=st.lists(st.sampled_from(["Success", "Failed", "Changed"]), max_size=3).map(tuple),
).filter(lambda n: (n.recipients or n.message or n.condition) and (n.condition or not n.recipients))
pipeline = st.builds(
    PipelineConfig,
    stages=st.lists(stage, min_size=1, max_size=3).map(lambda s: (CLONE_STAGE, *s)),
    timeout=st.integers(min_value=1, max_value=10_000),
    branch=st.none() | constraint,
    cache=st.none() | cache,
    notification=st.none() | notification,
)
