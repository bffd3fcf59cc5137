"""Link tokens made with the cached signer and without zlib read with stock itsdangerous and the
other way round (links in emails already sent keep working, whatever the id)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from subscribers.tokens import Tokens

KEYS = ["old-key", "new-key"]
PUBLIC_ID = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)


@given(PUBLIC_ID, st.sampled_from(["unsubscribe", "preferences", "keep"]))
def test_plain_tokens_equal_the_stock_serializer(public_id: str, purpose: str) -> None:
    tokens = Tokens(KEYS)
    stock = URLSafeSerializer(KEYS, salt=f"clinicmail.{purpose}")
    made = tokens.make(purpose, public_id)  # type: ignore[arg-type]
    assert stock.loads(made) == public_id
    assert tokens.read(purpose, stock.dumps(public_id)) == public_id  # type: ignore[arg-type]
    signed_with_old = URLSafeSerializer(KEYS[:1], salt=f"clinicmail.{purpose}").dumps(public_id)
    assert tokens.read(purpose, signed_with_old) == public_id  # type: ignore[arg-type]


@given(PUBLIC_ID)
def test_confirmation_tokens_round_trip_with_the_stock_timed_serializer(public_id: str) -> None:
    tokens = Tokens(KEYS)
    stock = URLSafeTimedSerializer(KEYS, salt="clinicmail.confirm")
    assert stock.loads(tokens.make("confirm", public_id)) == public_id
    assert tokens.read("confirm", stock.dumps(public_id)) == public_id
    # A token for one purpose never opens another.
    assert tokens.read("confirm", tokens.make("unsubscribe", public_id)) is None
    assert tokens.read("unsubscribe", tokens.make("preferences", public_id)) is None
