"""ANSI SGR -> escaped HTML (devops.logs.ansi): colours, state across lines, and safety."""
from __future__ import annotations

import html
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from devops.logs.ansi import PLAIN, SgrState, render_line, strip

# The only markup the renderer may write.
OUR_TAG = re.compile(r'<span(?: class="[a-z0-9 -]+")?(?: style="[a-z-]+:#[0-9a-f]{6}(?:;[a-z-]+:#[0-9a-f]{6})?")?>|</span>')

ESCAPES = st.sampled_from(["\x1b[31m", "\x1b[1;4m", "\x1b[0m", "\x1b[38;5;208m", "\x1b[48;2;1;2;3m", "\x1b[m",
                           "\x1b[0K", "\x1b]0;title\x07", "\x1b[2J", "\x1b", "\x1b[", "\r", "\x1b[38;5m",
                           "\x1b[38;2;999;-1;5m", '"', "'", "<", ">", "&", "<script>", "</span>"])
LINE = st.lists(st.one_of(st.text(max_size=12), ESCAPES), max_size=20).map("".join)


def test_the_16_colours_bold_and_underline_are_classes():
    out, state = render_line("\x1b[1;31mred bold\x1b[0m plain \x1b[4;92mgreen\x1b[24m")
    assert '<span class="a-f1 a-bold">red bold</span>' in out
    assert '<span class="a-f10 a-ul">green</span>' in out
    assert state == SgrState(fg=10)


def test_256_and_truecolour_are_inline_colours_built_from_numbers():
    out, _ = render_line("\x1b[38;5;208mo\x1b[48;2;10;20;300mb\x1b[38;5;3mx")
    assert '<span style="color:#ff8700">o</span>' in out
    assert 'style="color:#ff8700;background-color:#0a14ff"' in out  # 300 is clamped to 255
    assert '<span class="a-f3" style="background-color:#0a14ff">x</span>' in out


def test_state_carries_across_lines_and_through_the_token():
    _, state = render_line("\x1b[33;1mstarts yellow")
    token = state.encode()
    out, _ = render_line("still yellow\x1b[0m done", SgrState.decode(token))
    assert out == '<span class="a-f3 a-bold">still yellow</span> done'
    assert SgrState.decode("garbage<>") == PLAIN and PLAIN.encode() == ""
    rgb = SgrState(fg="#0a0b0c", bg=4, underline=True)
    assert SgrState.decode(rgb.encode()) == rgb


def test_a_script_tag_in_a_line_is_text():
    out, _ = render_line('\x1b[31m<script>alert(1)</script>\x1b[0m <img src=x onerror="alert(2)">')
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "&quot;alert(2)&quot;" in out


def test_other_escapes_are_dropped_and_a_carriage_return_keeps_the_last_rewrite():
    assert render_line("\x1b]0;title\x07a\x1b[2Kb\x1b[0Kc")[0] == "abc"
    assert render_line("10%\r50%\r100%\r")[0] == "100%"
    assert strip("\x1b[1mbold\x1b[0m\r") == "bold"


@settings(max_examples=400, deadline=None)
@given(LINE, st.sampled_from([PLAIN, SgrState(fg=1, bold=True), SgrState(fg="#010203", bg=200 % 16)]))
def test_every_byte_is_escaped_and_only_our_spans_are_markup(text, state):
    out, after = render_line(text, state)
    outside = OUR_TAG.sub("", out)
    # No markup of the log's own survives: every <, >, " and ' is an entity now.
    assert not re.search(r"[<>\"']", outside), out
    # And nothing is lost: unescaping gives exactly the visible text.
    assert html.unescape(outside) == strip(text)
    # Spans balance, so a line never leaks its colour into the page.
    assert out.count("<span") == out.count("</span>")
    assert SgrState.decode(after.encode()) == after
