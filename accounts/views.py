"""Account pages: profile with the API token, self sign-up.

Login, logout and password change are Django's auth views (``accounts/urls.py``) with the
templates in ``templates/registration/``.

The user's API token is reached only through :func:`accounts.tokens.tokens_for` — the
ownership gate (``accounts.ownership.OwnedQuerySet``) applied to
:class:`accounts.models.ApiToken` (stored as a SHA-256 of the key), whose owner field is
``user``; it is issued and revoked by ``accounts.tokens.token_issue`` / ``token_revoke``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.forms import SignupForm
from accounts.models import AuditLog
from accounts.roles import Role, user_set_role
from accounts.tokens import token_issue, token_revoke, tokens_for  # noqa: F401  (tokens_for: re-exported)

SIGNUP_ROLE = Role.VIEWER


# Writes. The sign-up belongs in accounts/services.py; kept here, private to the views, until
# the lead moves it.


@transaction.atomic
def _user_signup(*, form: SignupForm):
    user = form.save()
    user_set_role(user=user, role=SIGNUP_ROLE)
    AuditLog.objects.create(
        user=user, action="user_signup", object_type="user", object_id=str(user.pk), message=f"role {SIGNUP_ROLE}"
    )
    return user


# Views.


def _profile_context(request: HttpRequest, new_token: str | None = None) -> dict:
    return {
        "token": tokens_for(request.user).first(),
        "new_token": new_token,
        "role": request.user.role,
        "groups": list(request.user.groups.values_list("name", flat=True)),
    }


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """``/accounts/profile/``: who you are, your role, your API token."""
    return render(request, "accounts/profile.html", _profile_context(request))


@login_required
@require_POST
def token_action(request: HttpRequest) -> HttpResponse:
    """POST ``action=rotate`` (create or replace) or ``action=revoke``.

    The new key is shown once, in this response; afterwards only its first characters are.
    HTMX requests get the token section fragment, others the profile page.
    """
    action = request.POST.get("action")
    new_token = None
    if action == "rotate":
        _, new_token = token_issue(user=request.user)
    elif action == "revoke":
        token_revoke(user=request.user)
    else:
        return HttpResponse("unknown action", status=400)
    context = _profile_context(request, new_token)
    template = "accounts/_token.html" if request.htmx else "accounts/profile.html"
    return render(request, template, context)


def signup(request: HttpRequest) -> HttpResponse:
    """``/accounts/signup/``: 404 unless ``MARKET7_SIGNUP_ENABLED``; creates a **viewer** and logs in."""
    if not settings.MARKET7_SIGNUP_ENABLED:
        raise Http404("Sign-up is disabled")
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = _user_signup(form=form)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}. You can look at markets; an admin can make you a trader.")
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {"form": form})
