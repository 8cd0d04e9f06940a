import functools
import hashlib
import threading

import markdown as md
import nh3
from django import template
from django.core.cache import cache
from django.utils.safestring import mark_safe

register = template.Library()

# Part of the cache key of rendered texts: change it when the rendering changes.
RENDERING = "1"
CACHE_SECONDS = 7 * 24 * 3600
_local = threading.local()  # a Markdown converter is reusable, but not across threads


class _RawHtmlAsText(md.Extension):
    """Show HTML written in the text as text: model output is untrusted, and even harmless
    tags would let a response restyle the page or differ from what a judge was shown."""

    def extendMarkdown(self, markdown):  # Python-Markdown names it so
        markdown.preprocessors.deregister("html_block")
        markdown.inlinePatterns.deregister("html")


@register.filter(name="markdown")
def render_markdown(text):
    """Markdown to HTML with raw HTML escaped, then sanitised by nh3 as a second guard."""
    return mark_safe(_html(text or ""))  # nh3 has removed anything unsafe


def render_uncached(text):
    """The same rendering, kept nowhere: for a preview typed by one person, not an item."""
    return mark_safe(_sanitised(text))  # nh3 has removed anything unsafe


@functools.lru_cache(maxsize=512)
def _html(text):
    """Rendering takes milliseconds and every item is shown to several annotators, so the
    HTML is kept in this process and in the shared cache, keyed by the text itself."""
    key = f"quorum:markdown:{RENDERING}:{hashlib.sha256(text.encode()).hexdigest()}"
    html = cache.get(key)
    if html is None:
        html = _sanitised(text)
        cache.set(key, html, CACHE_SECONDS)
    return html


def _sanitised(text):
    return nh3.clean(_converter().reset().convert(text))


def _converter():
    if not hasattr(_local, "markdown"):
        _local.markdown = md.Markdown(extensions=["fenced_code", "tables", _RawHtmlAsText()])
    return _local.markdown
