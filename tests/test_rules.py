"""The rule categories (issue #32): repetition loops and untranslated text, and language calls that need English
evidence against them. Invented examples only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector import Detector
from detector._language import LanguageId
from detector._rarity import WordTable
from detector._rules import REPETITION, RULE_PROBABILITY, UNTRANSLATED, passage_rules

FIXTURES = Path(__file__).parent / "fixtures"
SHIPPED_WORDS = Path(__file__).resolve().parents[1] / "models" / "mtdetect-minilm-shape" / "word_zipf.json.gz"

LOOPS = {
    "clause": ("The committee of the city is the committee of the city, the committee of the city, the committee of "
               "the city.", "the committee of the city, the committee of the city, the committee of the city"),
    "phrase-with-joiners": ("This decision is addressed to the Federal Republic of Germany, the Federal Republic of "
                            "Germany and the Federal Republic of Germany.",
                            "the Federal Republic of Germany and the Federal Republic of Germany"),
    "word": ("He said that it was very very very very important.", "very very very"),
    "names": ("Talks were held by Li Wei, Wang Fang, Li Wei, Wang Fang, Li Wei, Wang Fang and others.",
              "Li Wei, Wang Fang, Li Wei, Wang Fang"),
    "endless-list": ("Bring red, green, blue, red, green, blue, red, green, blue, red, green.",
                     "red, green, blue, red, green, blue, red, green"),
    "cjk-characters": ("The sign said 会议会议会议会议 in large letters.", "会议会议会议"),
    "cyrillic-words": ("He shouted да нет, да нет, да нет, да нет at the crowd.", "да нет, да нет, да нет"),
    "english-loop-of-a-term": ("anti-Russian sentiment, anti-Russian sentiment, anti-Russian sentiment, "
                               "anti-Russian sentiment.",
                               "anti-Russian sentiment, anti-Russian sentiment, anti-Russian sentiment"),
}
NOT_LOOPS = {
    "human-list": "We bought red, green, blue and yellow paint for the fence.",
    "three-yeses": "Yes, yes, yes, I heard you the first time.",
    "numbers": "The scores were 1 1 1 1 and 2 2 2 2 in the first round.",
    "rhetoric-once": "Government of the people, by the people, for the people, shall not perish from the earth.",
    "repeated-name-far-apart": "Smith met Jones on Monday; on Tuesday Smith wrote to Jones, and on Friday Smith "
                               "called Jones again.",
}
UNTRANSLATED_RUNS = {
    "cjk-in-english": ("The delegation visited the 会议 center and discussed 合作 with local officials.",
                       ["会议", "合作"]),
    "cyrillic-in-english": ("The minister praised the новый закон in his speech on Monday.", ["новый закон"]),
    "unk-token": ("The company said the <unk> would open next year.", ["<unk>"]),
    "bpe-marker": ("The transl@@ ation was published on Friday.", ["transl@@"]),
    "sentencepiece-marker": ("The ▁meeting ended at noon.", ["▁"]),
}
NOT_UNTRANSLATED = {
    "accented-latin": "The café on the rue de Rivoli served crème brûlée to the Zürich delegation.",
    "greek-symbols": "Beta-blockers (β-blockers) reduce α activity by 5 μg per dose.",
    "emoji": "We loved it 😀👍 and will come back.",
    "mostly-other-script": "Москва — столица России, and the capital.",  # mostly Cyrillic: its language decides
}


@pytest.mark.parametrize("name", sorted(LOOPS), ids=sorted(LOOPS))
def test_repetition_loops_are_found(name: str) -> None:
    text, expected = LOOPS[name]
    found = [text[r.start : r.end] for r in passage_rules(text, 0, len(text)) if r.category == REPETITION]
    assert found == [expected], found  # (a loop in another script inside English text is untranslated too)


@pytest.mark.parametrize("name", sorted(NOT_LOOPS), ids=sorted(NOT_LOOPS))
def test_human_repetition_is_not_a_loop(name: str) -> None:
    text = NOT_LOOPS[name]
    assert [r for r in passage_rules(text, 0, len(text)) if r.category == REPETITION] == []


@pytest.mark.parametrize("name", sorted(UNTRANSLATED_RUNS), ids=sorted(UNTRANSLATED_RUNS))
def test_untranslated_runs_are_found(name: str) -> None:
    text, expected = UNTRANSLATED_RUNS[name]
    found = [text[r.start : r.end] for r in passage_rules(text, 0, len(text)) if r.category == UNTRANSLATED]
    assert found == expected


@pytest.mark.parametrize("name", sorted(NOT_UNTRANSLATED), ids=sorted(NOT_UNTRANSLATED))
def test_latin_accents_symbols_and_emoji_are_not_untranslated(name: str) -> None:
    text = NOT_UNTRANSLATED[name]
    assert passage_rules(text, 0, len(text)) == []


def test_rules_are_linear_on_hostile_input() -> None:
    """A million characters of a few short words: the loop search is bounded by the unit size (time is measured
    in the robustness benchmark, not asserted); every finding slices the text."""
    text = ("a b a c " * 125_000)[:1_000_000]
    for r in passage_rules(text, 0, len(text)):
        assert 0 <= r.start < r.end <= len(text)


# ------------------------------------------------------------------ language calls


@pytest.fixture(scope="module")
def language_id() -> LanguageId:
    return LanguageId(WordTable.read(SHIPPED_WORDS))


@pytest.mark.parametrize(
    "text",
    ["anti-Russian sentiment, anti-Russian sentiment, anti-Russian sentiment, anti-Russian sentiment.",
     "Xinhua, Beijing, Shanghai, Guangzhou, Shenzhen, Chongqing, Tianjin, Wuhan and Nanjing.",
     "Mining companies continue posting record profits across the region",
     "Vladimir Putin, Sergei Lavrov, Dmitry Medvedev and Mikhail Mishustin attended the meeting."],
    ids=["english-loop", "place-names", "headline", "person-names"],
)
def test_english_full_of_names_or_loops_stays_english(language_id: LanguageId, text: str) -> None:
    assert language_id.language_of(text) == "en"


OTHER = json.loads((FIXTURES / "other_languages.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("lang", sorted(OTHER), ids=sorted(OTHER))
def test_other_languages_are_still_identified(language_id: LanguageId, lang: str) -> None:
    called = [language_id.language_of(t) for t in OTHER[lang]]
    assert sum(c == lang for c in called) >= len(called) - 1, called  # lingua's fast mode may miss one


# ------------------------------------------------------------------ in the detector's decisions


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector.load()


def test_a_loop_is_flagged_with_its_category(det: Detector) -> None:
    text, expected = LOOPS["clause"]
    d = det.detect(text)
    assert d.flagged and d.score >= RULE_PROBABILITY and d.status == "scored"
    assert [(s.text, s.category) for s in d.spans if s.category == REPETITION] == [(expected, REPETITION)]


def test_a_foreign_passage_inside_english_is_untranslated(det: Detector) -> None:
    english = ("The regional council met on Tuesday to discuss the budget for next year. "
               "Several members asked for more money for schools and roads. ")
    french = OTHER["fr"][0]
    d = det.detect(english + french + " The vote was postponed until the end of the month after a long debate.")
    foreign = [p for p in d.passages if p.text == french]
    assert d.status == "scored" and d.language == "en" and foreign and foreign[0].flagged
    assert foreign[0].language == "fr"
    assert any(s.text == french and s.category == UNTRANSLATED for s in d.spans)


def test_a_whole_text_in_another_language_has_an_explicit_status(det: Detector) -> None:
    d = det.detect(" ".join(OTHER["de"]))
    assert (d.status, d.language, d.flagged, d.score, d.spans) == ("not_english", "de", False, 0.0, ())
    assert d.to_dict()["status"] == "not_english"
