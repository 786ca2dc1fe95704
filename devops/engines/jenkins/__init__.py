"""The Jenkins engine (DESIGN §5, issue 13): pipelines run as Jenkins jobs whose agents are Kubernetes pods.

- `jenkinsfile.py`  PipelineConfig + RunSpec -> the agent pod (a plain Kubernetes Pod dict) and the Jenkinsfile
- `client.py`       the few Jenkins HTTP calls Slipway needs, on top of python-jenkins (crumb, session, token)
- `engine.py`       JenkinsEngine: the `PipelineEngine` contract (devops/engines/base.py)
- `options.py`      its settings (SLIPWAY_JENKINS_*), `errors.py` its exceptions

Never imports Django models (lint-imports checks it): it sees RunSpec / ProjectSpec only.
"""
