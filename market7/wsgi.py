"""WSGI entry point (HTTP only). The product is served by daphne through ``asgi.py``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market7.settings")
application = get_wsgi_application()
