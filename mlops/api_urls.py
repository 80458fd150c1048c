"""REST API routes of the ML models (under /api/v1/, included by market7/api_urls.py).

A ``SimpleRouter`` (the API root lives in ``trading.api_urls``). URL names: ``model-version-list``,
``model-version-detail``, ``model-version-activate``, ``model-version-deactivate``,
``model-version-rollback``, ``model-version-train``, ``training-job-list``, ``training-job-detail``.
``models/training-jobs`` is registered first and version ids are digits only, so the two never
shadow each other.
"""

from rest_framework.routers import SimpleRouter

from mlops.api import VIEWSETS

router = SimpleRouter()
for prefix, viewset, basename in VIEWSETS:
    router.register(prefix, viewset, basename=basename)

urlpatterns = router.urls
