"""Restricted Data Tokens (Tokens API 2021-03-01): what a restricted operation, such as getReportDocument of a
restricted report type, takes in place of the LWA access token.

A token names exact resources (method + path), so it is cached per selling partner and resource, process-wide in
the LWA token cache, until shortly before it expires. One createRestrictedDataToken call names up to 50 resources,
so documents fetched together are covered by one token per 50 (``RestrictedTokens.prefetch``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import operations as ops
from .auth import TOKEN_CACHE, TokenCache
from .responses import json_object, unexpected

if TYPE_CHECKING:
    from .api_caller import ApiCaller

MAX_RESOURCES = 50  # restrictedResources' maximum in the model
METHODS = ("GET", "PUT", "POST", "DELETE")
Resource = tuple[str, str]  # (HTTP method, path)


@dataclass(frozen=True, repr=False)
class RestrictedDataToken:
    """A minted token and the resources it names. ``repr()``/``str()`` never show the token."""

    token: str
    expires_in: float  # seconds, as Amazon said when it was minted
    resources: tuple[Resource, ...]

    def __repr__(self) -> str:
        return f"RestrictedDataToken(resources={self.resources!r}, expires_in={self.expires_in!r}, token='***')"

    __str__ = __repr__


def check_resources(resources: Iterable[Resource]) -> tuple[Resource, ...]:
    if isinstance(resources, (str, bytes)):
        raise TypeError("resources must be a list of (method, path) pairs")
    checked: list[Resource] = []
    for resource in resources:
        if not (isinstance(resource, (tuple, list)) and len(resource) == 2):
            raise TypeError(f"each resource must be a (method, path) pair, got {resource!r}")
        method, path = resource
        if method not in METHODS:
            raise ValueError(f"resource method must be one of {', '.join(METHODS)}, got {method!r}")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"resource path must be an absolute path such as /reports/..., got {path!r}")
        checked.append((method, path))
    if not 1 <= len(checked) <= MAX_RESOURCES:
        raise ValueError(f"createRestrictedDataToken takes 1 to {MAX_RESOURCES} resources, got {len(checked)}")
    return tuple(checked)


def document_resource(document_id: str) -> Resource:
    """getReportDocument of one document: Amazon accepts only this specific path, never ``{reportDocumentId}``."""
    return "GET", ops.GET_REPORT_DOCUMENT.resource_path({"reportDocumentId": document_id})


class RestrictedTokens:
    """The Restricted Data Tokens of one ``ApiCaller``'s selling partner."""

    def __init__(self, api: ApiCaller, cache: TokenCache = TOKEN_CACHE) -> None:
        self._api = api
        self.cache = cache

    def key(self, resource: Resource) -> Hashable:
        # The selling partner as the quota keys name it (endpoint, application, refresh token's sha256): a token
        # minted for one seller, region or application never serves another.
        api = self._api
        return ("restricted-data-token", api.endpoint, api.client_id, api.selling_partner, *resource)

    async def create(self, resources: Iterable[Resource]) -> RestrictedDataToken:
        """One createRestrictedDataToken call; the token is cached for each resource it names."""
        named = check_resources(resources)
        op = ops.CREATE_RESTRICTED_DATA_TOKEN
        body = {"restrictedResources": [{"method": method, "path": path} for method, path in named]}
        response = await self._api.call(op, json=body)
        answer = json_object(op, response)
        token, expires_in = answer.get("restrictedDataToken"), answer.get("expiresIn")
        if not isinstance(token, str) or not token:
            raise unexpected(op, response, "the response has no restrictedDataToken")
        if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or expires_in <= 0:
            raise unexpected(op, response, "the response has no usable expiresIn")
        for resource in named:
            self.cache.put(self.key(resource), token, float(expires_in))
        return RestrictedDataToken(token, float(expires_in), named)

    async def prefetch(self, resources: Iterable[Resource]) -> int:
        """Tokens for the resources no cached token names yet, 50 to a token; returns how many were minted."""
        missing = [r for r in dict.fromkeys(resources) if self.cache.get(self.key(r)) is None]
        for start in range(0, len(missing), MAX_RESOURCES):
            await self.create(missing[start : start + MAX_RESOURCES])
        return -(-len(missing) // MAX_RESOURCES)

    def source(self, resource: Resource) -> ResourceToken:
        """What ``ApiCaller.call(access_token=...)`` takes to call ``resource`` with a Restricted Data Token."""
        return ResourceToken(self, resource)


@dataclass(frozen=True)
class ResourceToken:
    """The cached token naming one resource, minted (once, however many callers wait) when there is none."""

    tokens: RestrictedTokens
    resource: Resource

    async def token(self) -> tuple[str, bool]:
        cache, key = self.tokens.cache, self.tokens.key(self.resource)
        token = cache.get(key)
        if token is not None:
            return token, True
        async with cache.lock(key):
            token = cache.get(key)  # whoever held the lock may have just minted it
            if token is not None:
                return token, True
            return (await self.tokens.create([self.resource])).token, False

    def invalidate(self, token: str) -> None:
        self.tokens.cache.invalidate(self.tokens.key(self.resource), token)
