"""REST API (Django REST framework): objects rendered in CRD shape."""
