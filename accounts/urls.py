"""Account pages (namespace ``accounts``): ``login``, ``logout`` (POST), ``password_change``,
``password_change_done``, ``profile``, ``token`` (POST: create/rotate/revoke the API token) and
``signup`` (404 unless ``MARKET7_SIGNUP_ENABLED``; checked per request)."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(success_url=reverse_lazy("accounts:password_change_done")),
        name="password_change",
    ),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("profile/", views.profile, name="profile"),
    path("profile/token/", views.token_action, name="token"),
    path("signup/", views.signup, name="signup"),
]
