"""REST API routes of the trading app (under /api/v1/)."""

from rest_framework.routers import DefaultRouter

router = DefaultRouter()
urlpatterns = router.urls
