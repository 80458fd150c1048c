"""Template context shared by every page."""

from django.conf import settings


def market7(request):
    return {"signup_enabled": settings.MARKET7_SIGNUP_ENABLED}
