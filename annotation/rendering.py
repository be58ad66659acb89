"""Untrusted text (prompts, model outputs) as the crowd sees it.

The judge reads the raw text, so a worker must be able to read every character of it too:
raw HTML is shown as written (escaped), never interpreted and never dropped; only Markdown
markup (CommonMark plus tables and strikethrough) changes how text looks. CommonMark's parser
(markdown-it-py) runs in time linear in the input, which an adversarial answer cannot defeat.
Entity references are left as written (`&amp;` reads "&amp;", as the judge sees it), images
become links (no request leaves the worker's browser), and links keep only web and mail schemes;
any other link stays as its literal text.
"""

from collections.abc import Sequence
from urllib.parse import urlsplit

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token

# Bump when the output below changes: stored renderings of an older version are redone.
RENDERER_VERSION = 2

MARKDOWN = "markdown"
PLAIN = "plain"

LINK_SCHEMES = {"http", "https", "mailto"}
LINK_ATTRIBUTES = {"rel": "noopener noreferrer nofollow", "target": "_blank"}


def _link_allowed(url: str) -> bool:
    try:
        return urlsplit(url.strip()).scheme.lower() in LINK_SCHEMES
    except ValueError:
        return False


def _link_open(self: RendererHTML, tokens: Sequence[Token], idx: int, options, env) -> str:
    for name, value in LINK_ATTRIBUTES.items():
        tokens[idx].attrSet(name, value)
    return self.renderToken(tokens, idx, options, env)


# With `html` off, markdown-it escapes every character of text and raw HTML it outputs, and
# emits only its own elements, so no sanitiser runs after it (nh3, tried first, takes time
# quadratic in the number of entities in a long answer).
_markdown = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    .enable(["table", "strikethrough"])
    .disable(["entity", "image"])
)
_markdown.validateLink = _link_allowed  # type: ignore[method-assign]
_markdown.add_render_rule("link_open", _link_open)


def render_markdown(text: str) -> str:
    return _markdown.render(text)


def render_plain(text: str) -> str:
    """The text exactly as written, whitespace kept (the page styles `.plain-text`)."""
    return f'<div class="plain-text">{escape(text)}</div>'


def render(text: str, text_format: str) -> SafeString:
    html = render_plain(text) if text_format == PLAIN else render_markdown(text)
    # Safe: markdown-it escapes all text and raw HTML and links only LINK_SCHEMES; plain text
    # is escaped whole.
    return mark_safe(html)
