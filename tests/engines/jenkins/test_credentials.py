"""Jenkins clones with the pipeline's SourceCodeCredential: a Jenkins credential per pipeline, written
through the credentials plugin's REST API before the build is queued, named by id in the checkout.

The fake Jenkins (fake.py) serves createCredentials / credential/ID/config.xml as the plugin's user
guide documents them (recordings/SOURCES.md) and, like Jenkins, wants the crumb on those POSTs.
"""
from __future__ import annotations

import logging
from xml.etree import ElementTree

from devops.engines.base import GitAuth
from devops.engines.jenkins import jenkinsfile as jf
from tests.engines.jenkins.conftest import make_spec

JOB = jf.job_name("p-abcde-7")
TOKEN = "glpat-Zq8wMx3RkT1vLp"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n"
CRED = "/credentials/store/system/domain/_"


def _everything_but_the_credential_store(fake) -> str:
    """Every text Slipway put into Jenkins or its own log except the credential bodies."""
    job = fake.jobs[JOB]
    return job.config + repr(fake.items) + repr(fake.requests) + repr(fake.posts)


def test_a_token_becomes_a_username_password_credential_named_by_id_in_the_checkout(engine, fake, caplog):
    caplog.set_level(logging.DEBUG)
    spec = make_spec(git_auth=GitAuth(token=TOKEN, username="oauth2"))
    engine.run(spec)
    cid = jf.git_credential_id(spec)
    assert cid.startswith("slipway-git-p-abcde-pl-1-")
    assert list(fake.credentials) == [cid]
    xml = ElementTree.fromstring(fake.credentials[cid])
    assert xml.tag == "com.cloudbees.plugins.credentials.impl.UsernamePasswordCredentialsImpl"
    assert (xml.findtext("scope"), xml.findtext("id"), xml.findtext("username"), xml.findtext("password")) == \
        ("GLOBAL", cid, "oauth2", TOKEN)
    # Written before the build was queued, with the crumb (the fake refuses POSTs without it).
    assert fake.posts.index(f"{CRED}/createCredentials") < next(
        i for i, p in enumerate(fake.posts) if "buildWithParameters" in p)
    # The checkout names it by id; the id (not the secret) is the build parameter.
    assert "credentialsId: params.SLIPWAY_GIT_CREDENTIALS" in jf.render(spec, engine.options)
    assert fake.items[42]["params"]["SLIPWAY_GIT_CREDENTIALS"] == cid
    # The secret is nowhere else: not in the Jenkinsfile / config.xml, the parameters, a URL, a log record.
    assert TOKEN not in _everything_but_the_credential_store(fake)
    assert TOKEN not in caplog.text
    # What Jenkins shows back of it is redacted (the documented GET).
    shown = engine.client.server.jenkins_open(
        __import__("requests").Request("GET", f"{fake.url}{CRED}/credential/{cid}/config.xml"))
    assert TOKEN not in shown and "<secret-redacted/>" in shown


def test_an_ssh_key_becomes_an_ssh_private_key_credential(engine, fake):
    spec = make_spec(repository_url="ssh://git@git.example/app.git", git_auth=GitAuth(ssh_private_key=KEY))
    engine.run(spec)
    xml = ElementTree.fromstring(fake.credentials[jf.git_credential_id(spec)])
    assert xml.tag == "com.cloudbees.jenkins.plugins.sshcredentials.impl.BasicSSHUserPrivateKey"
    assert xml.findtext("username") == "git"
    source = xml.find("privateKeySource")
    assert source.get("class").endswith("BasicSSHUserPrivateKey$DirectEntryPrivateKeySource")
    assert source.findtext("privateKey") == KEY
    assert "OPENSSH PRIVATE KEY" not in _everything_but_the_credential_store(fake)
    assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU" not in _everything_but_the_credential_store(fake)


def test_a_changed_credential_is_updated_on_the_next_run(engine, fake):
    first = make_spec(git_auth=GitAuth(token=TOKEN))
    engine.run(first)
    cid = jf.git_credential_id(first)
    second = make_spec(execution="p-abcde-8", run=8, git_auth=GitAuth(token="glpat-rotated-0000"))
    assert jf.git_credential_id(second) == cid          # one credential per pipeline
    engine.run(second)
    assert f"{CRED}/credential/{cid}/config.xml" in fake.posts
    assert ElementTree.fromstring(fake.credentials[cid]).findtext("password") == "glpat-rotated-0000"
    assert list(fake.credentials) == [cid]
    assert fake.posts.count(f"{CRED}/createCredentials") == 1


def test_a_repository_without_credential_clones_anonymously_and_writes_none(engine, fake):
    spec = make_spec()
    engine.run(spec)
    assert fake.credentials == {} and not any("/credentials/" in p for p in fake.posts)
    assert fake.items[42]["params"]["SLIPWAY_GIT_CREDENTIALS"] == ""


def test_a_project_setting_cannot_name_another_jenkins_credential(engine, fake):
    """The id comes from the engine alone: a project member cannot point the checkout at a credential
    of another pipeline or of Jenkins itself."""
    spec = make_spec(settings={"jenkins-git-credentials": "jenkins-admin-ssh"})
    engine.run(spec)
    assert fake.items[42]["params"]["SLIPWAY_GIT_CREDENTIALS"] == ""


def test_credentials_of_two_pipelines_are_two_credentials(engine, fake):
    a = make_spec(git_auth=GitAuth(token=TOKEN))
    b = make_spec(execution="p-abcde-9", pipeline_id="p-abcde:pl-2", git_auth=GitAuth(token="other-token-xyz"))
    engine.run(a)
    engine.run(b)
    assert len(fake.credentials) == 2 and jf.git_credential_id(a) != jf.git_credential_id(b)
