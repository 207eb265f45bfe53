"""Route matching by the path's segments, not by trying ~70 regexes in turn.

aiohttp's UrlDispatcher buckets resources by their literal prefix and tries a
bucket's resources one regex at a time; every org route lives in the one bucket
`/api/v1/orgs`, so a request near its end paid ~70 failed matches (a sixth of
the main thread's busy time on `GET …/issues/{n}`, docs/read-path.md).

`ShapeRouter` is that same dispatcher with a prefix tree of path segments in
front: literal segments are dict keys, a whole-segment `{var}` is one wildcard
child. The tree only picks candidates; each candidate is still resolved by
aiohttp itself (`resource.resolve`: its own regex and method table), in the
order aiohttp would have tried them, so the handler and the match values are
exactly aiohttp's. Anything the tree cannot vouch for — no candidate with the
method (404/405, trailing slashes, case variants), a resource whose pattern can
span segments (`{name:.+}`) in a bucket aiohttp would visit first, domain
sub-apps — goes to aiohttp's own `resolve`, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial, update_wrapper

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_exceptions import HTTPException
from aiohttp.web_urldispatcher import (
    AbstractResource,
    DynamicResource,
    MatchInfoError,
    PlainResource,
    UrlDispatcher,
    UrlMappingMatchInfo,
)

_ANY = DynamicResource.GOOD  # the regex of a plain `{var}`: one non-empty segment
#: Paths whose sorted candidate lists are remembered (a hot path is one dict lookup);
#: the cache is emptied when full, and long paths are never kept, so memory is bounded.
PATH_CACHE_SIZE = 2048
PATH_CACHE_MAX_LEN = 200


@dataclass(eq=False)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    var: _Node | None = None
    leaves: list[_Leaf] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class _Leaf:
    order: tuple[int, int]  # the order aiohttp would try it in: (-len(bucket key), position)
    resource: AbstractResource
    methods: frozenset[str]  # its routes' methods ("*" when it has an any-method route)
    defer: bool  # aiohttp would try a resource the tree does not hold before this one


def _segments(resource: AbstractResource) -> list[str | None] | None:
    """The resource's path as segments (None = one wildcard segment), or None when
    its pattern is not made of whole segments (e.g. `{name:.+}`)."""
    if isinstance(resource, PlainResource):
        return list(resource.canonical.split("/"))
    if not isinstance(resource, DynamicResource):
        return None
    pattern = resource.get_info()["pattern"].pattern
    if pattern.count("(?P<") != pattern.count(f">{_ANY})"):
        return None  # a custom regex: it may match across "/"
    parts: list[str | None] = []
    for part in resource.canonical.split("/"):
        if "{" not in part:
            parts.append(part)
        elif part.startswith("{") and part.endswith("}") and part.count("{") == 1:
            parts.append(None)
        else:
            return None  # a segment mixing text and a variable
    return parts


def _reach(key: str) -> str:
    """A bucket key as a prefix a request path has when aiohttp visits that bucket."""
    return "/" if key == "/" else key + "/"


class _FrontError(MatchInfoError):
    """A 404/405 whose handler (it raises the HTTP error) runs inside the front."""

    __slots__ = ("_front",)

    def __init__(self, http_exception: HTTPException, front: Middleware) -> None:
        super().__init__(http_exception)
        self._front = front

    @property
    def handler(self) -> Handler:
        return partial(self._front, handler=self._route.handler)


class ShapeRouter(UrlDispatcher):
    """UrlDispatcher whose `resolve` first walks a segment tree (built once, when the
    router is frozen). Installed with `install`; adds no state to the instance
    before its first frozen `resolve` but the front.

    With a `front` middleware (install's argument), every route's handler is wrapped
    in it when the router freezes, and so is a 404/405's: the app then needs no aiohttp
    middleware at all, and aiohttp skips its middleware machinery (the chain builder
    and its own `current_app` layer, ~1-2 µs a request, docs/read-path.md)."""

    _shape_tree: _Node | None = None
    _plain_paths: dict[str, list[_Leaf]] | None = None
    _by_path: dict[str, list[_Leaf]] | None = None  # path -> its sorted candidates
    _front: Middleware | None = None

    def freeze(self) -> None:
        if not self.frozen and self._front is not None:
            for route in self.routes():
                handler: Handler = update_wrapper(
                    partial(self._front, handler=route.handler), route.handler
                )
                route._handler = handler  # type: ignore[assignment]
        super().freeze()

    async def resolve(self, request: web.Request) -> UrlMappingMatchInfo:
        match_info = await self._resolve(request)
        if self._front is not None and type(match_info) is MatchInfoError:
            return _FrontError(match_info.http_exception, self._front)
        return match_info

    async def _resolve(self, request: web.Request) -> UrlMappingMatchInfo:
        tree = self._shape_tree
        if tree is None:
            if not self.frozen or self._matched_sub_app_resources:
                return await super().resolve(request)
            tree = self._shape_tree = self._build()
        path = request.rel_url.path_safe
        by_path = self._by_path
        assert by_path is not None
        found = by_path.get(path)
        if found is None:
            # A plain path's bucket is the whole path: aiohttp tries those first, so a
            # literal route (health, auth, users/me) is one dict lookup, as in aiohttp.
            found = self._plain_paths.get(path) if self._plain_paths else None
            if found is None:
                found = _candidates(tree, path.split("/"))
            if len(found) > 1:
                found.sort(key=_order)
            if len(path) <= PATH_CACHE_MAX_LEN:
                if len(by_path) >= PATH_CACHE_SIZE:
                    by_path.clear()
                by_path[path] = found
        method = request.method
        for leaf in found:
            if leaf.defer:
                break
            if method not in leaf.methods and "*" not in leaf.methods:
                continue  # aiohttp would only note its allowed methods (a 405 goes below)
            match_info, _ = await leaf.resource.resolve(request)
            if match_info is not None:
                return match_info
        return await super().resolve(request)  # 404, 405, or a case the tree defers

    def _build(self) -> _Node:
        root = _Node()
        self._plain_paths = {}
        self._by_path = {}
        keys = {id(r): self._get_resource_index_key(r) for r in self._resources}
        others = [(keys[id(r)], n) for n, r in enumerate(self._resources)
                  if _segments(r) is None]  # fmt: skip
        for n, resource in enumerate(self._resources):
            parts = _segments(resource)
            if parts is None:
                continue
            key = keys[id(resource)]
            # aiohttp walks buckets from the longest key down, in registration order
            # within one: a resource it cannot index here that could be tried first
            # (a longer bucket under this one, or the same bucket, earlier) defers.
            defer = any(
                (len(other) > len(key) and other.startswith(_reach(key)))
                or (other == key and m < n)
                for other, m in others
            )
            node = root
            for part in parts:
                if part is None:
                    node.var = node.var or _Node()
                    node = node.var
                else:
                    node = node.literal.setdefault(part, _Node())
            methods = frozenset(route.method for route in resource)
            leaf = _Leaf((-len(key), n), resource, methods, defer)
            node.leaves.append(leaf)
            if isinstance(resource, PlainResource):
                self._plain_paths.setdefault(resource.canonical, []).append(leaf)
        return root


def _order(leaf: _Leaf) -> tuple[int, int]:
    return leaf.order


def _candidates(root: _Node, parts: list[str]) -> list[_Leaf]:
    """Every resource whose segment shape fits `parts` (a superset: regexes decide)."""
    found: list[_Leaf] = []
    stack = [(root, 0)]
    last = len(parts)
    while stack:
        node, i = stack.pop()
        if i == last:
            found.extend(node.leaves)
            continue
        part = parts[i]
        child = node.literal.get(part)
        if child is not None:
            stack.append((child, i + 1))
        if node.var is not None and part:
            stack.append((node.var, i + 1))
    return found


def install(app: web.Application, front: Middleware | None = None) -> None:
    """Give `app` the segment-tree dispatcher, and `front` (if any) around every handler.
    The class is swapped in place because aiohttp deprecates passing a router to
    `Application` (the subclass adds no fields, so the instance stays a valid
    UrlDispatcher)."""
    router = app.router
    if type(router) is UrlDispatcher:
        router.__class__ = ShapeRouter
    if front is not None:
        assert isinstance(router, ShapeRouter)
        router._front = front
