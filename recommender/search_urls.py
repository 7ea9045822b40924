"""URLs of the search area: `pages` mount under the site root, `api` under /api/."""
from django.urls import URLPattern

pages: list[URLPattern] = []
api: list[URLPattern] = []
