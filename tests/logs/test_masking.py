"""Masking: secret values become *** before any byte is stored, however the stream is split."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from devops.logs import LogKey, open_step_writer
from devops.logs.masking import Masker, mask_all, mask_values

# A small alphabet makes secrets overlap, nest and share prefixes with the noise.
_alpha = st.text(alphabet="ab\nxyé", min_size=0, max_size=8)


@st.composite
def streams(draw):
    secrets = draw(st.lists(_alpha, min_size=0, max_size=4))
    pieces = draw(st.lists(st.one_of(st.sampled_from(secrets or ["ab"]), _alpha), max_size=30))
    data = "".join(pieces).encode()
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=20)))
    return secrets, data, cuts


@settings(max_examples=400, deadline=None)
@given(streams())
def test_any_chunking_masks_like_the_whole_stream(case):
    secrets, data, cuts = case
    m = Masker(secrets)
    out = b""
    prev = 0
    for c in [*cuts, len(data)]:
        out += m.feed(data[prev:c])
        prev = c
    out += m.close()
    assert out == mask_all(data, secrets)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abc", min_size=4, max_size=10), st.binary(max_size=50), st.integers(1, 7))
def test_a_secret_never_survives_in_fixed_size_writes(secret, noise, size):
    data = noise + secret.encode() + noise + secret.encode()
    m = Masker([secret])
    out = b"".join(m.feed(data[i:i + size]) for i in range(0, len(data), size)) + m.close()
    assert secret.encode() not in out
    assert out.count(b"***") >= 2


def test_values_shorter_than_four_characters_are_not_masked():
    assert mask_values(["abc", "", "  ab  ", "abcd"]) == (b"abcd",)
    assert mask_all(b"abc abcd", ["abc", "abcd"]) == b"abc ***"


def test_multi_line_values_are_masked_line_by_line():
    key = "-----BEGIN KEY-----\nAAAABBBBCCCC\nDDDDEEEE\r\n-----END KEY-----\n"
    out = mask_all(b"printed: AAAABBBBCCCC and later DDDDEEEE alone\n" + key.encode(), [key])
    assert b"AAAABBBB" not in out and b"DDDDEEEE" not in out and b"BEGIN KEY" not in out
    assert out.startswith(b"printed: *** and later *** alone\n")


def test_the_longest_value_wins_at_one_position():
    assert mask_all(b"tokentoken2", ["token", "tokentoken2"]) == b"***"


def test_stored_log_never_holds_a_secret_split_across_writes(file_store):
    key = LogKey("e-mask", 1, 0)
    w = open_step_writer(file_store, key, mask=("s3cr3t-value", "pw"))
    for piece in (b"password is s3c", b"r3t-", b"value; pw stays\nagain s3cr3t-valu", b"e\n"):
        w.write(piece)
        # Nothing of a possible secret is stored before it can be decided.
        assert b"s3cr3t-value" not in file_store.read(key)
    w.close()
    assert file_store.read(key) == b"password is ***; pw stays\nagain ***\n"
