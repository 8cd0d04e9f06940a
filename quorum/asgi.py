"""ASGI entry point: Django for HTTP, Channels for the live-update websockets."""

import os
from importlib import import_module

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quorum.settings")
django_asgi_app = get_asgi_application()

from quorum.staticfiles import missing_manifest  # noqa: E402  (needs Django set up first)

# A server that starts without `collectstatic` would answer every page with a 500; it
# refuses to start instead, saying what to run.
if problem := missing_manifest():
    raise ImproperlyConfigured(problem)

# Import the URLconf, and with it every view and what they use, while the worker starts, not
# in its first requests. (Not the report's pandas and matplotlib: they load when a report is
# built, see calibration.report_cache.)
import_module(settings.ROOT_URLCONF)

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from annotation.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
