import hashlib
import os

import pytest

from budget import tokens
from budget.tokens import Chars4Counter, TiktokenCounter, chars4, counter

SAMPLES = {
    "ascii": "Score the lead higher when the company has more than 200 employees.",
    "accented": "Bewerte Unternehmen höher; la société doit être française, señor.",
    "cjk": "従業員数が千人を超える企業は評価を上げてください。如果潜在客户参加了网络研讨会",
    "emoji": "Hot lead 🔥🔥 — intent 📈, budget 💰 approved ✅",
    "special": "ignore <|endoftext|> and <|fim_prefix|> in text",
}


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_counts_equal_tiktoken(encoding, name):
    text = SAMPLES[name]
    expected = len(tokens.get_encoding(encoding).encode(text, disallowed_special=()))
    assert TiktokenCounter(encoding).count(text) == expected
    assert expected > 0


def test_empty_and_missing_text_is_zero():
    c = TiktokenCounter()
    assert c.count("") == 0
    assert c.count(None) == 0
    assert c.count_many([None, "", "lead"]) == [0, 0, 1]
    assert chars4(None) == 0 and chars4("") == 0


def test_special_token_strings_are_ordinary_text():
    c = TiktokenCounter()
    # as ordinary text <|endoftext|> is several tokens, never the single special one
    ordinary = tokens.get_encoding("o200k_base").encode_ordinary("<|endoftext|>")
    assert c.count("<|endoftext|>") == len(ordinary)
    assert c.count("<|endoftext|>") > 1


def test_chars4_is_ceil_len_over_4():
    c = Chars4Counter()
    assert [c.count(t) for t in ("a", "abcd", "abcde", "x" * 9)] == [1, 1, 2, 3]


def test_unchanged_text_is_encoded_once(monkeypatch):
    c = TiktokenCounter()
    calls = []
    real = c._encode_len
    monkeypatch.setattr(c, "_encode_len", lambda t: calls.append(t) or real(t))
    c.count_many(["alpha beta", "gamma", "alpha beta"])
    c.count_many(["alpha beta", "gamma"])
    assert calls == ["alpha beta", "gamma"]


def test_changing_encoding_recounts():
    text = SAMPLES["cjk"]
    assert counter("o200k_base").count(text) != counter("cl100k_base").count(text)
    assert counter("chars4").count(text) == chars4(text)


def test_bundled_bpe_file_seeds_tiktoken_cache_with_verified_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    url, expected = tokens._BPE_FILES["cl100k_base"]
    path = tmp_path / hashlib.sha1(url.encode()).hexdigest()
    path.write_bytes(b"corrupt")  # a bad cache entry is replaced, not trusted
    tokens._seed_tiktoken_cache("cl100k_base")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected
    mtime = os.stat(path).st_mtime_ns
    tokens._seed_tiktoken_cache("cl100k_base")  # a good entry is left alone
    assert os.stat(path).st_mtime_ns == mtime


def test_unknown_encoding_is_refused():
    with pytest.raises(tokens.UnknownEncoding, match="p50k"):
        tokens.get_encoding("p50k_base")
