"""The plain-ASCII fast path of address validation agrees exactly with email-validator: the
same addresses accepted, the same normalised form, the same message for a rejected one."""

from __future__ import annotations

import idna
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from subscribers.addresses import InvalidAddress, normalize, plain

ATEXT = "abcxyzABCXYZ0189!#$%&'*+/=?^_`{|}~-"
HOST = "abcxyzABCXYZ0189-"


def reference(text: str) -> tuple[str, str] | str:
    """What email-validator alone says, as :func:`normalize` calls it."""
    stripped = text.strip()
    if not stripped:
        return "email is empty"
    try:
        email = validate_email(stripped, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        return f"invalid email: {exc}"
    return email, email.lower()


def ours(text: str) -> tuple[str, str] | str:
    try:
        return normalize(text)
    except InvalidAddress as exc:
        return str(exc)


def _punycode(label: str) -> str:
    try:
        return idna.encode(label).decode("ascii")
    except idna.IDNAError:
        return label  # not every generated label is valid IDNA: keep it as it is


atoms = st.text(alphabet=ATEXT, min_size=1, max_size=12)
dotted_local = st.lists(atoms, min_size=1, max_size=4).map(".".join)
sloppy_local = st.text(alphabet=ATEXT + '."\\@ ', min_size=0, max_size=20)
quoted_local = st.text(alphabet=ATEXT + ' .@"\\(),:;<>[]é', max_size=15).map(lambda s: f'"{s}"')
role_local = st.sampled_from(["info", "Sales", "POSTMASTER", "www", "Info.x", "support"])
unicode_local = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=10
)
long_local = st.text(alphabet="aZ9.+", min_size=60, max_size=250)
local_parts = st.one_of(
    dotted_local, sloppy_local, quoted_local, role_local, unicode_local, long_local
)

ascii_label = st.text(alphabet=HOST, min_size=1, max_size=12)
long_label = st.text(alphabet="aZ9-", min_size=58, max_size=68)
unicode_label = st.text(
    alphabet=st.characters(min_codepoint=0x61, max_codepoint=0x24F), min_size=1, max_size=10
)
cjk_label = st.text(alphabet="日本語例え", min_size=1, max_size=5)
labels = st.one_of(
    ascii_label,
    long_label,
    unicode_label,
    cjk_label,
    unicode_label.map(_punycode),
    cjk_label.map(_punycode),
    st.sampled_from(["xn--bcher-kva", "xn--", "ab--cd", "XN--BCHER-KVA", "xn--zz"]),
)
tlds = st.one_of(
    st.sampled_from(["com", "COM", "org", "uk", "a", "io", "123", "c0m", "x1"]),
    st.sampled_from(["local", "test", "invalid", "localhost", "onion", "arpa", "Local"]),
    labels,
)
domains = st.tuples(st.lists(labels, max_size=4), tlds).map(lambda p: ".".join([*p[0], p[1]]))
addresses = st.one_of(
    st.tuples(local_parts, domains).map("@".join),
    st.tuples(local_parts, domains, st.sampled_from([" ", "\t", "", "\n"])).map(
        lambda p: f"{p[2]}{p[0]}@{p[1]}{p[2]}"
    ),
    st.tuples(dotted_local, domains, domains).map(lambda p: f"{p[0]}@{p[1]}@{p[2]}"),
    st.text(max_size=40),
)


@settings(max_examples=2000, deadline=None)
@given(addresses)
def test_normalize_agrees_with_email_validator(text: str) -> None:
    assert ours(text) == reference(text)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(dotted_local, long_local), st.lists(ascii_label, min_size=1, max_size=3), tlds)
def test_fast_path_answers_only_what_email_validator_would(
    local: str, inner: list[str], tld: str
) -> None:
    text = f"{local}@{'.'.join([*inner, tld])}"
    fast = plain(text)
    if fast is not None:
        assert fast == validate_email(text, check_deliverability=False).normalized


def test_the_common_case_takes_the_fast_path() -> None:
    assert plain("Person.One+news@Example.CO.uk") == "Person.One+news@example.co.uk"
    assert normalize("  Person.One@Example.com ") == (
        "Person.One@example.com",
        "person.one@example.com",
    )
    # …and everything unusual is left to email-validator
    for text in (
        "info@example.com",
        "a@xn--bcher-kva.de",
        "josé@example.com",
        '"a b"@example.com',
        "a@example.local",
        "a..b@example.com",
        "a@example.123",
        "x@" + "a" * 64 + ".com",
    ):
        assert plain(text) is None
