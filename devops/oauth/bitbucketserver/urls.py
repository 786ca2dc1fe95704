from allauth.socialaccount.providers.oauth2.urls import default_urlpatterns

from devops.oauth.bitbucketserver.provider import BitbucketServerProvider

urlpatterns = default_urlpatterns(BitbucketServerProvider)
