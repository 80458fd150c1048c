"""Write services of the strategies app (backtests)."""
