"""Markdown to safe HTML: markdown-it-py (CommonMark, raw HTML off) then nh3 (ammonia).

Two layers on purpose: markdown-it never emits raw HTML from the source and refuses
`javascript:`/`vbscript:`/`data:` link targets; nh3 then keeps only an allow-list of
tags and attributes and the http/https/mailto URL schemes, so no script, no event
attribute and no unsafe URL can survive whatever the first layer lets through.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "img", "table", "thead", "tbody", "tr",
    "th", "td", "del",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}


def render_markdown(text: str) -> Markup:
    """Safe HTML for a user's markdown (descriptions, comments)."""
    html = _md.render(text or "")
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean)
