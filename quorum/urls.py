from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from quorum.api_errors import NoSuchEndpoint

urlpatterns = [
    path("", include("annotation.urls")),
    path("", include("calibration.urls")),
    path("", include("judging.urls")),
    path("api/", include("annotation.api_urls")),
    path("api/", include("judging.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Ending in a slash, so that APPEND_SLASH still redirects /api/studies to /api/studies/.
    re_path(r"^api/[\s\S]*/$", NoSuchEndpoint.as_view()),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
