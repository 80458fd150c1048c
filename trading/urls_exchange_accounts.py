"""Exchange account pages under ``/accounts/exchanges/`` (``trading.views.exchange_accounts``)."""

from django.urls import path

from trading.views import exchange_accounts as views

app_name = "exchange_accounts"

urlpatterns = [
    path("", views.account_list, name="list"),
    path("<int:pk>/", views.account_edit, name="edit"),
    path("<int:pk>/delete/", views.account_delete, name="delete"),
    path("<int:pk>/test/", views.account_test, name="test"),
]
