"""Exchange account pages (namespace ``exchange_accounts``, under ``/accounts/exchanges/``):
``list`` (GET: the user's accounts and the add form; POST: add one), ``edit`` (GET/POST),
``delete`` (POST) and ``test`` (POST "Test connection"; HTMX: answers the account's card).

Thin: every write goes through ``trading.services.exchange_accounts``; accounts are read only
through ``ExchangeAccount.objects.for_user`` (another user's account is a 404). A role without
the exchange account permissions gets a 403 on every POST. No credential is ever rendered.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from trading.forms_exchange_accounts import COMMON_EXCHANGES, AccountCreateForm, AccountEditForm
from trading.models import ExchangeAccount
from trading.services import exchange_accounts as svc


def _get(request: HttpRequest, pk: int) -> ExchangeAccount:
    try:
        return ExchangeAccount.objects.for_user(request.user).get(pk=pk)
    except ExchangeAccount.DoesNotExist:
        raise Http404("no such exchange account") from None


def _apply(form, call):
    """Run a service; its field errors land on the form. Returns the result or None."""
    try:
        return call()
    except svc.AccountValidationError as exc:
        for field, message in exc.errors.items():
            form.add_error(field if field in form.fields else None, message)
    except svc.AccountPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from None
    return None


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    form = AccountCreateForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            d = form.cleaned_data
            account = _apply(form, lambda: svc.account_create(user=request.user, **d))
            if account is not None:
                messages.success(request, f"Added {account.label}. Test the connection before going live.")
                return redirect("exchange_accounts:list")
        status = 400
    else:
        status = 200
    context = {
        "accounts": ExchangeAccount.objects.for_user(request.user),
        "form": form,
        "exchanges": COMMON_EXCHANGES,
        "can_edit": request.user.has_perm("trading.add_exchangeaccount"),
    }
    return render(request, "trading/exchange_accounts/list.html", context, status=status)


@login_required
def account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    account = _get(request, pk)
    initial = {"label": account.label, "sandbox": account.sandbox}
    form = AccountEditForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            d = form.cleaned_data
            done = _apply(form, lambda: svc.account_update(user=request.user, account_id=account.pk, **d))
            if done is not None:
                messages.success(request, f"Saved {done.label}.")
                return redirect("exchange_accounts:list")
        status = 400
    return render(request, "trading/exchange_accounts/edit.html", {"account": account, "form": form}, status=status)


@login_required
@require_POST
def account_delete(request: HttpRequest, pk: int) -> HttpResponse:
    account = _get(request, pk)
    try:
        svc.account_delete(user=request.user, account_id=account.pk)
    except svc.AccountPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from None
    messages.success(request, f"Deleted {account.label}.")
    return redirect("exchange_accounts:list")


@login_required
@require_POST
def account_test(request: HttpRequest, pk: int) -> HttpResponse:
    account = _get(request, pk)
    try:
        svc.account_test(user=request.user, account_id=account.pk)
    except svc.AccountPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from None
    account.refresh_from_db()
    if request.htmx:
        return render(request, "trading/exchange_accounts/_account.html", {"a": account, "can_edit": True})
    return redirect("exchange_accounts:list")
