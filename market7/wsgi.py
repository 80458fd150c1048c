"""WSGI entry point (HTTP only): what gunicorn serves (``market7/gunicorn_conf.py``).

Websockets are served by daphne through ``asgi.py`` (see ``docs/deploy.md``).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market7.settings")
application = get_wsgi_application()
