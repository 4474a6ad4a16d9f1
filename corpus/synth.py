"""Synthetic MT-artifact generator over clean English windows.

Every corruption records a character span and an artifact type. Windows hold several sentences, so
artifacts that cross a sentence boundary occur. Clean windows get "hard negative" rewrites
(abbreviations, initials, ellipses, short idiomatic sentences) so that a lowercase word after a full stop
or a short sentence alone is not evidence of MT garbling.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .records import CLEAN, FLUENCY, MAJOR, STRICT, Record, Span, check_span

WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
FUNCTION_WORDS = {
    "the", "a", "an", "of", "to", "in", "on", "at", "for", "with", "by", "from", "and", "that", "is", "are",
    "was", "were", "be", "has", "have", "it", "as", "this", "which", "will", "would", "can", "not",
}
AGREEMENT = {
    "is": "are", "are": "is", "was": "were", "were": "was", "has": "have", "have": "has", "does": "do",
    "do": "does", "a": "an", "an": "a", "this": "these", "these": "this", "that": "those", "those": "that",
    "its": "their", "their": "its", "he": "they", "they": "he", "him": "them", "much": "many", "many": "much",
}
MODALS = {"to", "will", "can", "would", "should", "must", "could", "may", "might"}
LITERAL_PHRASES = [
    "carry out the", "the relevant", "the aspect of", "in the process of", "to a certain extent",
    "for the purpose of", "make a", "the work of", "the masses of", "one piece of", "the situation of",
    "at the same time of", "the matter that", "further more", "vigorously",
]
FOREIGN = [
    "会议", "发展", "经济", "合作", "中方", "表示", "сотрудничество", "также", "однако", "Zusammenarbeit",
    "und", "aber", "avec", "cependant", "también", "durante", "kasama", "yang", "dan", "के", "và",
]
SHORT_SENTENCES = ["Period.", "Indeed.", "No.", "Really?", "Not at all.", "Thank you.", "Exactly.", "Yes.", "Why?"]
ABBREVIATIONS = [
    (r"\bUnited States\b", "U.S."), (r"\bfor example\b", "e.g."), (r"\band so on\b", "etc."),
    (r"\bSeptember (\d)", r"Sept. \1"), (r"\bNovember (\d)", r"Nov. \1"), (r"\bDoctor\b", "Dr."),
    (r"\bversus\b", "vs."), (r"\bnumber (\d)", r"No. \1"), (r"\bapproximately\b", "approx."),
    (r"\bUnited Kingdom\b", "U.K."), (r"\bMister\b", "Mr."), (r"\bthat is,", "i.e.,"),
]
HARD_PATTERN = re.compile(r"\b(?:[A-Z]\.){2,}|\b(?:Mr|Mrs|Ms|Dr|St|etc|vs|No|Inc|Corp|Co|Jr|Sr|Gen|Gov|Sen)\.|\.\.\.|…|[\"“”]|\b[A-Z]\. [A-Z]")


@dataclass
class SynthConfig:
    seed: int = 13
    n_windows: int = 20000
    p_corrupt: float = 0.5  # share of windows that receive artifacts (the mix ratio)
    p_two: float = 0.3  # share of corrupted windows with two artifacts
    p_hard_negative: float = 0.5  # share of clean windows rewritten with a hard-negative pattern
    min_sentences: int = 2
    max_sentences: int = 4
    max_chars: int = 600
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "stray_break": 2.0, "orphan_fragment": 2.0, "boundary_lowercase": 0.7, "run_on": 0.6,
            "mid_capital": 1.5, "word_swap": 1.5, "drop_function": 1.0, "double_word": 1.0,
            "agreement": 1.5, "literal": 0.8, "untranslated": 0.8, "space_punct": 1.0, "repeat_phrase": 1.0,
        }
    )


class Doc:
    """Mutable text with spans that shift along with edits."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.spans: list[Span] = []

    def free(self, start: int, end: int) -> bool:
        return all(end <= s.start or start >= s.end for s in self.spans)

    def edit(self, start: int, end: int, repl: str) -> None:
        delta = len(repl) - (end - start)
        self.text = self.text[:start] + repl + self.text[end:]
        for s in self.spans:
            if s.start >= end:
                s.start += delta
                s.end += delta
            elif s.end > start:
                raise AssertionError("edit overlaps an existing span")

    def add(self, start: int, end: int, artifact: str) -> None:
        self.spans.append(Span(start, end, MAJOR, FLUENCY, artifact=artifact))

    def words(self) -> list[tuple[int, int, str]]:
        return [(m.start(), m.end(), m.group()) for m in WORD.finditer(self.text)]


def _adjacent(doc: Doc, i: int, ws: list[tuple[int, int, str]]) -> bool:
    """Words i and i+1 separated by a single space only."""
    return i + 1 < len(ws) and doc.text[ws[i][1] : ws[i + 1][0]] == " "


def _sentence_ends(doc: Doc) -> list[int]:
    """Indices of '.', '!' or '?' that end a sentence followed by a space and a capital (or the end)."""
    return [m.start() for m in re.finditer(r"(?<![A-Z])(?<!\b[A-Z][a-z])[.!?](?= [A-Z\"“]|$)", doc.text)]


def stray_break(doc: Doc, rng: random.Random) -> bool:
    ws = doc.words()
    cand = [
        i for i in range(1, len(ws) - 2)
        if _adjacent(doc, i, ws) and ws[i + 1][2][0].islower() and doc.free(ws[i][0], ws[i + 1][1])
    ]
    if not cand:
        return False
    i = rng.choice(cand)
    a, b = ws[i], ws[i + 1]
    doc.edit(a[1], a[1], ".")
    doc.add(a[0], b[1] + 1, "stray_break")
    if rng.random() < 0.3 and i >= 2:  # "by Mentally challenged people. common sense."
        prev = ws[i - 1] if ws[i - 1][2][0].islower() else None
        if prev and len(prev[2]) > 2 and doc.free(prev[0], prev[1]) and doc.text[prev[1]:prev[1] + 1] == " ":
            doc.edit(prev[0], prev[0] + 1, prev[2][0].upper())
            doc.add(prev[0], prev[1], "mid_capital")
    return True


def orphan_fragment(doc: Doc, rng: random.Random) -> bool:
    ends = [e for e in _sentence_ends(doc) if doc.text[e] == "." and doc.free(max(0, e - 1), e + 1)]
    ws = [w for w in doc.words() if len(w[2]) > 3 and w[2].isalpha()]
    if not ends or not ws:
        return False
    e = rng.choice(ends)
    n = 1 if rng.random() < 0.7 else 2
    start_w = rng.randrange(len(ws))
    frag = " ".join(w[2] for w in ws[start_w : start_w + n]).lower()
    if rng.random() < 0.2:
        frag = frag[:1].upper() + frag[1:]
    prev = [w for w in doc.words() if w[1] <= e]
    if not prev or not doc.free(prev[-1][0], e + 1):
        return False
    doc.edit(e + 1, e + 1, f" {frag}.")
    doc.add(prev[-1][0], e + 2 + len(frag) + 1, "orphan_fragment")
    return True


def boundary_lowercase(doc: Doc, rng: random.Random) -> bool:
    ends = [e for e in _sentence_ends(doc) if e + 2 < len(doc.text) and doc.text[e + 2].isupper()]
    ws = doc.words()
    cand = []
    for e in ends:
        nxt = [w for w in ws if w[0] == e + 2]
        prv = [w for w in ws if w[1] <= e]
        if nxt and prv and nxt[0][2][1:].islower() and nxt[0][2] not in ("I",) and doc.free(prv[-1][0], nxt[0][1]):
            cand.append((prv[-1], nxt[0]))
    if not cand:
        return False
    p, n = rng.choice(cand)
    doc.edit(n[0], n[0] + 1, n[2][0].lower())
    doc.add(p[0], n[1], "boundary_lowercase")
    return True


def run_on(doc: Doc, rng: random.Random) -> bool:
    ends = [e for e in _sentence_ends(doc) if doc.text[e] == "." and e + 2 < len(doc.text)]
    ws = doc.words()
    cand = []
    for e in ends:
        nxt = [w for w in ws if w[0] == e + 2]
        prv = [w for w in ws if w[1] == e]
        if nxt and prv and nxt[0][2][1:].islower() and doc.free(prv[0][0], nxt[0][1]):
            cand.append((e, prv[0], nxt[0]))
    if not cand:
        return False
    e, p, n = rng.choice(cand)
    lower = rng.random() < 0.6
    doc.edit(n[0], n[0] + 1, n[2][0].lower() if lower else n[2][0])
    repl = "," if rng.random() < 0.4 else ""
    doc.edit(e, e + 1, repl)
    doc.add(p[0], n[1] + len(repl) - 1, "run_on")
    return True


def mid_capital(doc: Doc, rng: random.Random) -> bool:
    ws = doc.words()
    cand = [
        w for i, w in enumerate(ws)
        if i > 0 and w[2].islower() and len(w[2]) > 3 and doc.text[w[0] - 2 : w[0]] not in (". ", ": ")
        and doc.free(w[0], w[1])
    ]
    if not cand:
        return False
    w = rng.choice(cand)
    doc.edit(w[0], w[0] + 1, w[2][0].upper())
    doc.add(w[0], w[1], "mid_capital")
    return True


def word_swap(doc: Doc, rng: random.Random) -> bool:
    ws = doc.words()
    cand = [
        i for i in range(len(ws) - 1)
        if _adjacent(doc, i, ws) and ws[i][2].lower() != ws[i + 1][2].lower() and doc.free(ws[i][0], ws[i + 1][1])
        and not (i == 0 or doc.text[ws[i][0] - 2 : ws[i][0]] == ". ")
    ]
    if not cand:
        return False
    i = rng.choice(cand)
    a, b = ws[i], ws[i + 1]
    doc.edit(a[0], b[1], f"{b[2]} {a[2]}")
    doc.add(a[0], b[1], "word_swap")
    return True


def drop_function(doc: Doc, rng: random.Random) -> bool:
    ws = doc.words()
    cand = [
        i for i in range(1, len(ws) - 1)
        if ws[i][2].lower() in FUNCTION_WORDS and _adjacent(doc, i, ws) and _adjacent(doc, i - 1, ws)
        and doc.free(ws[i - 1][0], ws[i + 1][1])
    ]
    if not cand:
        return False
    i = rng.choice(cand)
    doc.edit(ws[i][0], ws[i + 1][0], "")
    doc.add(ws[i - 1][0], ws[i + 1][1] - (ws[i + 1][0] - ws[i][0]), "drop_function")
    return True


def double_word(doc: Doc, rng: random.Random) -> bool:
    ws = doc.words()
    cand = [i for i, w in enumerate(ws) if w[2].lower() in FUNCTION_WORDS and doc.free(w[0], w[1])]
    if not cand:
        return False
    w = ws[rng.choice(cand)]
    doc.edit(w[1], w[1], " " + w[2])
    doc.add(w[0], w[1] * 2 - w[0] + 1, "double_word")
    return True


def agreement(doc: Doc, rng: random.Random) -> bool:
    ws = doc.words()
    cand: list[tuple[tuple[int, int, str], str]] = []
    for i, w in enumerate(ws):
        if not doc.free(w[0], w[1]):
            continue
        lw = w[2].lower()
        if lw in AGREEMENT and w[2].islower():
            cand.append((w, AGREEMENT[lw]))
        elif lw.endswith("ing") and len(lw) > 6 and w[2].islower():
            cand.append((w, w[2][:-3] + "ed"))  # "while also reiterating" -> "reiterated"
        elif i > 0 and ws[i - 1][2].lower() in MODALS and w[2].isalpha() and w[2].islower() and len(w[2]) > 3:
            cand.append((w, w[2] + ("ed" if not w[2].endswith("e") else "d") if rng.random() < 0.6 else w[2] + "s"))
    if not cand:
        return False
    w, repl = rng.choice(cand)
    doc.edit(w[0], w[1], repl)
    doc.add(w[0], w[0] + len(repl), "agreement")
    return True


def literal(doc: Doc, rng: random.Random) -> bool:
    ws = doc.words()
    cand = [w for i, w in enumerate(ws) if i > 0 and w[2].islower() and len(w[2]) > 3 and doc.free(w[0] - 1, w[1])]
    if not cand:
        return False
    w = rng.choice(cand)
    phrase = rng.choice(LITERAL_PHRASES)
    doc.edit(w[0], w[0], phrase + " ")
    doc.add(w[0], w[0] + len(phrase), "literal")
    return True


def untranslated(doc: Doc, rng: random.Random) -> bool:
    ws = doc.words()
    cand = [w for i, w in enumerate(ws) if i > 0 and len(w[2]) > 2 and doc.free(w[0], w[1])]
    if not cand:
        return False
    w = rng.choice(cand)
    tok = rng.choice(FOREIGN)
    if rng.random() < 0.5:
        doc.edit(w[0], w[1], tok)
        doc.add(w[0], w[0] + len(tok), "untranslated")
    else:
        doc.edit(w[1], w[1], " " + tok)
        doc.add(w[1] + 1, w[1] + 1 + len(tok), "untranslated")
    return True


def space_punct(doc: Doc, rng: random.Random) -> bool:
    cand = [
        m.start() for m in re.finditer(r"(?<=\w)[,.;:!?”)]", doc.text)
        if doc.free(max(0, m.start() - 1), m.start() + 1)
    ]
    if not cand:
        return False
    p = rng.choice(cand)
    prev = [m for m in WORD.finditer(doc.text) if m.end() <= p]
    start = prev[-1].start() if prev else p
    if not doc.free(start, p + 1):
        return False
    doc.edit(p, p, " ")
    doc.add(start, p + 2, "space_punct")
    return True


def repeat_phrase(doc: Doc, rng: random.Random) -> bool:
    ws = doc.words()
    n = rng.choice([1, 2, 2, 3, 4])
    cand = [
        i for i in range(len(ws) - n)
        if all(_adjacent(doc, j, ws) for j in range(i, i + n - 1)) and doc.free(ws[i][0], ws[i + n - 1][1] + 1)
        and not (n == 1 and ws[i][2].lower() in FUNCTION_WORDS)
    ]
    if not cand:
        return False
    i = rng.choice(cand)
    s, e = ws[i][0], ws[i + n - 1][1]
    phrase = doc.text[s:e]
    doc.edit(e, e, " " + phrase)
    doc.add(e + 1, e + 1 + len(phrase), "repeat_phrase")
    return True


ARTIFACTS: dict[str, Callable[[Doc, random.Random], bool]] = {
    "stray_break": stray_break, "orphan_fragment": orphan_fragment, "boundary_lowercase": boundary_lowercase,
    "run_on": run_on, "mid_capital": mid_capital, "word_swap": word_swap, "drop_function": drop_function,
    "double_word": double_word, "agreement": agreement, "literal": literal, "untranslated": untranslated,
    "space_punct": space_punct, "repeat_phrase": repeat_phrase,
}


def hard_negative(doc: Doc, rng: random.Random) -> str | None:
    """Rewrite a clean window with a pattern that looks like an artifact but is fluent English."""
    choice = rng.random()
    if choice < 0.5:
        opts = [(p, r) for p, r in ABBREVIATIONS if re.search(p, doc.text)]
        if opts:
            p, r = rng.choice(opts)
            doc.text = re.sub(p, r, doc.text, count=1)
            return "abbreviation"
    ends = _sentence_ends(doc)
    if ends:
        e = rng.choice(ends)
        doc.text = doc.text[: e + 1] + " " + rng.choice(SHORT_SENTENCES) + doc.text[e + 1 :]
        return "short_sentence"
    return None


def _windows(docs: Sequence[Sequence[str]], rng: random.Random, cfg: SynthConfig) -> tuple[int, int, str]:
    d = rng.randrange(len(docs))
    sents = docs[d]
    k = rng.randint(cfg.min_sentences, cfg.max_sentences)
    start = rng.randrange(max(1, len(sents) - k + 1))
    parts: list[str] = []
    for s in sents[start : start + k]:
        if parts and len(" ".join(parts)) + len(s) > cfg.max_chars:
            break
        parts.append(s)
    text = " ".join(parts)
    if len(text) > cfg.max_chars * 2:
        cut = text.rfind(" ", 0, cfg.max_chars * 2)
        text = text[: cut if cut > 0 else cfg.max_chars * 2]
    return d, start, text


def generate(clean: Sequence[Record], cfg: SynthConfig, split: str) -> list[Record]:
    """Generate ``cfg.n_windows`` windows (corrupted or clean) from clean records of one split."""
    rng = random.Random(f"{cfg.seed}:{split}")
    by_doc: dict[str, list[Record]] = {}
    for r in clean:
        by_doc.setdefault(r.doc_id, []).append(r)
    doc_ids = sorted(by_doc)
    docs = [[r.text for r in sorted(by_doc[d], key=lambda r: r.seg)] for d in doc_ids]
    hard_docs = [i for i, sents in enumerate(docs) if any(HARD_PATTERN.search(s) for s in sents)]
    names = sorted(cfg.weights)
    weights = [cfg.weights[n] for n in names]
    out: list[Record] = []
    for n in range(cfg.n_windows):
        corrupt = rng.random() < cfg.p_corrupt
        if not corrupt and hard_docs and rng.random() < 0.3:
            # oversample real abbreviations, initials, quotes and ellipses as clean negatives
            d = rng.choice(hard_docs)
            sub = [docs[d]]
            _, start, text = _windows(sub, rng, cfg)
        else:
            d, start, text = _windows(docs, rng, cfg)
        doc = Doc(text)
        artifacts: list[str] = []
        negative = ""
        if corrupt:
            want = 2 if rng.random() < cfg.p_two else 1
            for _ in range(8):
                name = rng.choices(names, weights)[0]
                if ARTIFACTS[name](doc, rng):
                    artifacts.append(name)
                if len(artifacts) >= want:
                    break
        elif rng.random() < cfg.p_hard_negative:
            negative = hard_negative(doc, rng) or ""
        if corrupt and not artifacts:
            continue
        for s in doc.spans:
            check_span(doc.text, s, None)
        doc.spans.sort(key=lambda s: (s.start, s.end))
        out.append(
            Record(
                id=f"synth:{split}:{n}",
                source="synthetic",
                doc_id=doc_ids[d],
                text=doc.text,
                spans=doc.spans,
                label=STRICT if artifacts else CLEAN,
                split=split,
                seg=start,
                synthetic=True,
                meta={"artifacts": artifacts} if artifacts else ({"hard_negative": negative} if negative else {}),
            )
        )
    return out
