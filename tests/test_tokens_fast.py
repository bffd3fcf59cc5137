"""Link tokens made with the cached signer and without zlib read with stock itsdangerous and the
other way round (links in emails already sent keep working, whatever the id)."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import Signer, URLSafeSerializer, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

from subscribers.tokens import LinkPurpose, TokenPurpose, Tokens

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


@given(PUBLIC_ID, PUBLIC_ID, st.sampled_from(["unsubscribe", "preferences"]))
def test_email_link_tokens_are_the_stock_format_without_zlib(
    public_id: str, send_id: str, purpose: TokenPurpose
) -> None:
    """Byte for byte what the stock serializer writes when it does not compress: its JSON, in
    URL-safe base64, signed by its signer."""
    made = Tokens(KEYS).make(purpose, public_id, send_id)
    body = base64_encode(json.dumps([public_id, send_id], separators=(",", ":")))
    assert made == Signer(KEYS, salt=f"clinicmail.{purpose}").sign(body).decode()
    assert URLSafeSerializer(KEYS, salt=f"clinicmail.{purpose}").loads(made) == [
        public_id,
        send_id,
    ]


@given(PUBLIC_ID)
def test_confirmation_tokens_round_trip_with_the_stock_timed_serializer(public_id: str) -> None:
    tokens = Tokens(KEYS)
    stock = URLSafeTimedSerializer(KEYS, salt="clinicmail.confirm")
    assert stock.loads(tokens.make("confirm", public_id)) == public_id
    assert tokens.read("confirm", stock.dumps(public_id)) == public_id
    # A token for one purpose never opens another.
    assert tokens.read("confirm", tokens.make("unsubscribe", public_id)) is None
    assert tokens.read("unsubscribe", tokens.make("preferences", public_id)) is None


@given(PUBLIC_ID, st.sampled_from(["open", "click", "checkin"]))
def test_link_signatures_equal_the_stock_sha256_signer(send_id: str, purpose: LinkPurpose) -> None:
    """Tracked links, pixels and check-in links in emails already sent keep verifying."""
    tokens = Tokens(KEYS)
    old = Signer(KEYS[:1], salt=f"clinicmail.{purpose}", digest_method=hashlib.sha256)
    new = Signer(KEYS, salt=f"clinicmail.{purpose}", digest_method=hashlib.sha256)
    assert tokens.signature(purpose, send_id) == new.get_signature(send_id).decode()
    signed_with_old = old.get_signature(send_id).decode()
    assert tokens.verify(purpose, send_id, signed_with_old)
    assert tokens.read(purpose, f"{send_id}.{signed_with_old}") == send_id
    assert tokens.read(purpose, f"{send_id}.{signed_with_old[:-2]}") is None
    # A link signature is never a payload token of the same id, nor another purpose's.
    other: LinkPurpose = "click" if purpose != "click" else "open"
    assert not tokens.verify(other, send_id, signed_with_old)
    assert tokens.read("unsubscribe", tokens.token(purpose, send_id)) is None
