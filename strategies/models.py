"""Django models of the strategies app (backtest runs). The pure core lives beside, Django-free."""
