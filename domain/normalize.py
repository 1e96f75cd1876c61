"""Text normalisation against common evasions, applied before screening.

``normalize`` is pure and cheap (no I/O, stdlib only). It undoes the tricks people use to slip abuse
past a classifier while leaving ordinary text readable:

* Unicode NFKC (fullwidth ``ｆｕｃｋ`` -> ``fuck``, mathematical letters ``𝐟𝐮𝐜𝐤``, ligatures,
  compatibility forms);
* invisible characters removed (zero-width spaces/joiners, soft hyphens, BOM, and every bidi control:
  embeddings, overrides, isolates, LRM/RLM/ALM);
* combining marks stacked on Latin letters removed ("zalgo" text, ``f̸u̸c̸k``), and on Cyrillic/Greek
  look-alikes when they are used as Latin (``ѕ̸һ̸і̸t``);
* Cyrillic/Greek/Armenian look-alikes mapped to Latin, but only in words that already mix in Latin
  letters or consist solely of look-alikes, so genuine Russian, Greek or Armenian text is left alone;
* letters spelled out with separators joined: ``f u c k``, ``f.u.c.k``, ``f-u-c-k`` -> ``fuck``
  (runs of at least three single letters, with one consistent separator);
* leetspeak inside words (``sh1t``, ``b!tch``, ``f@g``, ``$hit``, ``n00b``) mapped to letters; numbers,
  ordinals and units (``2020``, ``3rd``, ``10pm``, ``covid19``) and @mentions are left alone;
* a letter repeated more than twice collapsed to two (``fuuuuck`` -> ``fuuck``).

Case is preserved; the screening tokenizer lower-cases anyway.

``normalize`` gives the *logical* reading (the characters in the order they were typed). A
right-to-left override makes a reader see a run of Latin text reversed, so
"\u202eereh uoy stnaw ydobon\u202c" is typed backwards and displayed as "nobody wants you here";
``readings`` returns that displayed order as well (``visual_reading``), and screening scores both.

``skeleton`` folds text for *matching* (prompt delimiters): invisibles and every combining mark
dropped, compatibility forms, look-alike letters and look-alike angle brackets folded to ASCII, with
the position each folded character came from, so a match can be replaced in the original text.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["has_bidi_override", "normalize", "readings", "skeleton", "visual_reading"]

# Characters that render as nothing (or nearly) and are used to split words invisibly.
_INVISIBLE = dict.fromkeys(
    [
        0x00AD,  # soft hyphen
        0x034F,  # combining grapheme joiner
        0x061C,  # arabic letter mark
        0x115F,
        0x1160,  # hangul fillers
        0x17B4,
        0x17B5,
        0x180E,  # mongolian vowel separator
        0x200B,
        0x200C,
        0x200D,
        0x200E,
        0x200F,  # zero-width space/non-joiner/joiner, LRM, RLM
        0x202A,
        0x202B,
        0x202C,
        0x202D,
        0x202E,  # bidi embeddings/overrides
        0x2060,
        0x2061,
        0x2062,
        0x2063,
        0x2064,  # word joiner, invisible operators
        0x2066,
        0x2067,
        0x2068,
        0x2069,  # bidi isolates
        0x206A,
        0x206B,
        0x206C,
        0x206D,
        0x206E,
        0x206F,
        0x3164,  # hangul filler
        0xFEFF,  # BOM / zero-width no-break space
        0xFFA0,  # halfwidth hangul filler
        0xFFF9,
        0xFFFA,
        0xFFFB,
    ]
    + list(range(0xFE00, 0xFE10))  # variation selectors
    + list(range(0xE0000, 0xE0080)),  # tag characters
    None,
)

# Cyrillic and Greek letters that look like Latin ones (after NFKC).
_HOMOGLYPHS: dict[str, str] = {
    # Cyrillic lower
    "а": "a", "в": "b", "с": "c", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t",
    "у": "y", "х": "x", "ԝ": "w", "ѡ": "w", "ь": "b", "ү": "y", "ӏ": "l",
    # Cyrillic upper
    "А": "A", "В": "B", "С": "C", "Е": "E", "Ё": "E", "Н": "H", "І": "I", "Ї": "I", "Ј": "J",
    "К": "K", "М": "M", "О": "O", "Р": "P", "Ѕ": "S", "Т": "T", "Х": "X", "У": "Y", "Ү": "Y",
    "Ԝ": "W", "Ӏ": "I", "Ь": "b",
    # Greek lower
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w", "ϲ": "c", "ϳ": "j", "μ": "u",
    # Greek upper
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
    # Other look-alikes that survive NFKC
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ʏ": "y", "ᴀ": "A", "ʙ": "B", "ᴄ": "C", "ᴅ": "D",
    "ᴇ": "E", "ɢ": "G", "ʜ": "H", "ɪ": "I", "ᴊ": "J", "ᴋ": "K", "ʟ": "L", "ᴍ": "M", "ɴ": "N",
    "ᴏ": "O", "ᴘ": "P", "ʀ": "R", "ꜱ": "S", "ᴛ": "T", "ᴜ": "U", "ᴠ": "V", "ᴡ": "W", "ᴢ": "Z",
    # More Cyrillic, and Armenian letters that read as Latin ones
    "ԁ": "d", "ɩ": "i", "Ԍ": "G", "Ԁ": "D",
    "օ": "o", "ս": "u", "ո": "n", "հ": "h", "ց": "g", "զ": "q", "ա": "w", "Տ": "S", "Օ": "O",
}  # fmt: skip
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)
# Look-alikes that NFKC would turn into something that no longer looks Latin (lunate sigma -> sigma):
# mapped before NFKC.
_BEFORE_NFKC = str.maketrans({c: latin for c, latin in _HOMOGLYPHS.items() if unicodedata.normalize("NFKC", c) != c})

# Leetspeak substitutions, applied only inside words.
_LEET: dict[str, str] = {
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
    "@": "a", "$": "s", "!": "i", "|": "l", "+": "t",
}  # fmt: skip
_LEET_TABLE = str.maketrans(_LEET)
_LEET_CHARS = re.escape("".join(_LEET))

# A word-ish token: letters, digits and leet symbols (apostrophes split it; that is fine).
_WORDISH = re.compile(rf"[A-Za-z{_LEET_CHARS}]+")
_HAS_LETTER2 = re.compile(r"[A-Za-z].*[A-Za-z]", re.S)
# Tokens that are ordinary number+unit or name+number forms, not leetspeak.
_NUM_UNIT = re.compile(
    r"\d+(?:st|nd|rd|th|s|k|m|b|am|pm|x|d|h|hr|hrs|min|mins|g|gb|mb|kb|tb|kg|km|cm|mm|ml|yo|yr|yrs|"
    r"ft|lb|lbs|mph|kmh|ish|p|fps|hz|ghz|v|w|kw|mg)",
    re.I,
)
_NAME_NUM = re.compile(r"[A-Za-z]+\d+")

# Runs of >= 3 single letters separated by one consistent separator: "f u c k", "f.u.c.k".
_SPACED = re.compile(r"(?<![A-Za-z0-9])([A-Za-z])(?P<sep>[ .\-_*,~+/|•·]+)[A-Za-z](?:(?P=sep)[A-Za-z])+(?![A-Za-z0-9])")
_REPEAT = re.compile(r"([^\W\d_])\1{2,}")
_TOKEN = re.compile(r"\S+")


def _is_mark(ch: str) -> bool:
    return bool(unicodedata.combining(ch)) or unicodedata.category(ch) in ("Mn", "Me")


def _strip_marks_on_latin(text: str, *, lookalikes: bool = False) -> str:
    """Remove combining marks that sit on Latin letters (zalgo, accents); keep them elsewhere.

    ``lookalikes``: also on the Cyrillic/Greek/Armenian letters that have a Latin twin (used on words
    that are about to be mapped to Latin)."""
    if text.isascii():
        return text
    out: list[str] = []
    base_is_latin = False
    for ch in unicodedata.normalize("NFD", text):
        if _is_mark(ch):
            if base_is_latin:
                continue
        else:
            base_is_latin = (ch.isascii() and (ch.isalpha() or ch in _LEET)) or (lookalikes and ch in _HOMOGLYPHS)
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _is_cyr_greek(ch: str) -> bool:
    # Greek, Cyrillic (and supplement), Armenian; Greek extended.
    return "\u0370" <= ch <= "\u058f" or "\u1f00" <= ch <= "\u1fff"


def _map_homoglyphs(text: str) -> str:
    if text.isascii():
        return text

    # A message with Cyrillic/Greek letters that have no Latin twin is genuine Cyrillic/Greek text:
    # then only words that mix scripts are mapped. Otherwise every all-look-alike word is mapped too.
    # Decomposed first, so a look-alike carrying a mark ("у" + breve = "ў") is still a look-alike.
    genuine = any(c.isalpha() and not c.isascii() and c not in _HOMOGLYPHS and _is_cyr_greek(c)
                  for c in unicodedata.normalize("NFD", text))

    def fix(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok.isascii():
            return tok
        bare = _strip_marks_on_latin(tok, lookalikes=True)
        mapped = bare.translate(_HOMOGLYPH_TABLE)
        if mapped == bare:
            return tok
        letters = [c for c in bare if c.isalpha()]
        mixed = any(c.isascii() or unicodedata.name(c, "").startswith("LATIN") for c in letters)
        all_confusable = all(c.isascii() or c in _HOMOGLYPHS for c in letters)
        return mapped if (mixed or (all_confusable and not genuine)) else tok

    return _TOKEN.sub(fix, text)


def _join_spaced(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        letters = re.sub(r"[^A-Za-z]", "", m.group(0))
        sep = m.group("sep")
        # "you are a b i t c h": a leading one-letter word ("a", "I") stays a word of its own.
        if sep.isspace() and len(letters) >= 4 and letters[0] in "aAI":
            return letters[0] + sep + letters[1:]
        return letters

    return _SPACED.sub(fix, text)


def _unleet(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok.isalpha():
            return tok
        # Keep leading '@' (mentions) and trailing punctuation-like leet symbols as they are.
        start = 0
        while start < len(tok) and tok[start] in "@!|+":
            start += 1
        end = len(tok)
        while end > start and tok[end - 1] in "!|+$@":
            end -= 1
        core = tok[start:end]
        if not core or core.isalpha() or not _HAS_LETTER2.search(core):
            return tok
        if core.isalnum() and (_NUM_UNIT.fullmatch(core) or _NAME_NUM.fullmatch(core)):
            return tok
        return tok[:start] + core.translate(_LEET_TABLE) + tok[end:]

    return _WORDISH.sub(fix, text)


# ----------------------------------------------------------------------------- bidirectional overrides
_LRE, _RLE, _PDF, _LRO, _RLO = "\u202a", "\u202b", "\u202c", "\u202d", "\u202e"
_LRI, _RLI, _FSI, _PDI = "\u2066", "\u2067", "\u2068", "\u2069"
_OPENERS = {_LRE: (False, None), _RLE: (True, None), _LRO: (False, "L"), _RLO: (True, "R"),
            _LRI: (False, None), _RLI: (True, None), _FSI: (False, None)}
_ISOLATES = {_LRI, _RLI, _FSI}
_BIDI_MARKS = {"\u200e", "\u200f", "\u061c"}
_MAX_DEPTH = 125  # the Unicode bidi algorithm's max_depth


def has_bidi_override(text: str) -> bool:
    """True when ``text`` uses a directional override (LRO/RLO): then what a reader sees differs from
    the order the characters were typed in."""
    return _RLO in text or _LRO in text


def _visual_line(line: str) -> str:
    """One paragraph in display order: explicit levels (X1-X10, simplified), then rule L2's reversal.

    Overridden characters take the override's direction; others are placed by their strong type (L on
    an even level, R/AL on an odd one) and neutrals stay at the embedding level: exact for the
    evasion (Latin text inside an override), approximate for mixed right-to-left scripts.
    """
    stack: list[tuple[int, str | None, bool]] = [(0, None, False)]  # level, override, is isolate
    chars: list[str] = []
    levels: list[int] = []
    for ch in line:
        if ch in _OPENERS:
            rtl, override = _OPENERS[ch]
            level = stack[-1][0]
            new = (level + 1 if level % 2 == 0 else level + 2) if rtl else (level + 2 if level % 2 == 0 else level + 1)
            if new <= _MAX_DEPTH:
                stack.append((new, override, ch in _ISOLATES))
            continue
        if ch == _PDF:
            if len(stack) > 1 and not stack[-1][2]:
                stack.pop()
            continue
        if ch == _PDI:
            if any(iso for _, _, iso in stack[1:]):
                while len(stack) > 1 and not stack[-1][2]:
                    stack.pop()
                stack.pop()
            continue
        if ch in _BIDI_MARKS:
            continue
        level, override, _ = stack[-1]
        if override is None:
            kind = unicodedata.bidirectional(ch)
            if kind == "L" and level % 2:
                level += 1
            elif kind in ("R", "AL") and level % 2 == 0:
                level += 1
        chars.append(ch)
        levels.append(level)
    if not chars:
        return ""
    top = max(levels)
    lowest_odd = min((lv for lv in levels if lv % 2), default=top + 1)
    for lv in range(top, lowest_odd - 1, -1):
        i = 0
        while i < len(chars):
            if levels[i] >= lv:
                j = i
                while j < len(chars) and levels[j] >= lv:
                    j += 1
                chars[i:j] = chars[i:j][::-1]
                levels[i:j] = levels[i:j][::-1]
                i = j
            else:
                i += 1
    return "".join(chars)


def visual_reading(text: str) -> str:
    """``text`` in the order a reader sees it, bidi controls removed (each line is a paragraph)."""
    return "\n".join(_visual_line(line) for line in text.split("\n"))


def readings(text: str) -> list[str]:
    """The readings of ``text`` worth scoring: the typed (logical) one, and when a directional override
    is present also the displayed one. Score each and keep the highest: an override cannot hide abuse
    by making the typed order differ from the displayed one."""
    if not has_bidi_override(text):
        return [text]
    shown = visual_reading(text)
    return [text] if shown == text else [text, shown]


# ----------------------------------------------------------------------------- skeleton for matching
# Look-alikes that only matter for matching (never applied to the text that is scored).
_SKELETON_EXTRA: dict[str, str] = {
    # Cherokee capitals that read as Latin
    "Ꭺ": "A", "Ᏼ": "B", "Ꮯ": "C", "Ꭼ": "E", "Ꮐ": "G", "Ꮋ": "H", "Ꭵ": "i", "Ꮶ": "K", "Ꮇ": "M",
    "Ꮲ": "P", "Ꮪ": "S", "Ꭲ": "T", "Ꮃ": "W", "Ꮤ": "W",
    # angle brackets and their look-alikes (a double one counts once: French quotes stay quotes)
    "＜": "<", "＞": ">", "﹤": "<", "﹥": ">", "‹": "<", "›": ">", "«": "<", "»": ">",
    "\u2329": "<", "\u232a": ">", "\u3008": "<", "\u3009": ">", "《": "<", "》": ">", "⟨": "<", "⟩": ">",
    "⟪": "<", "⟫": ">", "≪": "<", "≫": ">",
    "˂": "<", "˃": ">", "ᐸ": "<", "ᐳ": ">", "❮": "<", "❯": ">", "❬": "<", "❭": ">", "⧼": "<", "⧽": ">",
    "⋘": "<<<", "⋙": ">>>", "⫷": "<<<", "⫸": ">>>",
    # low lines
    "‗": "_", "ˍ": "_", "＿": "_", "﹍": "_", "﹎": "_", "﹏": "_",
}  # fmt: skip


def _fold_char(ch: str) -> str:
    if ch in _SKELETON_EXTRA:
        return _SKELETON_EXTRA[ch]
    if ch in _HOMOGLYPHS:
        return _HOMOGLYPHS[ch]
    if ord(ch) in _INVISIBLE or unicodedata.category(ch) == "Cf" or _is_mark(ch):
        return ""
    out = []
    for c in unicodedata.normalize("NFKC", ch):
        if _is_mark(c) or ord(c) in _INVISIBLE:
            continue
        c = _SKELETON_EXTRA.get(c, c)
        out.append(_HOMOGLYPHS.get(c, c))
    return "".join(out)


def skeleton(text: str) -> tuple[str, list[int]]:
    """``text`` folded for matching, and for each folded character the index in ``text`` it came from.

    Every format character (bidi controls, zero-width, tags) and every combining mark is dropped;
    compatibility forms (fullwidth, mathematical, circled letters) become ASCII; Cyrillic, Greek,
    Armenian and Cherokee look-alikes become the Latin letter they imitate; angle-bracket and low-line
    look-alikes become ``<``, ``>`` and ``_``. Not for scoring: genuine non-Latin text is folded too.
    """
    folded: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        piece = ch if ch.isascii() else _fold_char(ch)
        folded.append(piece)
        index.extend([i] * len(piece))
    return "".join(folded), index


def normalize(text: str) -> str:
    """Return ``text`` with evasions undone (see module docstring). Never raises on any ``str``."""
    if not text:
        return ""
    t = unicodedata.normalize("NFKC", text.translate(_BEFORE_NFKC))
    t = t.translate(_INVISIBLE)
    t = _map_homoglyphs(t)
    t = _strip_marks_on_latin(t)
    t = _join_spaced(t)
    t = _unleet(t)
    t = _strip_marks_on_latin(t)  # leet digits turned into letters may carry marks too
    t = _REPEAT.sub(r"\1\1", t)
    return t
