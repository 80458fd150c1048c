"""Account forms: self sign-up (when ``MARKET7_SIGNUP_ENABLED``)."""

from __future__ import annotations

from django.contrib.auth.forms import UserCreationForm

from accounts.models import User


class SignupForm(UserCreationForm):
    """Username, optional email, password twice (Django's password validators apply)."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")
