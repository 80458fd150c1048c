from django.urls import path
from django.views.generic import RedirectView

urlpatterns = [
    path("markets/", RedirectView.as_view(url="/admin/"), name="markets"),
]
