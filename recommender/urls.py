"""Recommender URLs, gathered from each area's module."""
from . import preference_urls, search_urls, style_urls

app_name = "recommender"
urlpatterns = search_urls.pages + preference_urls.pages + style_urls.pages
api_urlpatterns = search_urls.api + preference_urls.api + style_urls.api
