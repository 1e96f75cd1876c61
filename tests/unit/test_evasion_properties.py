"""Property tests over generated evasions: what screening scores and what the prompt builder matches
cannot be changed by characters a reader does not see or by letters that only look Latin.

Each evasion is generated from a plain text: bidi controls and zero-width characters inserted anywhere,
combining marks stacked on letters (zalgo), letters swapped for confusables (Cyrillic, Greek,
Armenian, fullwidth, mathematical), and text reversed inside a right-to-left override.
"""

from __future__ import annotations

import re
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.normalize import _HOMOGLYPHS, normalize, readings, skeleton, visual_reading
from domain.prompts import CHAT_END, CHAT_START, DELIMITER_PLACEHOLDER, neutralize_delimiters

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
        "\u200e", "\u200f", "\u061c"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
MARKS = [chr(c) for c in range(0x0300, 0x0370)] + ["\u20d2", "\u20dd", "\u20e0", "\u0488"]

# For each Latin letter, characters that render like it: the normaliser's own look-alikes (an
# independent list would test a different table), fullwidth, mathematical bold / italic / script /
# double-struck / monospace, and circled letters.
_MATH_BASES = (0x1D41A, 0x1D44E, 0x1D4B6, 0x1D552, 0x1D68A)


def _confusables(letter: str) -> list[str]:
    out = [c for c, latin in _HOMOGLYPHS.items() if latin == letter]
    out.append(chr(ord(letter) - ord("a") + 0xFF41))
    for base in _MATH_BASES:
        c = chr(base + ord(letter) - ord("a"))
        if unicodedata.category(c) == "Ll" and unicodedata.normalize("NFKC", c) == letter:
            out.append(c)
    out.append(chr(0x24D0 + ord(letter) - ord("a")))  # circled
    return out


CONFUSABLES = {ch: _confusables(ch) for ch in "abcdefghijklmnopqrstuvwxyz"}

# Plain text: lower-case words and spaces (what the evasions are applied to).
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=9)
plain_texts = st.lists(words, min_size=1, max_size=8).map(" ".join)


@st.composite
def evaded(draw: st.DrawFn, text: str, *, swap: bool = True) -> str:
    """``text`` with invisible characters, combining marks and confusables applied at random."""
    out: list[str] = []
    for ch in text:
        if ch.isalpha() and swap and draw(st.booleans()):
            ch = draw(st.sampled_from(CONFUSABLES[ch]))
        out.append(ch)
        if ch.strip() and draw(st.integers(0, 3)) == 0:
            out.extend(draw(st.lists(st.sampled_from(MARKS), min_size=1, max_size=4)))
        if draw(st.integers(0, 3)) == 0:
            out.extend(draw(st.lists(st.sampled_from(BIDI + ZERO_WIDTH), min_size=1, max_size=3)))
    return "".join(out)


@st.composite
def evasion_pairs(draw: st.DrawFn) -> tuple[str, str]:
    text = draw(plain_texts)
    return text, draw(evaded(text))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evasion_pairs())
def test_evasions_normalise_to_the_plain_text(pair: tuple[str, str]) -> None:
    plain, evasion = pair
    assert normalize(evasion) == normalize(plain), (plain, evasion)


@settings(max_examples=200, deadline=None)
@given(plain_texts, st.sampled_from(["\u202e", "\u2067\u202e", "\u202b\u202e"]))
def test_text_reversed_inside_an_override_reads_as_displayed(text: str, opener: str) -> None:
    """Typed backwards inside RLO ... PDF, the text is displayed forwards: one reading is the plain text."""
    closer = "\u202c" * opener.count("\u202e") + "\u202c" * opener.count("\u202b") + "\u2069" * opener.count("\u2067")
    evasion = f"{opener}{text[::-1]}{closer}"
    assert normalize(visual_reading(evasion)) == normalize(text)
    assert normalize(text) in [normalize(r) for r in readings(evasion)]


@settings(max_examples=200, deadline=None)
@given(plain_texts, plain_texts, plain_texts)
def test_an_override_span_inside_a_sentence_reads_as_displayed(before: str, hidden: str, after: str) -> None:
    evasion = f"{before} \u202e{hidden[::-1]}\u202c {after}"
    assert visual_reading(evasion) == f"{before} {hidden} {after}"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60))
def test_text_without_overrides_has_one_reading(text: str) -> None:
    if "\u202d" not in text and "\u202e" not in text:
        assert readings(text) == [text]


# ------------------------------------------------------------------------------- delimiter neutraliser
_FOLDED_DELIMITER = re.compile(r"chat[\s_\-.]*_[\s_\-.]*message|[<>](?:[ \t]*[<>]){2,}", re.IGNORECASE)


def _independent_fold(text: str) -> str:
    """A second, simpler folding (not the module's): NFKC, drop format characters and marks, map the
    generator's confusables back. What a model reading the prompt could still take for a delimiter."""
    back = {c: latin for latin, cs in CONFUSABLES.items() for c in cs}
    back.update({c.upper(): latin.upper() for latin, cs in CONFUSABLES.items() for c in cs if c.upper() != c})
    out = []
    for ch in unicodedata.normalize("NFKC", "".join(back.get(c, c) for c in text)):
        if unicodedata.category(ch) in ("Cf", "Mn", "Me"):
            continue
        out.append(back.get(ch, ch))
    return "".join(out)


ANGLE_LOOKALIKES = {"<": ["<", "\uff1c", "\ufe64", "\u2039", "\u2329", "\u3008", "\u27e8", "\u02c2", "\u276e"],
                    ">": [">", "\uff1e", "\ufe65", "\u203a", "\u232a", "\u3009", "\u27e9", "\u02c3", "\u276f"]}


@st.composite
def evaded_delimiter(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from([CHAT_START, CHAT_END, "CHAT_MESSAGE", "END_CHAT_MESSAGE>>>", "<<<"]))
    out: list[str] = []
    for ch in base:
        if ch in ANGLE_LOOKALIKES:
            out.append(draw(st.sampled_from(ANGLE_LOOKALIKES[ch])))
        elif ch.isalpha():
            low = ch.lower()
            choice = draw(st.integers(0, 3))
            out.append(ch if choice == 0 else low if choice == 1 else draw(st.sampled_from(CONFUSABLES[low])))
            if draw(st.integers(0, 3)) == 0:
                out.extend(draw(st.lists(st.sampled_from(MARKS), min_size=1, max_size=3)))
        else:
            out.append(ch)
        if draw(st.integers(0, 2)) == 0:
            out.extend(draw(st.lists(st.sampled_from(BIDI + ZERO_WIDTH + [" "]), min_size=1, max_size=3)))
    return "".join(out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain_texts, evaded_delimiter(), plain_texts)
def test_the_delimiter_neutraliser_cannot_be_bypassed(before: str, delimiter: str, after: str) -> None:
    out = neutralize_delimiters(f"{before} {delimiter} {after}")
    assert DELIMITER_PLACEHOLDER in out, repr(delimiter)
    assert not _FOLDED_DELIMITER.search(_independent_fold(out)), (repr(delimiter), repr(out))
    assert not _FOLDED_DELIMITER.search(skeleton(out)[0]), (repr(delimiter), repr(out))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80))
def test_text_with_no_delimiter_look_alike_passes_unchanged(text: str) -> None:
    if not _FOLDED_DELIMITER.search(skeleton(text)[0]) and "chat" not in skeleton(text)[0].lower():
        assert neutralize_delimiters(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80))
def test_skeleton_maps_every_folded_character_to_its_source(text: str) -> None:
    folded, index = skeleton(text)
    assert len(folded) == len(index)
    assert index == sorted(index) and all(0 <= i < len(text) for i in index)
    assert _FOLDED_DELIMITER.search(skeleton(neutralize_delimiters(text))[0]) is None
