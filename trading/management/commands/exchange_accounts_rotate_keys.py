"""``manage.py exchange_accounts_rotate_keys``: re-encrypt every stored exchange credential with
the first key of ``MARKET7_SECRETS_KEY`` (the rotation procedure is in ``market7/secretbox.py``
and docs/live.md)."""

from django.core.management.base import BaseCommand, CommandError

from market7.secretbox import SecretUndecryptable
from trading.services.exchange_accounts import accounts_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt all exchange account secrets with the first MARKET7_SECRETS_KEY key."

    def handle(self, *args, **options):
        try:
            count = accounts_reencrypt()
        except SecretUndecryptable as exc:
            raise CommandError(
                f"{exc}: keep the old key in MARKET7_SECRETS_KEY (after the new one) until this succeeds"
            ) from None
        self.stdout.write(f"re-encrypted {count} exchange account(s) with the current key")
