"""Bitbucket Server / Data Center as an allauth OAuth 2.0 provider (allauth has none).

Bitbucket 7.20+ is an OAuth 2.0 provider through an *incoming application
link*: authorize at `/rest/oauth2/latest/authorize`, tokens at
`/rest/oauth2/latest/token`; the signed-in user's slug comes from
`/plugins/servlet/applinks/whoami` (plain text) and the profile from
`/rest/api/latest/users/{slug}`. The host is per app (`settings["hostname"]`).
"""
