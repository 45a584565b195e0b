"""ASGI entry point served by daphne: HTTP through Django, WebSockets through Channels.

Static files are served by the process itself, DEBUG or not (the dashboard must
work offline, with no CDN and no separate web server); WebSockets must come from
a page of one of ALLOWED_HOSTS (a foreign Origin is refused).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")
django_asgi_app = get_asgi_application()

# Django must be set up before these are imported.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from signals_app.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
