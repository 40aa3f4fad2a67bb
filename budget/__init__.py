"""tokenbudget: prompt-token budgets for a lead-scoring service's clients."""

from .model import Actor, Attribute, BadInput, Change, Client, Tier, Usage, Validation
from .service import BudgetService
from .settings import Settings

__all__ = ["Actor", "Attribute", "BadInput", "BudgetService", "Change", "Client", "Settings",
           "Tier", "Usage", "Validation"]
