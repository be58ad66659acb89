"""Untrusted text as the crowd sees it: HTML shown as written, Markdown rendered, links limited."""

import pytest

from annotation.rendering import MARKDOWN, PLAIN, render, render_markdown
from tests.support.html_text import parsed
from tests.support.text_corpus import CORPUS


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(("source", "visible"), CORPUS)
def test_every_character_of_the_text_survives_apart_from_markdown_markup(source, visible):
    assert words("".join(parsed(render(source, MARKDOWN)).text)) == visible


@pytest.mark.parametrize(("source", "visible"), CORPUS)
def test_raw_html_never_becomes_an_element(source, visible):
    for tag, attrs in parsed(render(source, MARKDOWN)).tags:
        assert tag not in {"script", "style", "img", "iframe", "div", "i", "b"}
        assert not any(name.startswith("on") for name in attrs)


def test_markdown_still_renders_code_lists_tables_emphasis_and_safe_links():
    html = render_markdown(
        "*em* **strong**\n\n- one\n- two\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n"
        "```python\nx = 1\n```\n\n[site](https://example.org) [mail](mailto:a@example.org)"
    )
    tags = [tag for tag, _ in parsed(html).tags]
    for tag in ("em", "strong", "ul", "li", "table", "th", "td", "pre", "code", "a"):
        assert tag in tags
    assert '<code class="language-python">' in html
    assert 'href="https://example.org"' in html and 'href="mailto:a@example.org"' in html
    assert 'rel="noopener noreferrer nofollow"' in html and 'target="_blank"' in html


@pytest.mark.parametrize(
    "link",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](vbscript:msgbox)",
        "[x](data:text/html,<script>alert(1)</script>)",
        "[x](file:///etc/passwd)",
        "[x](/c/relative-link/)",
    ],
)
def test_links_with_other_schemes_stay_as_their_text(link):
    html = render_markdown(link)
    assert "<a" not in html
    assert words("".join(parsed(html).text)) == link


def test_images_become_links_so_nothing_loads_from_elsewhere():
    html = render_markdown("![a cat](https://example.org/cat.png)")
    assert "<img" not in html and 'href="https://example.org/cat.png"' in html


def test_plain_text_is_escaped_whole_with_its_whitespace():
    source = "  indented <b>bold?</b>\n\n\tand **not** markdown &amp;"
    html = render(source, PLAIN)
    assert html == (
        '<div class="plain-text">  indented &lt;b&gt;bold?&lt;/b&gt;\n\n'
        "\tand **not** markdown &amp;amp;</div>"
    )
    assert "".join(parsed(html).text) == source
