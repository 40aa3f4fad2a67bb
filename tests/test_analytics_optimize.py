"""The optimiser: never more tokens, every sentence that is not a repeat kept; suggestions
applied through the service; the optional model rewrite against a loopback endpoint."""

from difflib import SequenceMatcher

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from budget import optimize
from budget.llm import LLMConfig, RewriteFailed, rewrite
from budget.model import Attribute, BadInput, Change

from budget.tokens import counter
from tests.support.factories import ADMIN, settings_from, words
from tests.support.model_server import FakeModel

COUNT = counter("o200k_base").count_many
POOL = ["Score the lead higher when the company matches the profile.",
        "Give 10 points if the company has more than 200 employees.",
        "Give 10 points if the company has more than 250 employees.",  # near the one above
        "Ignore personal email domains.",
        "Example: 'Acme Corp, 1,200 employees' -> score 85.",
        "Weigh first-party intent data above third-party intent data!",
        "従業員数が千人を超える企業を優先してください。",
        "Why?"]
SPACE = st.sampled_from([" ", "  ", "\n", "\n\n", " \t ", ""])
TEXT = st.lists(st.tuples(st.one_of(st.sampled_from(POOL), st.text(max_size=40)), SPACE),
                max_size=14).map(lambda parts: "".join(s + w for s, w in parts))


def keys(text: str) -> list[str]:
    return [k for k in map(optimize.sentence_key, optimize.sentences(text)) if k]


@given(st.text())
@example("? Why?!\n\n。x")
def test_sentences_join_back_to_the_text(text):
    assert "".join(optimize.sentences(text)) == text


KEY = st.one_of(st.sampled_from([optimize.sentence_key(s) for s in POOL]), st.text(max_size=30))


@settings(max_examples=500)
@given(KEY, KEY, st.sampled_from(["", "s", "x.", " 10", "ab"]))
@example(optimize.sentence_key(POOL[1]), optimize.sentence_key(POOL[2]), "")
def test_near_is_close_lengths_and_a_sequence_matcher_ratio_from_0_92(a, b, tail):
    """Near: equal, or of lengths within a tenth (and 3 characters) and with a
    SequenceMatcher ratio from 0.92. The bound on characters in common in front of the
    full comparison only ever skips pairs it would refuse."""
    b = b + tail
    ratio = SequenceMatcher(None, a, b, autojunk=False).ratio()
    close = abs(len(a) - len(b)) < 0.1 * len(a) + 3
    assert optimize.near(a, b) == (a == b or (close and ratio >= optimize.NEAR))


def test_closing_marks_on_their_own_stay_a_sentence():
    """A '?' after a dropped repeat must not end up closing the sentence before it."""
    assert optimize.sentences("Why? ?") == ["Why? ", "?"]
    assert optimize.drop_duplicate_sentences("A\nB.A\n?") == "A\nB. ?"
    assert keys(optimize.drop_duplicate_sentences("A\nB.A\n?")) == ["a", "b.", "?"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
@example("Score the lead higher when the company matches the profile. "
         "Score the lead higher when the company matches the profile. ? ? ")
def test_optimiser_never_adds_tokens_and_keeps_every_non_duplicate(text):
    out = optimize.optimise_text(text, COUNT)
    assert COUNT([out])[0] <= COUNT([text])[0]
    kept = set(keys(out))
    earlier: list[str] = []
    for k in keys(text):
        if not any(optimize.near(k, e) for e in earlier):
            assert k in kept, (k, out)
        earlier.append(k)
    fix = optimize.best_fix(text, COUNT)
    if fix is not None:
        assert fix[2] == COUNT([text])[0] - COUNT([fix[1]])[0] > 0


def test_duplicates_and_near_duplicates_dropped_first_kept():
    text = (f"{POOL[0]} {POOL[1]}\n{POOL[2]}  {POOL[0]}\n\n{POOL[3]}")
    assert optimize.optimise_text(text, COUNT) == f"{POOL[0]} {POOL[1]}\n{POOL[3]}"
    assert optimize.best_fix("Already tight.", COUNT) is None
    assert optimize.best_fix("Too   many    spaces here.", COUNT)[:2] == (
        "whitespace", "Too many spaces here.")


def test_boilerplate_across_attributes_kept_once_with_diff():
    shared = "Treat a recent Series B or later funding round as a strong buying signal."
    attrs = [Attribute("x1", "X", "Funding", True, f"Check the stage. {shared}"),
             Attribute("x2", "X", "Fit", True, f"{shared} Prefer SaaS."),
             Attribute("x3", "X", "Other", True, "Unrelated text entirely.")]
    (tip,) = optimize.boilerplate(attrs, COUNT)
    assert (tip.kind, tip.attribute_id) == ("boilerplate", "x1")  # the first keeps it
    assert tip.edits == {"x2": {"Instructions": "Prefer SaaS."}}
    assert tip.saves == COUNT([attrs[1].instructions])[0] - COUNT(["Prefer SaaS."])[0] > 0
    assert f"-{shared}" in tip.diff() and " Prefer SaaS." in tip.diff()
    assert tip.change("X") == Change("X", {"x2": {"Instructions": "Prefer SaaS."}})


def test_every_fix_together_by_hand():
    shared = "Treat a recent Series B or later funding round as a strong buying signal."
    attrs = [Attribute("x1", "X", "Funding", True, f"Check the stage.  {shared}"),
             Attribute("x2", "X", "Fit", True, f"{shared} Prefer SaaS. Prefer SaaS."),
             Attribute("x3", "X", "Off", False, f"{shared} {shared}")]  # inactive: untouched
    tip = optimize.tidy_all(attrs, COUNT)
    assert tip.kind == "all" and tip.field_name is None
    assert tip.edits == {"x1": {"Instructions": f"Check the stage. {shared}"},
                         "x2": {"Instructions": "Prefer SaaS."}}
    olds = [attrs[0].instructions, attrs[1].instructions]
    assert tip.saves == sum(COUNT(olds)) - sum(COUNT([f"Check the stage. {shared}",
                                                      "Prefer SaaS."]))
    assert optimize.tidy_all(attrs[2:], COUNT) is None and optimize.tidy_all([], COUNT) is None


CLIENT = st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CLIENT)
def test_every_fix_together_saves_and_keeps_what_each_sentence_says(texts):
    attrs = [Attribute(f"x{i}", "X", f"A{i}", True, ins, ex) for i, (ins, ex) in enumerate(texts)]
    tip = optimize.tidy_all(attrs, COUNT)
    if tip is None:
        return
    after = {(a.id, f): tip.edits.get(a.id, {}).get(f, a.text(f))
             for a in attrs for f in ("Instructions", "Examples")}
    before = {(a.id, f): a.text(f) for a in attrs for f in ("Instructions", "Examples")}
    for k in before:  # no text grows, and the total saving is what was claimed
        assert COUNT([after[k]])[0] <= COUNT([before[k]])[0]
    assert tip.saves == sum(COUNT(list(before.values()))) - sum(COUNT(list(after.values()))) > 0
    kept = {k for t in after.values() for k in keys(t)}
    for k in {k for t in before.values() for k in keys(t)}:  # still said somewhere
        assert any(optimize.near(k, o) for o in kept), k


def test_suggestion_applied_through_the_service_is_validated_and_audited(small):
    dup = "Score leads from retail chains higher than average. " * 3
    assert small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": dup}})).allowed
    before = small.client_usage("A").usage
    tip = next(t for t in optimize.suggest(small.attributes("A"), small.counter.count_many)
               if t.kind == "duplicate")
    assert tip.edits == {"a1": {"Instructions": "Score leads from retail chains higher than "
                                                "average."}}
    result = small.apply(ADMIN, tip.change("A"))
    assert result.allowed and result.projected == before - tip.saves
    assert small.audit()[-1].after["a1"]["instructions"] == tip.edits["a1"]["Instructions"]


# the optional model rewrite ---------------------------------------------------------------
def test_llm_config_only_when_configured():
    assert LLMConfig.from_settings(settings_from({}).llm) is None
    cfg = LLMConfig.from_settings(settings_from({
        "TOKENBUDGET_LLM_URL": "http://h/v1/", "TOKENBUDGET_LLM_MODEL": "m",
        "TOKENBUDGET_LLM_API_KEY": "sk-1"}).llm)
    assert cfg is not None
    assert (cfg.url, cfg.model, cfg.api_key) == ("http://h/v1", "m", "sk-1")
    assert "sk-1" not in repr(cfg)


def test_rewrite_posts_chat_completion(model_server):
    cfg = LLMConfig(model_server, "tiny-model", "sk-secret")
    assert rewrite("Give more points to big companies, the bigger the better.", cfg) == \
        "Prefer big firms."
    (path, auth, body), = FakeModel.seen
    assert path == "/v1/chat/completions" and auth == "Bearer sk-secret"
    assert body["model"] == "tiny-model" and body["temperature"] == 0
    assert body["messages"][1] == {"role": "user",
                                   "content": "Give more points to big companies, the bigger "
                                              "the better."}


def test_rewrite_failure_names_endpoint_not_key(model_server):
    FakeModel.status = 503
    with pytest.raises(RewriteFailed) as e:
        rewrite("x", LLMConfig(model_server, "m", "sk-secret"))
    assert "HTTP 503" in str(e.value) and "overloaded" in str(e.value)
    assert "sk-secret" not in str(e.value)
    with pytest.raises(RewriteFailed, match="Connection refused|refused"):
        rewrite("x", LLMConfig("http://127.0.0.1:9/v1", "m", timeout=5))


def test_service_rewrite_suggestion_counts_and_applies(small, model_server):
    small.settings = settings_from({"TOKENBUDGET_LLM_URL": model_server,
                                    "TOKENBUDGET_LLM_MODEL": "tiny"}, store=small.settings.store)
    FakeModel.answer = words(12)
    tip = small.rewrite_suggestion("A", "a1", "Instructions")  # 40 tokens -> 12
    assert (tip.kind, tip.saves, tip.edits) == ("rewrite", 28, {"a1": {"Instructions": words(12)}})
    assert (tip.attribute_id, tip.attribute, tip.field_name) == ("a1", "Size", "Instructions")
    assert tip.before == {"a1": {"Instructions": words(40)}}
    assert FakeModel.seen[-1][2]["messages"][1]["content"] == words(40)  # the text itself
    assert small.apply(ADMIN, tip.change("A")).projected == 52
    FakeModel.answer = words(50)  # longer than the text: nothing to suggest
    assert small.rewrite_suggestion("A", "a2", "Instructions") is None
    FakeModel.answer = words(30)  # as long as the text: nothing saved either
    assert small.rewrite_suggestion("A", "a2", "Instructions") is None
    with pytest.raises(BadInput, match="Notes"):
        small.rewrite_suggestion("A", "a1", "Notes")
    with pytest.raises(BadInput) as e:
        small.rewrite_suggestion("A", "b1", "Instructions")  # another client's
    assert (e.value.record, e.value.field, e.value.problem) == (
        "attribute b1", "id", "no such attribute of client A")


def test_service_rewrite_needs_configuration(small):
    with pytest.raises(BadInput, match="no model endpoint") as e:
        small.rewrite_suggestion("A", "a1", "Instructions")
    assert (e.value.record, e.value.field) == ("settings", "TOKENBUDGET_LLM_URL")
