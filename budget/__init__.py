"""tokenbudget: prompt-token budgets for a lead-scoring service's clients.

Importing a module of the package loads only what that module needs: `budget.core`
stays pure (no store, no SMTP, no pandas) and the service is `budget.service`."""
