"""Token counting at its edges: where tiktoken's cache lives, a bundled file that does
not match the hash, the process-wide counters and their content cache."""

import hashlib
import os
import tempfile

import pytest

from budget import tokens
from budget.tokens import CHARS4, DEFAULT_ENCODING, ENCODINGS, counter


def test_the_encodings_on_offer():
    assert ENCODINGS == ("cl100k_base", "o200k_base", "chars4")
    assert DEFAULT_ENCODING == "o200k_base" and CHARS4 == "chars4"


def test_cache_dir_is_the_one_tiktoken_reads(monkeypatch):
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    assert tokens._tiktoken_cache_dir() == os.path.join(tempfile.gettempdir(), "data-gym-cache")
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", "/gym")
    assert tokens._tiktoken_cache_dir() == "/gym"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "/tik")  # tiktoken's own variable wins
    assert tokens._tiktoken_cache_dir() == "/tik"


def test_an_empty_cache_dir_means_no_cache_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    tokens._seed_tiktoken_cache("cl100k_base")
    assert list(tmp_path.iterdir()) == []


def test_a_fresh_cache_dir_is_created_and_seeded(tmp_path, monkeypatch):
    cache = tmp_path / "new" / "cache"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    tokens._seed_tiktoken_cache("o200k_base")
    url, expected = tokens._BPE_FILES["o200k_base"]
    (entry,) = cache.iterdir()  # no temporary file left behind
    assert entry.name == hashlib.sha1(url.encode()).hexdigest()
    assert hashlib.sha256(entry.read_bytes()).hexdigest() == expected


def test_a_bundled_file_with_the_wrong_hash_never_lands_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    url, _ = tokens._BPE_FILES["cl100k_base"]
    monkeypatch.setitem(tokens._BPE_FILES, "cl100k_base", (url, "0" * 64))
    with pytest.raises(RuntimeError, match="cl100k_base has sha256 [0-9a-f]{64}, tiktoken "
                                           f"expects {'0' * 64}"):
        tokens._seed_tiktoken_cache("cl100k_base")
    assert list(tmp_path.iterdir()) == []


def test_encodings_and_counters_are_made_once_per_process(monkeypatch):
    monkeypatch.setattr(tokens, "_encodings", {})  # as in a fresh process
    monkeypatch.setattr(tokens, "_counters", {})
    assert tokens.get_encoding("cl100k_base") is tokens.get_encoding("cl100k_base")
    assert tokens.get_encoding("cl100k_base").name == "cl100k_base"
    assert counter() is counter(DEFAULT_ENCODING) and counter().name == DEFAULT_ENCODING
    assert counter("cl100k_base").name == "cl100k_base"
    assert isinstance(counter("cl100k_base"), tokens.TiktokenCounter)
    assert counter("cl100k_base").count("<|endoftext|>") == 7  # cl100k's own count
    assert tokens.TiktokenCounter("cl100k_base").name == "cl100k_base"
    assert isinstance(counter(CHARS4), tokens.Chars4Counter) and counter(CHARS4).name == CHARS4
    with pytest.raises(tokens.UnknownEncoding) as e:
        tokens.get_encoding("gpt2")
    assert str(e.value) == ("unknown encoding 'gpt2'; choose one of "
                            "cl100k_base, o200k_base, chars4")


def test_the_cache_holds_each_distinct_text_once():
    c = tokens.TiktokenCounter()
    assert c.cached_texts == 0
    assert c.count_many(["lead lead", None, "", "lead lead", "lead"]) == [2, 0, 0, 2, 1]
    assert c.cached_texts == 2
    assert c.count("lead lead lead") == 3 and c.cached_texts == 3


def test_chars4_rounds_up():
    assert [tokens.chars4(t) for t in ("a", "abcd", "abcde", "x" * 8, "x" * 9)] == \
        [1, 1, 2, 2, 3]
    assert tokens.Chars4Counter().count_many(["abcde", None]) == [2, 0]


def test_a_lone_surrogate_is_counted_not_an_error():
    """Text from a badly decoded source can hold half of a surrogate pair; its cache key
    must still be made (the counter then sees the text as it is)."""
    assert tokens.Chars4Counter().count_many(["\ud800", "ok\udfff"]) == [1, 1]
