from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from accounts.roles import roles_sync_on_migrate

        # Infrastructure, not business logic: keep the role groups' permissions in step with
        # the models that exist after every migrate.
        post_migrate.connect(roles_sync_on_migrate, dispatch_uid="accounts.roles_sync")
