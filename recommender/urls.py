"""Recommender URLs, gathered from each area's ``urls``: ``pages`` under the site root, ``api`` under /api/."""
from .pipeline import urls as pipeline_urls
from .preferences import urls as preference_urls
from .search import urls as search_urls
from .styles import urls as style_urls

app_name = "recommender"
urlpatterns = search_urls.pages + preference_urls.pages + style_urls.pages + pipeline_urls.pages
api_urlpatterns = search_urls.api + preference_urls.api + style_urls.api + pipeline_urls.api
