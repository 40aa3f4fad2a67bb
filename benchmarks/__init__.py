"""`make bench`: how fast tokenbudget is at 800, 20,000 and 100,000 attributes."""
