"""URLs of the search area: `pages` mount under the site root, `api` under /api/."""
from django.urls import URLPattern, path

from . import api, views

pages: list[URLPattern] = [
    path("search/", views.photo_search, name="photo-search"),
]
api: list[URLPattern] = [
    path("items/<int:pk>/similar/", api.SimilarItemsView.as_view(), name="api-item-similar"),
    path("search/image/", api.ImageSearchView.as_view(), name="api-search-image"),
]
