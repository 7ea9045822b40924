"""URLs of the search area: `pages` mount under the site root, `api` under /api/."""
from django.urls import URLPattern, path

from . import search_api, search_views

pages: list[URLPattern] = [
    path("search/", search_views.photo_search, name="photo-search"),
]
api: list[URLPattern] = [
    path("items/<int:pk>/similar/", search_api.SimilarItemsView.as_view(), name="api-item-similar"),
    path("search/image/", search_api.ImageSearchView.as_view(), name="api-search-image"),
]
