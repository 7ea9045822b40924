"""URLs of the style area: `pages` mount under the site root, `api` under /api/."""
from django.urls import URLPattern, path

from . import api as api_views
from . import views

pages: list[URLPattern] = [
    path("styles/", views.styles_index, name="styles"),
    path("styles/clusters/<int:pk>/", views.style_cluster, name="style-cluster"),
    path("styles/<slug:slug>/", views.style_map, name="style-map"),
    path("styles/<slug:slug>/jobs/", views.style_job_start, name="style-job-start"),
    path("styles/<slug:slug>/rate/", views.style_rate, name="style-rate"),
    path("styles/<slug:slug>/classifier/", views.style_classifier, name="style-classifier"),
    path("styles/<slug:slug>/export.csv", views.style_export, name="style-export"),
]
api: list[URLPattern] = [
    path("clusters/", api_views.ClusterListView.as_view(), name="api-clusters"),
    path("clusters/<int:pk>/items/", api_views.ClusterItemsView.as_view(), name="api-cluster-items"),
    path("clusters/<int:pk>/coherence/", api_views.ClusterCoherenceView.as_view(), name="api-cluster-coherence"),
    path("coherence/", api_views.CoherenceRateView.as_view(), name="api-coherence-rate"),
    path("styles/map/", api_views.StyleMapView.as_view(), name="api-style-map"),
    path("styles/jobs/", api_views.StyleJobCreateView.as_view(), name="api-style-jobs"),
    path("styles/jobs/<int:pk>/", api_views.StyleJobView.as_view(), name="api-style-job"),
    path("classifier/", api_views.ClassifierView.as_view(), name="api-classifier"),
    path("classifier/top/", api_views.ClassifierTopView.as_view(), name="api-classifier-top"),
]
