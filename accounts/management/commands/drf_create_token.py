"""``manage.py drf_create_token USERNAME [--reset]``: issue a user's API token and print its key.

Replaces DRF's command of the same name (``rest_framework.authtoken`` is not installed: keys
are stored hashed, ``accounts.tokens``). The key is printed once; a user who has a token
already keeps it unless ``--reset`` replaces it (the old key stops working at once).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken
from accounts.tokens import token_issue


class Command(BaseCommand):
    help = "Issue a user's API token (stored hashed) and print the key once; --reset replaces an existing one."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "-r", "--reset", action="store_true", dest="reset_token", help="replace the user's existing token"
        )

    def handle(self, *args, **options):
        username = options["username"]
        try:
            user = get_user_model()._default_manager.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"Cannot create the Token: user {username} does not exist") from None
        current = ApiToken.objects.filter(user=user).first()
        if current is not None and not options["reset_token"]:
            raise CommandError(
                f"user {username} has a token already (starts with {current.prefix}, created "
                f"{current.created:%Y-%m-%d %H:%M} UTC); its key is stored hashed and cannot be shown again. "
                "Use --reset to replace it."
            )
        _, key = token_issue(user=user)
        self.stdout.write(f"Generated token {key} for user {username}")
