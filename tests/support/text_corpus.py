"""Answers that break naive rendering, with the text a reader must see (whitespace aside).

The judge reads each source as written; a crowd worker must be able to read the same
characters, with only Markdown markup (backticks, asterisks, fences, table pipes...) gone.
"""

# (source, visible text)
CORPUS: list[tuple[str, str]] = [
    (
        "In C++: `std::vector<int> v;` and `template<typename T> T max(T a, T b);` are both fine.",
        "In C++: std::vector<int> v; and template<typename T> T max(T a, T b); are both fine.",
    ),
    (
        "In C++: std::vector<int> v; and template<typename T> T max(T a, T b); are both fine.",
        "In C++: std::vector<int> v; and template<typename T> T max(T a, T b); are both fine.",
    ),
    ("Press <Ctrl>+<C> to copy", "Press <Ctrl>+<C> to copy"),
    ("Wrap the text in a <div> tag", "Wrap the text in a <div> tag"),
    (
        "<script>alert('x')</script> and <style>body{display:none}</style> stay visible",
        "<script>alert('x')</script> and <style>body{display:none}</style> stay visible",
    ),
    (
        "Entities: &amp; &lt;b&gt; &#x41; &nbsp; &copy",
        "Entities: &amp; &lt;b&gt; &#x41; &nbsp; &copy",
    ),
    ("if a < b && b > c then <", "if a < b && b > c then <"),
    (
        "<!-- a comment --> and <?php echo 1; ?> and <![CDATA[x]]> and <!DOCTYPE html>",
        "<!-- a comment --> and <?php echo 1; ?> and <![CDATA[x]]> and <!DOCTYPE html>",
    ),
    (
        '<a href="https://example.org">x</a> <img src=x onerror=alert(1)>',
        '<a href="https://example.org">x</a> <img src=x onerror=alert(1)>',
    ),
    ("**bold** and *em* and ~~struck~~", "bold and em and struck"),
    (
        "Unbalanced **bold and *em and `code and [link",
        "Unbalanced **bold and *em and `code and [link",
    ),
    (
        '```html\n<div class="x">\n  <p>hi</p>\n</div>\n```',
        '<div class="x"> <p>hi</p> </div>',
    ),
    ("```\nnever closed <b>\n\nstill code", "never closed <b> still code"),
    ("- item <one>\n- item <two>\n\n1. first <1>", "item <one> item <two> first <1>"),
    ("| a<b | c |\n|---|---|\n| <i>1</i> | 2 |", "a<b c <i>1</i> 2"),
    (
        "[safe](https://example.org/?a=<b>) and [bad](javascript:alert(1)) and ![pic](http://x/p.png)",
        "safe and [bad](javascript:alert(1)) and !pic",
    ),
    ("# Heading <h1>\n\n> quote <q>", "Heading <h1> quote <q>"),
    ("\\<escaped\\> \\*stars\\*", "<escaped> *stars*"),
    ("Line one\nline two  \nline three", "Line one line two line three"),
    ("[" * 50 + "x" + "]" * 50, "[" * 50 + "x" + "]" * 50),
    ("</p></div></body> closing tags first", "</p></div></body> closing tags first"),
]
