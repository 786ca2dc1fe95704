"""allauth pieces Slipway adds: GitHub Enterprise URLs per app, and a Bitbucket Server/Data Center provider.

Django and allauth only; nothing of Slipway's models (the adapter in
devops/accounts.py picks the project's app).
"""
