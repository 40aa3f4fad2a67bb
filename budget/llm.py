"""An optional rewrite by a language model behind an OpenAI-compatible endpoint.

Off unless TOKENBUDGET_LLM_URL and TOKENBUDGET_LLM_MODEL are set; the deterministic
optimiser (`budget.optimize`) is the feature, this is an extra. The API key never
appears in a message or a repr."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from .redact import scrub
from .settings import LLMSettings

SYSTEM_PROMPT = (
    "You shorten instructions for a lead-scoring prompt. Rewrite the user's text so that it "
    "uses fewer tokens while keeping every rule, number, name and example it contains. "
    "Do not add anything. Reply with the rewritten text only.")


class RewriteFailed(RuntimeError):
    """The endpoint did not give a usable answer; the message says why, without secrets."""


@dataclass(frozen=True)
class LLMConfig:
    url: str  # base URL, e.g. https://api.openai.com/v1; /chat/completions is appended
    model: str
    api_key: str = field(default="", repr=False)
    timeout: float = 60.0

    @classmethod
    def from_settings(cls, section: LLMSettings) -> LLMConfig | None:
        """The endpoint of the `llm` settings; None when none is configured."""
        if not section.enabled:
            return None
        return cls(section.url, section.model, section.api_key.get_secret_value(),
                   section.timeout)


def rewrite(text: str, config: LLMConfig) -> str:
    """The model's shorter version of `text` (temperature 0, one choice)."""
    body = json.dumps({"model": config.model, "temperature": 0, "messages": [
        {"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]})
    headers = {"Content-Type": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    endpoint = f"{config.url}/chat/completions"
    request = urllib.request.Request(endpoint, body.encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=config.timeout) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as e:
        # scrubbed where it is cut off, so that a key the cut leaves in part is hidden too
        detail = scrub(e.read(300).decode("utf-8", "replace"), config.api_key)
        raise RewriteFailed(scrub(f"{endpoint}: HTTP {e.code}: {detail}", config.api_key)
                            ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise RewriteFailed(scrub(f"{endpoint}: {getattr(e, 'reason', e)}", config.api_key)
                            ) from None
    except json.JSONDecodeError:
        raise RewriteFailed(f"{endpoint}: the answer is not JSON") from None
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise RewriteFailed(f"{endpoint}: no choices[0].message.content in the answer") from None
    if not isinstance(content, str) or not content.strip():
        raise RewriteFailed(f"{endpoint}: the model returned no text")
    return content.strip()
