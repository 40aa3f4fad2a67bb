"""What the analytics and optimiser pages need beyond the common reads: every
attribute with its text, the cost assumptions, and the optional model rewrite of one
field, measured with the real counter. Applying a suggestion is an ordinary edit."""

from __future__ import annotations

from .. import llm
from ..model import FIELDS, Attribute, BadInput
from ..optimize import Suggestion
from ..settings import CostSettings
from .base import ServiceBase


class Suggestions(ServiceBase):
    def all_attributes(self) -> list[Attribute]:
        """Every client's attributes with their texts: copies of one template are found
        across clients, and savings are summed over all of them."""
        return self.store.attributes()

    def cost_assumptions(self) -> CostSettings:
        """Leads per month, price per million tokens and revenue per level, from settings."""
        return self.settings.costs

    def llm_config(self) -> llm.LLMConfig | None:
        """The model endpoint for optional rewrites; None when none is configured."""
        return llm.LLMConfig.from_settings(self.settings.llm)

    def rewrite_suggestion(self, client_id: str, attribute_id: str,
                           field_name: str) -> Suggestion | None:
        """The configured model's shorter version of one field, measured with the real
        counter; None when it saves nothing. Applying it goes through `apply` as usual."""
        config = self.llm_config()
        if config is None:
            raise BadInput("settings", "TOKENBUDGET_LLM_URL", "no model endpoint is configured")
        if field_name not in FIELDS:
            raise BadInput(f"attribute {attribute_id}", field_name,
                           f"unknown field; use one of {', '.join(FIELDS)}")
        attr = next((a for a in self.attributes(client_id) if a.id == attribute_id), None)
        if attr is None:
            raise BadInput(f"attribute {attribute_id}", "id",
                           f"no such attribute of client {client_id}")
        old = attr.text(field_name)
        new = llm.rewrite(old, config)
        before, after = self.counter.count_many([old, new])
        if after >= before:
            return None
        return Suggestion("rewrite", attr.id, attr.name, field_name,
                          f"{field_name} of '{attr.name}' rewritten by {config.model}; read it "
                          "before applying: a model may drop a rule", before - after,
                          {attr.id: {field_name: new}}, {attr.id: {field_name: old}})
