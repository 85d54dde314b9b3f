"""Typed clients of the registry's v1 API, for the CLI, tools, nodes, partner registries and tests.

:class:`RegistryClient` holds one attribute per service
(``organizations``, ``staff``, ``personnel``, ``assessments``,
``credentials``, ``publication``, ``enrollment``, ``audit``,
``federation``), each with one method per RPC. Methods take typed arguments
and return frozen dataclasses of this package, never protobuf messages.
Failures are mapped once, by :class:`~clearance.client.interceptor.ErrorMapping`:
no caller catches :class:`grpc.RpcError`.
"""

from clearance.client.registry import RegistryClient

__all__ = ["RegistryClient"]
