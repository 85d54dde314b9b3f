"""Keys in a PKCS#11 token, against a real SoftHSM2: signing happens in the token.

Signatures are checked with our :class:`PublicKey` and with jwcrypto, a JOSE
implementation we did not write.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_named_curve_parameters

from clearance.bundle import TrustBundle
from clearance.errors import ConflictError, KeyAccessCode, KeyAccessError
from clearance.jws import decode_compact, encode_compact, verify_compact
from clearance.keys import Alg, Signer
from clearance.pkcs11 import Pkcs11Module, Pkcs11Signer, generate_key_pair
from clearance.pkcs11config import Pkcs11Config
from clearance.pkcs11uri import Pkcs11Uri
from cli.softhsm import ScratchToken, SoftHsm, find_softhsm
from tests.factories import NOW

ALGS: list[Alg] = ["EdDSA", "ES256"]


def make_key(softhsm: SoftHsm, token: ScratchToken, label: str, alg: Alg = "EdDSA") -> Pkcs11Uri:
    uri, _public = generate_key_pair(token.key_uri(label), alg, softhsm.config)
    return uri


@contextmanager
def token_session(softhsm: SoftHsm, uri: Pkcs11Uri) -> Iterator[pkcs11.Session]:
    """A logged-in read-write session, for setting up what our API does not make."""
    module = Pkcs11Module.load(softhsm.module_path)
    assert uri.pin_source is not None
    with module.locked():
        session = module.open_session(module.find_token(uri), Path(uri.pin_source[5:]).read_text(), rw=True)
        try:
            yield session
        finally:
            session.close()


def expect(code: KeyAccessCode) -> pytest.RaisesExc[KeyAccessError]:
    return pytest.raises(KeyAccessError, match=f"^{code.value}:")


def test_softhsm2_is_installed() -> None:
    """CI requires SoftHSM2: a machine without it fails here rather than skipping the tests below."""
    module, util = find_softhsm()
    assert os.path.isfile(module)
    assert os.access(util, os.X_OK)


@pytest.mark.parametrize("alg", ALGS)
def test_signatures_made_in_the_token_verify_with_our_key_and_with_jwcrypto(
    softhsm: SoftHsm, token: ScratchToken, alg: Alg
) -> None:
    uri, public = generate_key_pair(token.key_uri("issuing-1"), alg, softhsm.config)
    signer = Pkcs11Signer(uri, softhsm.config)

    assert isinstance(signer, Signer)
    assert signer.alg == alg
    assert signer.public == public
    assert signer.kid == public.thumbprint
    token_text = encode_compact({"typ": "JWT", "kid": signer.kid}, {"sub": "x", "n": 1}, signer)
    jws = decode_compact(token_text)
    verify_compact(jws, public)
    signature = signer.sign(b"message")
    assert len(signature) == 64
    public.verify(signature, b"message")

    theirs = JWS()
    theirs.deserialize(token_text)
    theirs.verify(JWK(**public.jwk), alg=alg)
    assert theirs.payload == jws.payload_json.encode()


def test_a_bundle_signed_in_the_token_verifies_against_its_root(
    softhsm: SoftHsm, token: ScratchToken
) -> None:
    signer = Pkcs11Signer(make_key(softhsm, token, "root"), softhsm.config)
    bundle = TrustBundle(
        issuer="https://registry.jp.example",
        jurisdiction="JP",
        version=1,
        issued_at=NOW,
        expires_at=NOW + 86400,
        root=signer.kid,
        issuing_keys=(),
        levels=("CONFIDENTIAL",),
        categories=(),
        status_lists=(),
    )
    assert TrustBundle.verify(bundle.sign(signer), signer.public).version == 1


def test_a_generated_private_key_is_sensitive_and_never_extractable(
    softhsm: SoftHsm, token: ScratchToken
) -> None:
    uri = make_key(softhsm, token, "root")
    with token_session(softhsm, uri) as session:
        (private,) = session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: "root"})
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        with pytest.raises(p11.AttributeSensitive):
            private[Attribute.VALUE]


def test_the_pin_may_come_from_an_environment_variable_named_in_configuration(
    softhsm: SoftHsm, token: ScratchToken
) -> None:
    uri = make_key(softhsm, token, "root")
    bare = Pkcs11Uri(token=uri.token, object="root")
    config = Pkcs11Config(
        default_module=softhsm.module_path,
        pin_env="ROOT_PIN",
        environ={"ROOT_PIN": token.pin_file.read_text()},
    )
    assert Pkcs11Signer(bare, config).kid == Pkcs11Signer(uri, softhsm.config).kid

    with expect(KeyAccessCode.PIN_UNAVAILABLE):
        Pkcs11Signer(bare, Pkcs11Config(default_module=softhsm.module_path, pin_env="ROOT_PIN", environ={}))
    with expect(KeyAccessCode.PIN_UNAVAILABLE):
        Pkcs11Signer(bare, Pkcs11Config(default_module=softhsm.module_path))
    with expect(KeyAccessCode.MODULE_UNAVAILABLE):
        Pkcs11Signer(Pkcs11Uri(token=uri.token, object="root", pin_source=uri.pin_source))


def test_a_wrong_pin_is_refused(softhsm: SoftHsm, token: ScratchToken, tmp_path: Path) -> None:
    # The key is made through another process's view of the token, so this process has not logged in yet.
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("000000")
    wrong.chmod(0o600)
    uri = Pkcs11Uri(token=token.label, object="root", pin_source=f"file:{wrong}")

    with expect(KeyAccessCode.WRONG_PIN):
        Pkcs11Signer(uri, softhsm.config)


def test_a_pin_file_others_may_read_is_refused(softhsm: SoftHsm, token: ScratchToken) -> None:
    token.pin_file.chmod(0o644)

    with expect(KeyAccessCode.PIN_UNAVAILABLE) as caught:
        Pkcs11Signer(token.key_uri("root"), softhsm.config)
    assert "chmod 600" in str(caught.value)


def test_no_such_token(softhsm: SoftHsm, token: ScratchToken) -> None:
    uri = Pkcs11Uri(token="no-such-token", object="root", pin_source=f"file:{token.pin_file}")

    with expect(KeyAccessCode.NO_SUCH_TOKEN):
        Pkcs11Signer(uri, softhsm.config)


def test_no_such_key(softhsm: SoftHsm, token: ScratchToken) -> None:
    make_key(softhsm, token, "root")

    with expect(KeyAccessCode.NO_SUCH_KEY) as caught:
        Pkcs11Signer(token.key_uri("issuing"), softhsm.config)
    assert "'issuing'" in str(caught.value)


def test_a_uri_naming_another_token_finds_no_key_and_a_uri_naming_two_tokens_is_refused(
    softhsm: SoftHsm, token: ScratchToken
) -> None:
    make_key(softhsm, token, "root")
    other = softhsm.init_token("other-token")

    with expect(KeyAccessCode.NO_SUCH_KEY):
        Pkcs11Signer(other.key_uri("root"), softhsm.config)
    mixed = Pkcs11Uri(
        token=token.label, serial=other.serial, object="root", pin_source=f"file:{token.pin_file}"
    )
    with expect(KeyAccessCode.TOKEN_MISMATCH):
        Pkcs11Signer(mixed, softhsm.config)


@pytest.mark.parametrize(
    ("key_type", "params"),
    [
        (KeyType.EC, encode_named_curve_parameters("1.3.132.0.34")),  # P-384
        (KeyType.RSA, None),
    ],
)
def test_a_key_type_we_cannot_sign_jws_with_is_refused(
    softhsm: SoftHsm, token: ScratchToken, key_type: KeyType, params: bytes | None
) -> None:
    with token_session(softhsm, token.key_uri("odd")) as session:
        template: dict[Attribute, Any] = {Attribute.EC_PARAMS: params} if params else {}
        session.generate_keypair(
            key_type,
            2048 if key_type == KeyType.RSA else None,
            store=True,
            label="odd",
            public_template=template,
        )

    with expect(KeyAccessCode.UNSUPPORTED_MECHANISM):
        Pkcs11Signer(token.key_uri("odd"), softhsm.config)


@pytest.mark.parametrize(
    "text",
    [
        "file:/etc/root.pem",
        "pkcs11:object=root",  # no token
        "pkcs11:token=t",  # no key
        "pkcs11:token=t;object=root;type=public",
        "pkcs11:token=t;object=root;token=u",
        "pkcs11:token=t;object=r%zzoot",
        "pkcs11:token=t;object=root;slot-id=1",
        "pkcs11:token=t;object=root?pin-value=1234",
        "pkcs11:token=t;object=root?module-name=softhsm2",
        "pkcs11:token=t;object=%ff",
        "pkcs11:token=t;id=",
        "pkcs11:token=t;object",
    ],
)
def test_malformed_uris_are_refused(text: str) -> None:
    with expect(KeyAccessCode.MALFORMED_URI):
        Pkcs11Uri.parse(text)


def test_a_uri_parses_and_prints_back() -> None:
    text = (
        "pkcs11:token=Root%20CA;serial=3d37;object=root-1;id=%01%A2;type=private"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin"
    )
    uri = Pkcs11Uri.parse(text)

    assert uri == Pkcs11Uri(
        token="Root CA",
        serial="3d37",
        object="root-1",
        id=b"\x01\xa2",
        module_path="/usr/lib/softhsm/libsofthsm2.so",
        pin_source="file:/run/pin",
    )
    assert str(uri) == text
    assert Pkcs11Uri.parse(str(uri)) == uri


def test_a_token_that_disappears_raises_our_error_and_a_reload_finds_it_gone(
    softhsm: SoftHsm, token: ScratchToken
) -> None:
    signer = Pkcs11Signer(make_key(softhsm, token, "root"), softhsm.config)
    signer.public.verify(signer.sign(b"before"), b"before")

    softhsm.delete_token(token)

    with expect(KeyAccessCode.TOKEN_UNAVAILABLE):
        signer.sign(b"after")
    Pkcs11Module.load(softhsm.module_path).reload()
    with expect(KeyAccessCode.NO_SUCH_TOKEN):
        signer.sign(b"after")


def test_a_signer_survives_a_module_reload(softhsm: SoftHsm, token: ScratchToken) -> None:
    signer = Pkcs11Signer(make_key(softhsm, token, "root", "ES256"), softhsm.config)
    Pkcs11Module.load(softhsm.module_path).reload()

    signer.public.verify(signer.sign(b"after reload"), b"after reload")


@pytest.mark.parametrize("alg", ALGS)
def test_threads_share_a_signer_safely(softhsm: SoftHsm, token: ScratchToken, alg: Alg) -> None:
    signer = Pkcs11Signer(make_key(softhsm, token, "root", alg), softhsm.config)
    threads = 4
    start = threading.Barrier(threads)

    def work(n: int) -> int:
        start.wait()
        for i in range(25):
            message = f"{n}-{i}".encode()
            signer.public.verify(signer.sign(message), message)
        return n

    with ThreadPoolExecutor(threads) as pool:
        assert sorted(pool.map(work, range(threads))) == list(range(threads))


def test_generating_a_second_key_with_the_same_label_is_refused(
    softhsm: SoftHsm, token: ScratchToken
) -> None:
    make_key(softhsm, token, "root")

    with pytest.raises(ConflictError):
        make_key(softhsm, token, "root")
