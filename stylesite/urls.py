from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.routers import DefaultRouter
from rest_framework.settings import api_settings

from catalog import api as catalog_api
from recommender.urls import api_urlpatterns as recommender_api

router = DefaultRouter()
router.register("collections", catalog_api.CollectionViewSet, basename="collection")
router.register("items", catalog_api.ItemViewSet, basename="item")
router.register("images", catalog_api.ImageViewSet, basename="image")
router.register("imports", catalog_api.ImportJobViewSet, basename="import")

api_urls = [
    path("stats/", catalog_api.StatsView.as_view(), name="api-stats"),
    # DRF's token view names its own parsers; it gets the API's bounded ones (stylesite/parsers.py).
    path("auth/token/", ObtainAuthToken.as_view(parser_classes=api_settings.DEFAULT_PARSER_CLASSES),
         name="api-token"),
    path("collections/<slug:slug>/items/<str:external_id>/", catalog_api.ItemUpsertView.as_view(),
         name="api-item-upsert"),
    path("imports/<int:pk>/report.csv", catalog_api.ImportReportView.as_view(), name="api-import-report"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its script as a file, so the docs work under the Content-Security-Policy.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    *recommender_api,
    path("", include(router.urls)),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api_urls)),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("catalog.urls")),
    path("", include("recommender.urls")),
    # Uploaded media. In production a web server or object store serves these (STYLESITE_SERVE_MEDIA off).
    *([path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", serve, {"document_root": settings.MEDIA_ROOT})]
      if settings.STYLESITE_SERVE_MEDIA else []),
]
