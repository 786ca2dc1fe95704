"""The built-in registry, a platform service: steps push to it, triggers hear its
events, the UI lists its images. `server.py` runs and queries Debian's
`docker-registry`; it is Django-free (the runner process calls `registry_info`)."""
