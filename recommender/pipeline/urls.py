"""URLs of the pipeline area: `pages` mount under the site root, `api` under /api/."""
from django.urls import URLPattern, path

from . import api as api_views
from . import views

pages: list[URLPattern] = [
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/<slug:slug>/retry/", views.jobs_retry, name="jobs-retry"),
]
api: list[URLPattern] = [
    path("jobs/", api_views.JobsView.as_view(), name="api-jobs"),
]
