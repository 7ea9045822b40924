from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from catalog import api as catalog_api
from recommender.urls import api_urlpatterns as recommender_api

router = DefaultRouter()
router.register("collections", catalog_api.CollectionViewSet, basename="collection")
router.register("items", catalog_api.ItemViewSet, basename="item")
router.register("images", catalog_api.ImageViewSet, basename="image")
router.register("imports", catalog_api.ImportJobViewSet, basename="import")

api_urls = [
    path("stats/", catalog_api.StatsView.as_view(), name="api-stats"),
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("collections/<slug:slug>/items/<str:external_id>/", catalog_api.ItemUpsertView.as_view(),
         name="api-item-upsert"),
    path("imports/<int:pk>/report.csv", catalog_api.ImportReportView.as_view(), name="api-import-report"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
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
    # Uploaded media. In production a web server or object store serves these instead.
    path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}),
]
