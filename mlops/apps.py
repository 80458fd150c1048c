from django.apps import AppConfig


class MlopsConfig(AppConfig):
    name = "mlops"
    verbose_name = "ML ops"

    def ready(self) -> None:
        # Active models serve the bots through the hooks of strategies.providers (the runner
        # never imports this app: it sits above trading).
        from mlops.services.serving import providers_for_bot, step_observe
        from strategies.providers import register_provider_factory, register_step_observer

        register_provider_factory(providers_for_bot)
        register_step_observer(step_observe)
