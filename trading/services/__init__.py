"""Write services of the trading app (one transaction each; DESIGN.md §2)."""
