"""Survey-link tokens: random, URL-safe, stored only as a SHA-256 hash (models/tokens.py)."""

from __future__ import annotations

import base64
import string
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.tokens import hash_token, looks_like_token, new_token

URL_SAFE = frozenset(string.ascii_letters + string.digits + "-_")
DRAWS = 10_000


@pytest.fixture(scope="module")
def tokens() -> list[str]:
    return [new_token() for _ in range(DRAWS)]


def decoded(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_tokens_are_unique_over_many_draws(tokens: list[str]) -> None:
    assert len(set(tokens)) == DRAWS


def test_tokens_carry_at_least_128_random_bits(tokens: list[str]) -> None:
    lengths = {len(decoded(t)) for t in tokens}
    assert min(lengths) >= 16, lengths
    # Distinct decoded values, not just distinct spellings of the same bytes.
    assert len({decoded(t) for t in tokens}) == DRAWS


def test_tokens_use_only_the_url_safe_alphabet(tokens: list[str]) -> None:
    used = Counter(c for t in tokens for c in t)
    assert set(used) <= URL_SAFE, sorted(set(used) - URL_SAFE)
    # 430k characters drawn from 64: every one should show up (a hex or digits-only
    # token would not), and no "=" padding that a URL would have to escape.
    assert set(used) == URL_SAFE


def test_tokens_are_not_sequential_or_shared_prefixes(tokens: list[str]) -> None:
    prefixes = Counter(t[:6] for t in tokens)
    assert prefixes.most_common(1)[0][1] < 5


def test_hash_is_sha256_hex() -> None:
    # FIPS 180-2 test vector for "abc".
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_hash_of_empty_string_is_sha256_hex() -> None:
    # FIPS 180-2: SHA-256 of the empty message.
    assert hash_token("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_hash_is_deterministic_and_differs_from_token(tokens: list[str]) -> None:
    for token in tokens[:200]:
        digest = hash_token(token)
        assert digest == hash_token(token)
        assert digest != token
        assert token not in digest
        assert len(digest) == 64
        assert set(digest) <= set(string.hexdigits.lower())


def test_different_tokens_hash_differently(tokens: list[str]) -> None:
    assert len({hash_token(t) for t in tokens}) == DRAWS


def test_real_tokens_look_like_tokens(tokens: list[str]) -> None:
    assert all(looks_like_token(t) for t in tokens)


@pytest.mark.parametrize(
    "candidate",
    [
        "../x",
        "",
        "a" * 200,
        "abc def",
        "../../../../etc/passwd/aaaa",
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "abcdefghijklmnopqrstuvwxyz/",
        "abcdefghijklmnopqrstuvwxyz.",
        "abcdefghijklmnopqrstuvwxyz ",
        "abcdefghijklmnopqrstuvwxyz\n",
        "abcdefghijklmnopqrstuvwxyz\x00",
        "abcdefghij?klmnopqrstuvwxyz",
        "abcdefghij#klmnopqrstuvwxyz",
        "short",
    ],
)
def test_looks_like_token_rejects(candidate: str) -> None:
    assert looks_like_token(candidate) is False


# Around the length of a real token (43): a check that only knew today's tokens would
# still pass the fixture test above.
@given(st.text(alphabet=st.sampled_from(sorted(URL_SAFE)), min_size=32, max_size=64))
def test_looks_like_token_accepts_any_url_safe_string_of_token_length(candidate: str) -> None:
    assert looks_like_token(candidate) is True


@given(
    st.text(alphabet=st.sampled_from(sorted(URL_SAFE)), min_size=32, max_size=64),
    st.sampled_from(list("/.\\%?#&= \t\r\n\x00:;'\"<>")),
    st.data(),
)
def test_looks_like_token_rejects_any_url_or_path_syntax(
    base: str, bad: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(base)))
    assert looks_like_token(base[:at] + bad + base[at:]) is False
