"""Keys in a PKCS#11 token: the private key never exists in this process.

A :class:`Pkcs11Signer` is a :class:`~clearance.keys.Signer` built from an
RFC 7512 URI (:mod:`clearance.pkcs11uri`). It signs inside the token:
``CKM_EDDSA`` for Ed25519 (JWS ``EdDSA``), ``CKM_ECDSA`` over a SHA-256
digest for P-256 (JWS ``ES256``; PKCS#11 already returns ``r || s``). The
binding is python-pkcs11; its exceptions are mapped to
:class:`~clearance.errors.KeyAccessError` here and nowhere else.

Sessions and threads. PKCS#11 logs an *application* in to a token, not a
session: the first session opened for a token logs in with the PIN and stays
open while the module is loaded (it anchors the login); each signer keeps one
session of its own. python-pkcs11 initializes a module without
``CKF_OS_LOCKING_OK``, which promises the module that no two threads call it
at once (SoftHSM2 crashes when they do), so every call holds the module's
lock, taken with a timeout: a thread never waits for ever behind a wedged
token, it gets ``token_unavailable``. A session whose token errs is thrown
away and the next signature opens a new one.

A module (the vendor's shared library) is loaded once per process and never
unloaded: loading it twice would let one copy finalize the other.
:meth:`Pkcs11Module.reload` re-initializes it (a token was added, or
reinserted); signers notice and reopen their sessions.

The PIN comes from the URI's ``pin-source`` (a file readable only by its
owner) or from an environment variable named in :class:`~clearance.pkcs11config.Pkcs11Config`, never
from a command line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11

from clearance.errors import ConflictError, KeyAccessCode, KeyAccessError, MalformedError, VerificationError
from clearance.keys import Alg, PublicKey
from clearance.pkcs11config import DEFAULT_TIMEOUT, Pkcs11Config
from clearance.pkcs11uri import Pkcs11Uri

if TYPE_CHECKING:  # the binding types its library object only in a private stub
    from pkcs11._pkcs11 import lib as Library  # noqa: N812

# DER of the curves we accept in CKA_EC_PARAMS (an OID, or for Ed25519 also its PrintableString name).
_P256_OID = bytes.fromhex("06082a8648ce3d030107")
_ED25519_PARAMS = (bytes.fromhex("06032b6570"), b"\x13\x0cedwards25519")
_MECHANISM: dict[str, Mechanism] = {"EdDSA": Mechanism.EDDSA, "ES256": Mechanism.ECDSA}

_PIN_ERRORS = (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange, p11.PinLocked, p11.PinExpired)
_MECHANISM_ERRORS = (p11.MechanismInvalid, p11.MechanismParamInvalid, p11.KeyTypeInconsistent)


def _token_error(exc: p11.PKCS11Error, what: str) -> KeyAccessError:
    """The one mapping of a python-pkcs11 error to ours."""
    if isinstance(exc, _PIN_ERRORS):
        return KeyAccessError(KeyAccessCode.WRONG_PIN, f"{what}: the token refused the PIN")
    if isinstance(exc, _MECHANISM_ERRORS):
        return KeyAccessError(KeyAccessCode.UNSUPPORTED_MECHANISM, f"{what}: the token cannot do this")
    if isinstance(exc, p11.NoSuchToken):
        return KeyAccessError(KeyAccessCode.NO_SUCH_TOKEN, f"{what}: no such token")
    if isinstance(exc, p11.MultipleTokensReturned):
        return KeyAccessError(KeyAccessCode.NO_SUCH_TOKEN, f"{what}: the URI matches several tokens")
    return KeyAccessError(
        KeyAccessCode.TOKEN_UNAVAILABLE, f"{what}: token error {type(exc).__name__} (removed or failed?)"
    )


class Pkcs11Module:
    """One loaded PKCS#11 library, shared by every signer of the process.

    python-pkcs11 initializes a library without ``CKF_OS_LOCKING_OK``, which
    (PKCS#11 section 5.4) promises the library that no two threads call it at
    once; SoftHSM2 indeed crashes when they do. So every call into a module
    holds its lock, taken with a timeout so that a wedged token makes callers
    fail (``token_unavailable``) rather than queue for ever.
    """

    _loaded: ClassVar[dict[str, Pkcs11Module]] = {}
    """By real path: bounded by the libraries installed on the machine."""
    _loaded_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, lib: Library, path: str) -> None:
        self._lib = lib
        self.path = path
        self._lock = threading.RLock()
        self.generation = 0
        self._logins: dict[str, pkcs11.Session] = {}
        """Per token serial, the session that holds this process's login."""

    @classmethod
    def load(cls, path: str) -> Pkcs11Module:
        """The module at ``path``, loaded on first use.

        Raises:
            KeyAccessError: ``module_unavailable``: no such file or not a PKCS#11 library.
        """
        real = os.path.realpath(path)
        with cls._loaded_lock:
            module = cls._loaded.get(real)
            if module is None:
                if not os.path.isfile(real):
                    raise KeyAccessError(KeyAccessCode.MODULE_UNAVAILABLE, f"no PKCS#11 module at {path}")
                try:
                    lib = pkcs11.lib(real)
                except p11.PKCS11Error as exc:
                    raise KeyAccessError(
                        KeyAccessCode.MODULE_UNAVAILABLE, f"{path} is not a usable PKCS#11 module"
                    ) from exc
                module = cls._loaded[real] = cls(lib, real)
            return module

    @contextlib.contextmanager
    def locked(self, timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
        """Hold the module's lock: every PKCS#11 call happens inside.

        Raises:
            KeyAccessError: ``token_unavailable``: another call held it for ``timeout`` seconds.
        """
        if not self._lock.acquire(timeout=timeout):
            raise KeyAccessError(
                KeyAccessCode.TOKEN_UNAVAILABLE, f"the PKCS#11 module was busy for {timeout:g}s"
            )
        try:
            yield
        finally:
            self._lock.release()

    def reload(self) -> None:
        """Finalize and re-initialize the library: it sees tokens added or reinserted since.

        Every open session and login ends; signers reopen theirs on their next signature.

        Raises:
            KeyAccessError: ``module_unavailable``: the library failed to re-initialize.
        """
        with self.locked():
            self._logins.clear()
            self.generation += 1
            try:
                self._lib.reinitialize()
            except p11.PKCS11Error as exc:
                raise KeyAccessError(
                    KeyAccessCode.MODULE_UNAVAILABLE, f"{self.path} failed to reload"
                ) from exc

    def find_token(self, uri: Pkcs11Uri) -> pkcs11.Token:
        """The one token ``uri`` names (call it holding :meth:`locked`).

        Raises:
            KeyAccessError: ``no_such_token``, ``token_mismatch`` (the label and the
                serial name different tokens), ``token_unavailable``.
        """
        try:
            tokens = list(self._lib.get_tokens())
        except p11.PKCS11Error as exc:
            raise _token_error(exc, "listing tokens") from exc
        matching = [t for t in tokens if _token_matches(t, uri)]
        if len(matching) == 1:
            found: pkcs11.Token = matching[0]
            return found
        if matching:
            raise KeyAccessError(
                KeyAccessCode.NO_SUCH_TOKEN, f"{len(matching)} tokens match the {uri.describe_token()}"
            )
        by_label = [t for t in tokens if uri.token is not None and t.label == uri.token]
        by_serial = [t for t in tokens if uri.serial is not None and _serial(t) == uri.serial]
        if by_label or by_serial:
            raise KeyAccessError(
                KeyAccessCode.TOKEN_MISMATCH,
                f"the URI's attributes name different tokens ({uri.describe_token()})",
            )
        raise KeyAccessError(KeyAccessCode.NO_SUCH_TOKEN, f"no {uri.describe_token()} in {self.path}")

    def open_session(self, token: pkcs11.Token, pin: str, *, rw: bool = False) -> pkcs11.Session:
        """A new session on ``token``, logged in (call it holding :meth:`locked`).

        The first session per token logs in with ``pin`` and is kept open, so the
        login lasts while the module is loaded.

        Raises:
            KeyAccessError: ``wrong_pin``, ``token_unavailable``.
        """
        serial = _serial(token)
        try:
            if serial not in self._logins:
                # On a wrong PIN python-pkcs11 raises after opening the session, so one
                # handle stays open until the module reloads; a login is rarely retried.
                self._logins[serial] = token.open(user_pin=pin)
            return token.open(rw=rw)
        except p11.PKCS11Error as exc:
            raise _token_error(exc, f"opening a session on token {token.label!r}") from exc


def _serial(token: pkcs11.Token) -> str:
    serial = token.serial
    return serial.decode("ascii", "replace") if isinstance(serial, bytes) else str(serial)


def _token_matches(token: pkcs11.Token, uri: Pkcs11Uri) -> bool:
    return (
        (uri.token is None or token.label == uri.token)
        and (uri.serial is None or _serial(token) == uri.serial)
        and (uri.manufacturer is None or token.manufacturer_id == uri.manufacturer)
        and (uri.model is None or token.model == uri.model)
    )


def _object_query(uri: Pkcs11Uri, object_class: ObjectClass) -> dict[Attribute, Any]:
    query: dict[Attribute, Any] = {Attribute.CLASS: object_class}
    if uri.object is not None:
        query[Attribute.LABEL] = uri.object
    if uri.id is not None:
        query[Attribute.ID] = uri.id
    return query


def _find_one(session: pkcs11.Session, uri: Pkcs11Uri, object_class: ObjectClass, what: str) -> Any:
    found = list(session.get_objects(_object_query(uri, object_class)))
    if not found:
        raise KeyAccessError(KeyAccessCode.NO_SUCH_KEY, f"no {what} {uri.describe_key()} in the token")
    if len(found) > 1:
        raise KeyAccessError(
            KeyAccessCode.NO_SUCH_KEY, f"{len(found)} {what}s match the {uri.describe_key()}"
        )
    return found[0]


def _unwrap_point(point: bytes, size: int) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point; some tokens give it bare."""
    if len(point) == size + 2 and point[0] == 0x04 and point[1] == size:
        return point[2:]
    return point


def public_key_of(public_object: Any) -> PublicKey:
    """The :class:`PublicKey` of a token's public key object (Ed25519 or P-256).

    Raises:
        KeyAccessError: ``unsupported_mechanism``: another key type or curve.
    """
    if public_object[Attribute.KEY_TYPE] not in (KeyType.EC, KeyType.EC_EDWARDS):
        raise KeyAccessError(KeyAccessCode.UNSUPPORTED_MECHANISM, "the key is neither Ed25519 nor P-256")
    params = bytes(public_object[Attribute.EC_PARAMS])
    point = bytes(public_object[Attribute.EC_POINT])
    try:
        if params in _ED25519_PARAMS:
            return PublicKey(ed25519.Ed25519PublicKey.from_public_bytes(_unwrap_point(point, 32)))
        if params == _P256_OID:
            raw = _unwrap_point(point, 65)
            return PublicKey(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw))
    except (ValueError, MalformedError) as exc:
        raise KeyAccessError(
            KeyAccessCode.UNSUPPORTED_MECHANISM, "the token's public key is unreadable"
        ) from exc
    raise KeyAccessError(KeyAccessCode.UNSUPPORTED_MECHANISM, "the key is neither Ed25519 nor P-256")


def _jws_signature(alg: Alg, signature: bytes) -> bytes:
    if alg == "EdDSA" or len(signature) == 64:
        return signature
    # A token that returns DER despite PKCS#11 (which specifies r || s): convert.
    try:
        r, s = decode_dss_signature(signature)
    except ValueError as exc:
        raise KeyAccessError(
            KeyAccessCode.UNSUPPORTED_MECHANISM, "the token returned no ECDSA signature"
        ) from exc
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class Pkcs11Signer:
    """A :class:`~clearance.keys.Signer` whose private key stays in a PKCS#11 token.

    Construction finds the token and the key pair, logs in and makes one test
    signature that it verifies with the public half, so a key that cannot sign
    is refused at start-up, not at the first credential. Safe to share between
    threads: calls into the module are serialized (see :class:`Pkcs11Module`).
    """

    def __init__(self, uri: Pkcs11Uri | str, config: Pkcs11Config | None = None) -> None:
        """Open the key ``uri`` names.

        Raises:
            KeyAccessError: any :class:`~clearance.errors.KeyAccessCode`: a malformed URI,
                no module, no PIN, a wrong PIN, no such token or key, a URI whose
                attributes name different tokens, an unsupported key or mechanism.
        """
        self.uri = uri if isinstance(uri, Pkcs11Uri) else Pkcs11Uri.parse(uri)
        self._config = config or Pkcs11Config()
        self._module = Pkcs11Module.load(self._config.module_path(self.uri))
        self._pin = self._config.pin(self.uri)
        self._session: pkcs11.Session | None = None
        self._key: Any = None
        self._generation = -1
        with self._module.locked(self._config.session_timeout):
            self._open()
            assert self._session is not None
            try:
                public_object = _find_one(self._session, self.uri, ObjectClass.PUBLIC_KEY, "public key")
                self._public: PublicKey = public_key_of(public_object)
                mechanisms = self._session.token.slot.get_mechanisms()
            except p11.PKCS11Error as exc:
                raise _token_error(exc, "reading the public key") from exc
        self._mechanism: Mechanism = _MECHANISM[self._public.alg]
        if self._mechanism not in mechanisms:
            raise KeyAccessError(
                KeyAccessCode.UNSUPPORTED_MECHANISM,
                f"the token does not offer {self._mechanism.name} for {self._public.alg}",
            )
        probe = b"clearance pkcs11 self-test"
        try:
            self._public.verify(self.sign(probe), probe)
        except VerificationError as exc:
            raise KeyAccessError(
                KeyAccessCode.NO_SUCH_KEY, f"the private and public {self.uri.describe_key()} do not match"
            ) from exc

    @property
    def alg(self) -> Alg:
        return self._public.alg

    @property
    def kid(self) -> str:
        return self._public.thumbprint

    @property
    def public(self) -> PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` in the token.

        Raises:
            KeyAccessError: ``token_unavailable`` (gone, failed, or the module busy for
                longer than the configured timeout), ``no_such_token`` or ``no_such_key``
                after a reload, ``unsupported_mechanism``.
        """
        data = message if self._public.alg == "EdDSA" else hashlib.sha256(message).digest()
        with self._module.locked(self._config.session_timeout):
            if self._session is None or self._generation != self._module.generation:
                self._open()
            try:
                signature = self._key.sign(data, mechanism=self._mechanism)
            except p11.PKCS11Error as exc:
                self._drop_session()  # the next signature opens a fresh one
                raise _token_error(exc, f"signing with the {self.uri.describe_key()}") from exc
        return _jws_signature(self._public.alg, bytes(signature))

    def close(self) -> None:
        """Close this signer's session (the module and its login stay loaded).

        Raises:
            KeyAccessError: ``token_unavailable``: the module stayed busy.
        """
        with self._module.locked(self._config.session_timeout):
            self._drop_session()

    def _drop_session(self) -> None:
        if self._session is not None and self._generation == self._module.generation:
            _close_quietly(self._session)
        self._session, self._key = None, None

    def _open(self) -> None:
        """Open a session and find the private key (holding the module lock)."""
        self._drop_session()
        token = self._module.find_token(self.uri)
        generation = self._module.generation
        session = self._module.open_session(token, self._pin)
        try:
            key = _find_one(session, self.uri, ObjectClass.PRIVATE_KEY, "private key")
        except KeyAccessError:
            _close_quietly(session)
            raise
        except p11.PKCS11Error as exc:
            _close_quietly(session)
            raise _token_error(exc, f"finding the {self.uri.describe_key()}") from exc
        self._session, self._key, self._generation = session, key, generation

    def __repr__(self) -> str:
        return f"Pkcs11Signer({self.alg}, {self.kid}, {self.uri.describe_key()})"


def _close_quietly(session: pkcs11.Session) -> None:
    """Close a session that may already be dead (its token gone, its module reloaded)."""
    try:
        session.close()
    except p11.PKCS11Error:
        return


def generate_key_pair(
    uri: Pkcs11Uri | str, alg: Alg = "EdDSA", config: Pkcs11Config | None = None
) -> tuple[Pkcs11Uri, PublicKey]:
    """Generate a key pair in the token ``uri`` names, labelled and identified as ``uri`` says.

    The private key is made ``CKA_SENSITIVE`` and not extractable: it can sign
    and nothing else, and never leaves the token.

    Returns:
        The URI of the new key (with its ``id``) and its public key.

    Raises:
        KeyAccessError: as :class:`Pkcs11Signer`; ``unsupported_mechanism`` when the
            token cannot make this key type.
        ConflictError: a key with that label or id already exists in the token.
    """
    uri = uri if isinstance(uri, Pkcs11Uri) else Pkcs11Uri.parse(uri)
    config = config or Pkcs11Config()
    module = Pkcs11Module.load(config.module_path(uri))
    pin = config.pin(uri)
    key_id = uri.id if uri.id is not None else os.urandom(8)
    label = uri.object if uri.object is not None else key_id.hex()
    with module.locked(config.session_timeout):
        token = module.find_token(uri)
        new_uri = Pkcs11Uri(
            token=token.label,
            serial=_serial(token),
            object=label,
            id=key_id,
            module_path=uri.module_path,
            pin_source=uri.pin_source,
        )
        session = module.open_session(token, pin, rw=True)
        try:
            for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                for attribute, value in ((Attribute.LABEL, label), (Attribute.ID, key_id)):
                    if list(session.get_objects({Attribute.CLASS: object_class, attribute: value})):
                        raise ConflictError(
                            f"token {token.label!r} already holds a key labelled {label!r} or with that id"
                        )
            key_type, params = (
                (KeyType.EC_EDWARDS, _ED25519_PARAMS[0]) if alg == "EdDSA" else (KeyType.EC, _P256_OID)
            )
            public, _private = session.generate_keypair(
                key_type,
                store=True,
                label=label,
                id=key_id,
                public_template={Attribute.EC_PARAMS: params, Attribute.VERIFY: True},
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                    Attribute.SIGN: True,
                },
            )
            return new_uri, public_key_of(public)
        except p11.PKCS11Error as exc:
            raise _token_error(exc, f"generating an {alg} key in token {token.label!r}") from exc
        finally:
            _close_quietly(session)
