"""orchestrator.frontend.auth: HS256 bearer tokens, verified before they are read."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.frontend.auth import (
    MAX_TOKEN_CHARS,
    VERIFIED_CACHE_SIZE,
    Claims,
    InvalidTokenError,
    TokenSigner,
    bearer_token,
    secret_equals,
)

SECRET = b"k" * 32
NOW = 1_700_000_000
TTL_S = 3600


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _signer(clock: FakeClock | None = None, secret: bytes = SECRET) -> TokenSigner:
    return TokenSigner(secret, TTL_S, clock or FakeClock(), leeway_s=30)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _forge(header: object, claims: object, secret: bytes = SECRET, raw: bool = False) -> str:
    """A token from arbitrary header and claims, signed with ``secret`` like JWT tooling."""
    if raw:
        assert isinstance(header, bytes)
        assert isinstance(claims, bytes)
        signing_input = f"{_b64(header)}.{_b64(claims)}"
    else:
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.digest(secret, signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{_b64(signature)}"


HS256 = {"alg": "HS256", "typ": "JWT"}
VALID = {"sub": "m1", "iat": NOW, "exp": NOW + TTL_S}


def _rejects(token: str, signer: TokenSigner | None = None) -> str:
    with pytest.raises(InvalidTokenError) as caught:
        (signer or _signer()).verify(token)
    return str(caught.value)


# --- round trip ----------------------------------------------------------------------


def test_issue_then_verify_round_trips():
    """A freshly issued token verifies to its member, times and default scope."""
    signer = _signer()
    claims = signer.verify(signer.issue("member_42"))
    assert claims == Claims(sub="member_42", iat=NOW, exp=NOW + TTL_S, scope="member")
    assert claims.member_id == "member_42"
    assert not claims.is_admin


def test_admin_scope_round_trips():
    """An admin token says so after verification."""
    signer = _signer()
    assert signer.verify(signer.issue("ops-1", scope="admin")).is_admin


def test_token_is_jwt_compact_form():
    """The token is three base64url segments with the standard HS256 header."""
    header, claims, signature = _signer().issue("m1").split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == HS256
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert decoded == {"sub": "m1", "iat": NOW, "exp": NOW + TTL_S, "scope": "member"}
    assert len(signature) == 43
    assert "=" not in header + claims + signature


def test_token_minted_by_other_jwt_tooling_verifies():
    """A token with the same secret but another header layout is accepted."""
    token = _forge({"typ": "JWT", "alg": "HS256", "kid": "k1"}, VALID)
    assert _signer().verify(token).sub == "m1"


def test_scope_defaults_to_member_when_absent():
    """A token without a scope claim is a member token."""
    assert _signer().verify(_forge(HS256, VALID)).scope == "member"


# --- time ----------------------------------------------------------------------------


def test_token_expires_exactly_at_exp():
    """The token works until the second before exp and is refused from exp on."""
    clock = FakeClock()
    signer = _signer(clock)
    token = signer.issue("m1")
    clock.now = NOW + TTL_S - 1
    assert signer.verify(token).sub == "m1"
    clock.now = NOW + TTL_S
    assert _rejects(token, signer) == "token expired"


def test_a_remembered_token_still_expires_and_is_forgotten():
    """A token verified before (and so remembered) is refused from exp on, every time."""
    clock = FakeClock()
    signer = _signer(clock)
    token = signer.issue("m1")
    assert signer.verify(token).sub == "m1"
    clock.now = NOW + TTL_S
    assert _rejects(token, signer) == "token expired"
    assert _rejects(token, signer) == "token expired"
    assert token not in signer._verified


def test_remembered_tokens_are_bounded_oldest_first():
    """Past the cache size the oldest genuine token is forgotten (and re-verified if seen)."""
    signer = _signer()
    tokens = [signer.issue(f"m{n}") for n in range(VERIFIED_CACHE_SIZE + 1)]
    for token in tokens:
        signer.verify(token)
    assert len(signer._verified) == VERIFIED_CACHE_SIZE
    assert tokens[0] not in signer._verified
    assert signer.verify(tokens[0]).sub == "m0"


def test_a_refused_token_is_never_remembered():
    """Only tokens that passed every check are remembered."""
    signer = _signer()
    token = signer.issue("m1")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    _rejects(tampered, signer)
    assert signer._verified == {}


def test_future_token_within_leeway_is_accepted():
    """Clock skew up to the leeway between issuing and verifying instances is tolerated."""
    clock = FakeClock(NOW - 30)
    assert _signer(clock).verify(_forge(HS256, VALID)).sub == "m1"


def test_future_token_beyond_leeway_is_refused():
    """A token issued further in the future than the leeway is refused."""
    clock = FakeClock(NOW - 31)
    assert _rejects(_forge(HS256, VALID), _signer(clock)) == "token issued in the future"


def test_not_before_in_the_future_is_refused():
    """An nbf claim past now plus leeway makes the token not yet valid."""
    token = _forge(HS256, {**VALID, "nbf": NOW + 600})
    assert _rejects(token) == "token not yet valid"


# --- rejection -----------------------------------------------------------------------


def test_tampered_claims_are_refused():
    """Changing the claims without the secret breaks the signature."""
    header, _, signature = _signer().issue("m1").split(".")
    other = _b64(json.dumps({**VALID, "sub": "admin", "scope": "admin"}).encode())
    assert _rejects(f"{header}.{other}.{signature}") == "bad signature"


def test_wrong_secret_is_refused():
    """A token signed with another secret is refused."""
    assert _rejects(_forge(HS256, VALID, secret=b"x" * 32)) == "bad signature"


def test_signature_with_altered_padding_bits_is_refused():
    """A signature text that decodes to the same bytes but differs is still refused."""
    token = _signer().issue("m1")
    last = token[-1]
    # The last of 43 characters carries 4 data bits and 2 zero bits; flip a zero bit.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) | 1]
    assert _rejects(token[:-1] + twin) == "bad signature"


def test_alg_none_is_refused_unsigned_or_signed():
    """alg "none" is refused, whether the signature is empty or even valid."""
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{none_header}.{_b64(json.dumps(VALID).encode())}."
    assert _rejects(unsigned) == "bad signature"
    assert _rejects(_forge({"alg": "none"}, VALID)) == "unsupported alg"


@pytest.mark.parametrize("alg", ["HS512", "RS256", "hs256", None])
def test_other_algorithms_are_refused(alg):
    """Only HS256 is accepted, even with a valid HMAC over the token."""
    assert _rejects(_forge({"alg": alg}, VALID)) == "unsupported alg"


def test_unknown_critical_header_is_refused():
    """A header with crit extensions is refused (RFC 7515)."""
    assert _rejects(_forge({**HS256, "crit": ["exp"]}, VALID)) == "unsupported crit header"


def test_other_typ_is_refused():
    """A typ other than JWT is refused."""
    assert _rejects(_forge({"alg": "HS256", "typ": "at+jwt"}, VALID)) == "unsupported typ"


@pytest.mark.parametrize(
    "token",
    ["", ".", "..", "abc", "a.b", "a.b.c", "a.b.c.d", "é.é.é", " " * 10],
)
def test_garbage_is_refused(token):
    """Strings that are not tokens are refused with InvalidTokenError."""
    _rejects(token)


def test_oversize_token_is_refused_before_hashing():
    """A token longer than 4 KiB is refused on its length alone."""
    assert _rejects("a" * (MAX_TOKEN_CHARS + 1)) == "token too long"


@pytest.mark.parametrize(
    "claims",
    [
        {**VALID, "sub": "../etc/passwd"},
        {**VALID, "sub": "m" * 65},
        {**VALID, "sub": ""},
        {**VALID, "sub": 42},
        {"iat": NOW, "exp": NOW + TTL_S},
        {"sub": "m1", "exp": NOW + TTL_S},
        {"sub": "m1", "iat": NOW},
        {**VALID, "iat": True},
        {**VALID, "exp": "tomorrow"},
        {**VALID, "scope": "root"},
        {**VALID, "scope": ["admin"]},
        ["m1", NOW, NOW + TTL_S],
        "m1",
    ],
)
def test_signed_but_malformed_claims_are_refused(claims):
    """Even with a valid signature, claims of the wrong shape are refused."""
    _rejects(_forge(HS256, claims))


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"\xff\xfe", b'{"sub":"m1","iat":NaN,"exp":1}', b"[" * 2000, b"1" * 5000],
)
def test_signed_but_undecodable_payload_is_refused(payload):
    """Signed payloads that are not a JSON object of claims are refused, never crash."""
    token = _forge(json.dumps(HS256).encode(), payload, raw=True)
    if len(token) <= MAX_TOKEN_CHARS:
        _rejects(token)
    else:
        assert _rejects(token) == "token too long"


def test_issue_refuses_unsafe_member_ids():
    """Member ids outside [A-Za-z0-9_-]{1,64} are never signed."""
    with pytest.raises(ValueError, match="member ids"):
        _signer().issue("a/b")


def test_short_secret_is_refused():
    """A secret shorter than 32 bytes cannot make a signer."""
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenSigner(b"short", TTL_S)


@given(st.text(max_size=300))
def test_random_text_only_ever_raises_invalid_token(text):
    """Arbitrary strings are refused with InvalidTokenError and nothing else."""
    with pytest.raises(InvalidTokenError):
        _signer().verify(text)


@given(st.lists(st.text("ABCxyz019-_=+/é", max_size=60), min_size=1, max_size=5))
def test_random_segments_only_ever_raise_invalid_token(segments):
    """Dot-joined base64-ish segments are refused with InvalidTokenError and nothing else."""
    with pytest.raises(InvalidTokenError):
        _signer().verify(".".join(segments))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(
    header=st.one_of(st.just(HS256), st.dictionaries(st.sampled_from(["alg", "typ"]), _json)),
    claims=st.one_of(
        _json,
        st.fixed_dictionaries(
            {"sub": st.text(max_size=70), "iat": _json, "exp": _json},
            optional={"scope": _json, "nbf": _json},
        ),
    ),
)
def test_signed_random_json_yields_claims_or_invalid_token(header, claims):
    """With a valid signature, any JSON gives valid Claims or InvalidTokenError, never a crash."""
    try:
        result = _signer().verify(_forge(header, claims))
    except InvalidTokenError:
        return
    assert isinstance(result, Claims)
    assert result.scope in {"member", "admin"}


# --- Authorization header and static secrets -----------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer a b", None),
        ("Bearerabc", None),
    ],
)
def test_bearer_token_parses_the_authorization_header(header, expected):
    """Only a well-formed Bearer credential is returned; anything else is None."""
    assert bearer_token(header) == expected


def test_secret_equals_compares_any_text():
    """Static secrets compare equal only when identical, non-ASCII included."""
    assert secret_equals("admin-token", "admin-token")
    assert not secret_equals("admin-token", "admin-tokem")
    assert not secret_equals("é", "admin-token")
