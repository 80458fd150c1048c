"""REST API routes of the trading app (under /api/v1/): one ``DefaultRouter`` for every viewset.

To add viewsets, give your module a ``VIEWSETS`` list of ``(prefix, viewset, basename)`` and
add it to :data:`VIEWSETS` below (one line), e.g. ``*bots.VIEWSETS``. Other code may also import
:data:`router` and call ``router.register(...)`` — but only before this module's
``urlpatterns`` are built, so the list is the safer place.

URL names (no namespace): ``exchange-list``, ``exchange-detail``, ``market-list``,
``market-detail``, ``market-candles``, ``exchange-account-list``, ``exchange-account-detail``,
``exchange-account-test``, ``emergency-stop`` (``POST /api/v1/trading/emergency-stop/``), plus
DRF's ``api-root``.
"""

from rest_framework.routers import DefaultRouter

from trading.api import exchange_accounts, markets

VIEWSETS = [
    *markets.VIEWSETS,
    *exchange_accounts.VIEWSETS,
]

router = DefaultRouter()
for prefix, viewset, basename in VIEWSETS:
    router.register(prefix, viewset, basename=basename)

urlpatterns = router.urls

# --- bots (owned by the bots engineer; trading/api/bots.py) --------------------------------
# Registered after the list above was built, so the urlpatterns are rebuilt here.
from trading.api import bots as _bots  # noqa: E402

for _prefix, _viewset, _basename in _bots.VIEWSETS:
    router.register(_prefix, _viewset, basename=_basename)
urlpatterns = router.get_urls()
# --- end bots ------------------------------------------------------------------------------

# --- the emergency stop (trading/api/emergency.py): POST /api/v1/trading/emergency-stop/ ----
from django.urls import path  # noqa: E402

from trading.api.emergency import EmergencyStopView  # noqa: E402

urlpatterns = [
    path("trading/emergency-stop/", EmergencyStopView.as_view(), name="emergency-stop"),
    *urlpatterns,
]
