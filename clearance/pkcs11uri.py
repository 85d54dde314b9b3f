"""RFC 7512 ``pkcs11:`` URIs: which token, which key, which module, where the PIN is.

Only what naming a signing key needs is accepted::

    pkcs11:token=Root%20CA;serial=3d37c7f025ad6990;object=root-1;id=%01%02;type=private
        ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin

Path attributes: ``token``, ``serial``, ``manufacturer``, ``model`` (which
token), ``object``, ``id`` (which key) and ``type`` (``private`` if present).
Query attributes: ``module-path`` and ``pin-source`` (a ``file:`` URI or a
path). ``pin-value`` is refused: a PIN never travels in a URI, which ends up
on command lines, in shell history and in configuration files. Any other
attribute is refused too, so a URI never means less than it says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from clearance.errors import KeyAccessCode, KeyAccessError

SCHEME = "pkcs11:"
MAX_URI_LENGTH = 4096
_PATH_ATTRIBUTES = frozenset({"token", "serial", "manufacturer", "model", "object", "id", "type"})
_QUERY_ATTRIBUTES = frozenset({"module-path", "pin-source"})
_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 7512 section 2.3: characters a value may hold without percent-encoding.
_PATH_SAFE = "-._~:[]@!$'()*+,=&"
_QUERY_SAFE = "-._~:[]@!$'()*+,=/?|"


def _malformed(detail: str) -> KeyAccessError:
    return KeyAccessError(KeyAccessCode.MALFORMED_URI, detail)


def _decode(value: str, name: str) -> bytes:
    if _PCT.search(value):
        raise _malformed(f"pkcs11 URI attribute {name!r} has a bad percent-encoding")
    return unquote_to_bytes(value)


def _text(value: str, name: str) -> str:
    try:
        return _decode(value, name).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed(f"pkcs11 URI attribute {name!r} is not UTF-8") from exc


def _split(part: str, separator: str, allowed: frozenset[str], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if not part:
        return out
    for item in part.split(separator):
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise _malformed(f"pkcs11 URI {where} attribute {item[:40]!r} is not name=value")
        if name == "pin-value":
            raise _malformed("a PIN must come from a file or an environment variable, never from the URI")
        if name not in allowed:
            raise _malformed(f"pkcs11 URI {where} attribute {name[:40]!r} is not supported")
        if name in out:
            raise _malformed(f"pkcs11 URI names {name!r} twice")
        out[name] = value
    return out


@dataclass(frozen=True, slots=True)
class Pkcs11Uri:
    """A parsed ``pkcs11:`` URI naming one private key in one token."""

    token: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    object: str | None = None
    id: bytes | None = None
    module_path: str | None = None
    pin_source: str | None = None

    def __post_init__(self) -> None:
        if self.token is None and self.serial is None:
            raise _malformed("a pkcs11 key URI must name its token (token= or serial=)")
        if self.object is None and self.id is None:
            raise _malformed("a pkcs11 key URI must name its key (object= or id=)")

    @classmethod
    def parse(cls, text: str) -> Pkcs11Uri:
        """Parse an RFC 7512 URI.

        Raises:
            KeyAccessError: ``malformed_uri``: not a ``pkcs11:`` URI, a bad
                encoding, an unsupported or repeated attribute, a PIN value,
                a type other than ``private``, or no token or key named.
        """
        if not isinstance(text, str) or not text.startswith(SCHEME):
            raise _malformed("not a pkcs11: URI")
        if len(text) > MAX_URI_LENGTH:
            raise _malformed("pkcs11 URI is too long")
        path, _, query = text[len(SCHEME) :].partition("?")
        attrs = _split(path, ";", _PATH_ATTRIBUTES, "path")
        params = _split(query, "&", _QUERY_ATTRIBUTES, "query")
        if "type" in attrs and attrs["type"] != "private":
            raise _malformed(
                f"pkcs11 URI names a {attrs['type'][:20]!r} object; a signing key is type=private"
            )

        def text_attr(name: str, source: dict[str, str]) -> str | None:
            return _text(source[name], name) if name in source else None

        key_id = _decode(attrs["id"], "id") if "id" in attrs else None
        if key_id is not None and not key_id:
            raise _malformed("pkcs11 URI id is empty")
        return cls(
            token=text_attr("token", attrs),
            serial=text_attr("serial", attrs),
            manufacturer=text_attr("manufacturer", attrs),
            model=text_attr("model", attrs),
            object=text_attr("object", attrs),
            id=key_id,
            module_path=text_attr("module-path", params),
            pin_source=text_attr("pin-source", params),
        )

    def __str__(self) -> str:
        path: list[str] = []
        for name, value in (
            ("token", self.token),
            ("serial", self.serial),
            ("manufacturer", self.manufacturer),
            ("model", self.model),
            ("object", self.object),
        ):
            if value is not None:
                path.append(f"{name}={quote(value, safe=_PATH_SAFE.replace('&', ''))}")
        if self.id is not None:
            path.append("id=" + "".join(f"%{b:02X}" for b in self.id))
        path.append("type=private")
        query = [
            f"{name}={quote(value, safe=_QUERY_SAFE.replace('?', ''))}"
            for name, value in (("module-path", self.module_path), ("pin-source", self.pin_source))
            if value is not None
        ]
        return SCHEME + ";".join(path) + ("?" + "&".join(query) if query else "")

    def describe_token(self) -> str:
        """The token as a person would name it in a message."""
        parts = [f"label {self.token!r}"] if self.token is not None else []
        if self.serial is not None:
            parts.append(f"serial {self.serial}")
        return "token with " + " and ".join(parts)

    def describe_key(self) -> str:
        """The key as a person would name it in a message."""
        parts = [f"label {self.object!r}"] if self.object is not None else []
        if self.id is not None:
            parts.append(f"id {self.id.hex()}")
        return "key with " + " and ".join(parts)


def is_pkcs11_uri(text: str) -> bool:
    """Whether ``text`` names a key in a token rather than a key file."""
    return text.startswith(SCHEME)
