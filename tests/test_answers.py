"""Cited answers: verbatim quotes, plain abstention, follow-ups, and odd input."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.answers import answer, answer_to_json
from qa.config import Settings
from qa.errors import QueryError, SettingsError
from qa.index import load_index
from qa.reading import passage_windows
from qa.retrieval import rank

from .conftest import SEEDS


def check_verbatim(reply) -> None:
    for c in reply.citations:
        source = (SEEDS / c.doc_id).read_text(encoding="utf-8")
        assert source[c.start:c.end] == c.quote
        if c.answer_start is not None:
            assert c.start <= c.answer_start < c.answer_end <= c.end
    for p in reply.passages:
        assert (SEEDS / p.doc_id).read_text(encoding="utf-8")[p.start:p.end] == p.text


def test_answer_quotes_and_cites_the_removed_accounts(seeds_index: Path) -> None:
    reply = answer("How many accounts did TikTok remove?", index=seeds_index)
    assert not reply.abstained
    assert "3,000" in reply.text and "[1]" in reply.text
    first = reply.citations[0]
    assert first.doc_id == "003_1e2a6170b287ded5.txt" and "3,000" in first.quote
    check_verbatim(reply)
    # The markers in the text are exactly the citations, numbered by first use.
    assert [int(n) for n in re.findall(r"\[(\d+)\]", reply.text)] == [c.n for c in reply.citations]


def test_short_answer_is_marked_for_every_question_type(seeds_index: Path) -> None:
    reply = answer("How many downloads has TikTok amassed?", index=seeds_index)
    c = reply.citations[0]
    source = (SEEDS / c.doc_id).read_text(encoding="utf-8")
    assert c.answer_start is not None and "1.5 billion" in source[c.answer_start:c.answer_end]
    reply = answer("Where is TikTok's US user data stored?", index=seeds_index)
    c = reply.citations[0]
    source = (SEEDS / c.doc_id).read_text(encoding="utf-8")
    # The source says "(Virginia with a back-up in Singapore)"; the reader marks the clause, and
    # the bracket its span ended on is trimmed (it opened outside the span).
    assert c.answer_start is not None and source[c.answer_start:c.answer_end].startswith("Virginia")
    assert ")" not in source[c.answer_start:c.answer_end]


def test_marked_spans_lose_edges_a_tokenizer_left() -> None:
    from qa.answers import _trim_span

    def trimmed(text: str) -> str | None:
        span = _trim_span(text, 0, len(text), 10)
        return None if span is None else text[span[0] - 10:span[1] - 10]

    assert trimmed("Virginia with a back-up in Singapore)") == "Virginia with a back-up in Singapore"
    assert trimmed(" (Virginia") == "Virginia"
    assert trimmed("3,000 accounts, ") == "3,000 accounts"
    assert trimmed("(the US)") == "(the US)" and trimmed("f(x)") == "f(x)" and trimmed("U.S.") == "U.S."
    assert trimmed("), ") is None


def test_yes_no_questions_are_told_from_wh_questions_and_choices() -> None:
    from qa.questions import is_polar

    for question in ("Did TikTok ban political ads?", "Is Microsoft buying TikTok?", "And did he resign?",
                     "Isn't TikTok owned by ByteDance?", "  has the app been banned?", "Is TikTok safe or not?"):
        assert is_polar(question), question
    for question in ("Who owns TikTok?", "What did he say?", "Canada banned TikTok?", "Isabel said what?",
                     "Were Tesla's experiments high-voltage or low-voltage?", "Where is the data? Is it safe?"):
        assert not is_polar(question), question


def test_yes_no_questions_go_to_the_sentence_scorer(seeds_index: Path) -> None:
    from qa.answerability import ANSWERABILITY, CONFIDENCE_MODEL, polar_confidence

    # The scorer's threshold lands on the reader's, and the map keeps the order.
    assert polar_confidence(CONFIDENCE_MODEL.threshold) == pytest.approx(ANSWERABILITY.threshold)
    assert polar_confidence(0.1) < polar_confidence(0.2) < polar_confidence(0.9) < 1.0
    assert polar_confidence(0.0) == 0.0
    question = "Is Microsoft buying TikTok?"
    read = answer(question, index=seeds_index)
    scored = answer(question, index=seeds_index, settings=Settings(reader=False))
    # The reader's own confidence refused it (margin -4.3: no span says yes or no); the scorer's
    # sentence about the talks is quoted instead, unmarked.
    assert not read.abstained and "Microsoft is currently in talks" in read.text
    assert all(c.answer_start is None for c in read.citations)
    assert [(c.doc_id, c.start) for c in read.citations] == [(c.doc_id, c.start) for c in scored.citations]
    assert read.confidence == pytest.approx(polar_confidence(scored.confidence))
    check_verbatim(read)


def test_a_second_reading_is_quoted_only_where_the_reader_would_answer(seeds_index: Path) -> None:
    from qa.reading import read_answer
    from qa.retrieval import rank
    from qa.scoring import score_sentences

    index = load_index(seeds_index)
    chosen = Settings()
    for question in ("Which US agency said it has started reaching out to TikTok?", "Who owns TikTok?",
                     "Where is TikTok's US user data stored?", "What did Liz Truss say?"):
        ranking = rank(question, index, settings=chosen)
        pick = read_answer(question, score_sentences(question, ranking, index), index, chosen)
        assert pick is not None and all(span.margin > 0 for span in pick.spans[1:]), question
    # The reader's runner-up for the agency question ("the Chinese government", in TikTok's
    # statement about user data) lies in a window where it prefers "no answer": not quoted.
    reply = answer("Which US agency said it has started reaching out to TikTok?", index=index)
    assert not any("never provided" in c.quote for c in reply.citations), reply.text


def test_sentence_scorer_marks_only_numbers_and_dates_it_is_sure_of(seeds_index: Path) -> None:
    scorer = Settings(reader=False)
    reply = answer("How many downloads has TikTok amassed?", index=seeds_index, settings=scorer)
    c = reply.citations[0]
    source = (SEEDS / c.doc_id).read_text(encoding="utf-8")
    assert c.answer_start is not None and source[c.answer_start:c.answer_end] == "1.5 billion"
    reply = answer("Where is TikTok's US user data stored?", index=seeds_index, settings=scorer)
    assert all(c.answer_start is None for c in reply.citations)  # no "where" span guessed


# The readers trained on questions in users' own words (2026-12-03) answer the founder question
# from "it is owned by Beijing-based company Bytedance" (the third: confidence 0.597, threshold
# 0.35): a near miss they have not learned to refuse, kept here as a known failure
# (docs/reading.md) until a reader does.
FOUNDER_MISS = pytest.mark.xfail(strict=True, reason="the shipped reader answers this near miss (0.597)")


@pytest.mark.parametrize(("question", "reader"), [
    pytest.param(question, reader, marks=FOUNDER_MISS if reader and "founded" in question else ())
    for question in ("What is the capital of France?", "How old is Roland Cloutier?",
                     "What is Roland Cloutier's salary?", "Who founded ByteDance?")
    for reader in (True, False)])
def test_silent_documents_mean_a_plain_abstention(seeds_index: Path, question: str, reader: bool) -> None:
    # The reader before the entity-swapped training answered the salary and founder questions
    # tentatively (0.36 and 0.45); the readers since refuse the founder one, as the scorer does.
    # The 7-bit reader took Roland Cloutier's title for his salary (0.555) until it read each
    # window after its document's title (0.355 now).
    reply = answer(question, index=seeds_index, settings=Settings(reader=reader))
    assert reply.abstained and reply.status == "abstained" and reply.citations == ()
    assert reply.text.startswith("The documents don't say")
    assert "[1]" not in reply.text and reply.passages
    # Related reading: the best passage of each of up to three documents, in rank order.
    assert 1 <= len(reply.related) <= 3 and len({p.doc_id for p in reply.related}) == len(reply.related)
    assert reply.related[0] == reply.passages[0] and set(reply.related) <= set(reply.passages)
    check_verbatim(reply)


def test_follow_ups_use_the_conversation(seeds_index: Path) -> None:
    first = "Where is TikTok's US user data stored?"
    reply = answer(first, index=seeds_index)
    assert "Virginia" in reply.text
    history = [{"role": "user", "content": first}, {"role": "assistant", "content": reply.text}]
    follow = answer("And where is the backup kept?", history=history, index=seeds_index)
    assert not follow.abstained and "Singapore" in follow.text
    check_verbatim(follow)


def test_json_shape(seeds_index: Path) -> None:
    data = answer_to_json(answer("Which FCC commissioner called for TikTok's removal?", index=seeds_index))
    assert {"answer", "abstained", "citations", "passages"} <= set(data)
    assert set(data["citations"][0]) >= {"n", "doc_id", "title", "quote", "start", "end"}


ODD = ["x" * 2000, "Où sont stockées les données des utilisateurs américains de TikTok ?", "?!?...;;",
       "<script>alert(1)</script> where is the data?", "\x00 where \x00 is data", "数据存储在哪里？",
       "javascript:alert(1)", "' OR 1=1 --", "🙂🙂🙂", "a"]


@pytest.mark.parametrize("question", ODD)
def test_odd_questions_keep_citations_verbatim(seeds_index: Path, question: str) -> None:
    check_verbatim(answer(question, index=seeds_index))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_question_is_answered_verbatim_or_refused_clearly(seeds_index: Path, question: str) -> None:
    index = load_index(seeds_index)
    try:
        reply = answer(question, index=index)
    except QueryError as exc:
        assert not question.replace("\x00", "").strip()
        assert "empty" in str(exc)
        return
    check_verbatim(reply)
    assert reply.abstained == (not reply.citations)


def test_non_text_question_is_a_clear_error(seeds_index: Path) -> None:
    with pytest.raises(QueryError, match="must be text"):
        answer(None, index=seeds_index)  # type: ignore[arg-type]


DIALOGUES = [
    # (turns, what the last answer must contain, or None when it must abstain)
    (["Where is TikTok's US user data stored?", "And where is the backup kept?"], "Singapore"),
    # A known failure since the reader of 2026-12-03 (second run): it quotes TikTok's storage
    # sentence for Facebook (the third reader: 0.474, a tentative answer; docs/reading.md).
    pytest.param(["Where is TikTok's US user data stored?", "And where is the backup kept?", "What about Facebook?"],
                 None, marks=pytest.mark.xfail(strict=True, reason="answered, tentatively (0.474)")),
    (["Which FCC commissioner wanted TikTok removed from app stores?", "Who did he write to?"], "Tim Cook"),
]


def test_a_follow_up_about_another_company_is_never_answered_with_the_first_ones_figure(seeds_index: Path) -> None:
    # "And Facebook?" after TikTok's law-enforcement requests: the article gives Facebook's 51,121
    # beside TikTok's 100. The reader marks TikTok's "100" (its margin is negative there), so the
    # reply may abstain; if it answers, the figure it marks is Facebook's.
    history: list[dict[str, str]] = []
    for question in ("How many law enforcement requests did TikTok receive in the second half of 2019?",
                     "And Facebook?"):
        reply = answer(question, history=history, index=seeds_index)
        check_verbatim(reply)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": reply.text}]
    marked = [c.quote[c.answer_start - c.start:c.answer_end - c.start] for c in reply.citations
              if c.answer_start is not None and c.answer_end is not None]
    assert reply.abstained or (marked and "51,121" in marked[0]), (reply.text, marked)


@pytest.mark.parametrize("turns, expected", DIALOGUES)
def test_scripted_dialogues(seeds_index: Path, turns: list[str], expected: str | None) -> None:
    history: list[dict[str, str]] = []
    for question in turns:
        reply = answer(question, history=history, index=seeds_index)
        check_verbatim(reply)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": reply.text}]
    if expected is None:
        assert reply.abstained, reply.text
    else:
        assert not reply.abstained and expected in reply.text, reply.text


@pytest.mark.parametrize("reader", [True, False])
def test_low_confidence_answers_say_so(seeds_index: Path, reader: bool) -> None:
    from qa.answerability import TENTATIVE_BELOW, effective_threshold
    from qa.answers import TENTATIVE_PREFIX

    chosen = Settings(reader=reader)
    for question in ("How many accounts did TikTok remove?", "Where is TikTok's US user data stored?",
                     "What did TikTok say?", "Who is Vanessa Pappas?"):
        reply = answer(question, index=seeds_index, settings=chosen)
        if reply.abstained:
            assert reply.confidence < effective_threshold(chosen)
            continue
        tentative = reply.confidence < max(TENTATIVE_BELOW, effective_threshold(chosen))
        assert reply.text.startswith(TENTATIVE_PREFIX) == tentative == (reply.status == "tentative")
        # The text is its fields: the caveat (if any), then each quote and its marker.
        assert reply.is_composed() and reply.lead == (TENTATIVE_PREFIX if tentative else "")
        check_verbatim(reply)


def test_status_says_what_kind_of_reply_it_is(seeds_index: Path) -> None:
    scorer = Settings(reader=False)
    sure = answer("Where is TikTok's US user data stored?", index=seeds_index, settings=scorer)
    assert sure.status == "answered" and not sure.abstained and sure.related == ()
    unsure = answer("How many accounts did TikTok remove?", index=seeds_index, settings=scorer)
    assert unsure.status == "tentative" and unsure.text.startswith(TENTATIVE_PREFIX_TEXT)
    assert answer_to_json(unsure)["status"] == "tentative"
    sure = answer("Where is TikTok's US user data stored?", index=seeds_index)
    assert sure.status == "answered" and "Virginia" in sure.text


TENTATIVE_PREFIX_TEXT = "The documents may not answer this directly"


def test_a_question_over_the_limit_is_refused_without_being_echoed(seeds_index: Path) -> None:
    question = "where is the data " * 20_000   # 359,999 characters once stripped
    with pytest.raises(QueryError, match="359,999 characters long; the limit is 2,000") as caught:
        answer(question, index=seeds_index)
    assert len(str(caught.value)) < 200
    # At the limit it is answered, and a reply quotes at most 200 characters of it (an abstention
    # names the question; a tentative reply quotes the documents, never the question).
    reply = answer("zebra " * 333, index=seeds_index)
    assert "zebra " * 40 not in reply.text
    assert reply.abstained or all("zebra" not in c.quote for c in reply.citations)


def test_invalid_utf8_is_a_query_error_not_a_type_error(seeds_index: Path) -> None:
    broken = b"Where is the data \xff stored?".decode("utf-8", "surrogateescape")  # as argv delivers it
    with pytest.raises(QueryError, match="not valid text"):
        answer(broken, index=seeds_index)
    with pytest.raises(QueryError, match="not valid text"):
        answer("lone \ud800 surrogate", index=seeds_index)


@pytest.mark.parametrize("history, message", [
    ("Where is the data stored?", "must be a list of"),
    ({"role": "user", "content": "hi"}, "must be a list of"),
    (["Where is the data stored?"], "History message 0 is not"),
    ([{"role": "wizard", "content": "hi"}], "role must be one of"),
    ([{"role": "user", "content": 42}], "content of type int"),
])
def test_history_of_the_wrong_shape_is_a_clear_error(seeds_index: Path, history, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        answer("And where is the backup kept?", history=history, index=seeds_index)


def test_a_filter_that_leaves_no_document_says_so_instead_of_abstaining(seeds_index: Path) -> None:
    # "The documents don't say" would claim the documents were read; none was.
    with pytest.raises(QueryError, match=r"No indexed document matches the filter \(documents reports/\*\)") as caught:
        answer("How many accounts did TikTok remove?", index=seeds_index, docs="reports/*")
    assert "holds 5 document(s) (000_0cda244c9ed3ffe8.txt" in str(caught.value)
    # Four seed articles carry no date and the fifth is dated 2020-08-24, so a range from 2021 on
    # leaves them all out: the message says why.
    with pytest.raises(QueryError, match="4 of the 5 indexed documents have no date"):
        answer("How many accounts did TikTok remove?", index=seeds_index, since="2021-01-01")
    # A filter that keeps a document answers from it alone.
    reply = answer("How many accounts did TikTok remove?", index=seeds_index, docs="003_*")
    assert "3,000" in reply.text and {c.doc_id for c in reply.citations} == {"003_1e2a6170b287ded5.txt"}


def test_a_huge_history_costs_what_a_short_one_does(seeds_index: Path) -> None:
    first = [{"role": "user", "content": "Where is TikTok's US user data stored?"},
             {"role": "assistant", "content": "In Virginia [1]."}]
    filler = [{"role": "user", "content": "What did TikTok say? " * 50},
              {"role": "assistant", "content": "It said things. " * 200}] * 5_000   # 10,000 turns
    short = answer("And where is the backup kept?", history=first, index=seeds_index)
    long = answer("And where is the backup kept?", history=filler + first, index=seeds_index)
    assert short.query == long.query and "Singapore" in long.text
    started = time.perf_counter()
    for _ in range(3):
        answer("And where is the backup kept?", history=filler + first, index=seeds_index)
    assert (time.perf_counter() - started) / 3 < 2.0   # bounded: only the last turns are read


def test_the_reader_can_read_whole_passages(seeds_index: Path) -> None:
    # reader_passages = N: the reader reads every sentence of the first N passages, not only the
    # neighbourhoods of the sentences the lexical scorer liked; quotes stay whole, verbatim sentences.
    whole = Settings(reader_passages=5)
    index = load_index(seeds_index)
    reply = answer("Where is TikTok's US user data stored?", index=index, settings=whole)
    assert not reply.abstained and "Virginia" in reply.text
    check_verbatim(reply)
    cite = next(c for c in reply.citations if c.answer_start is not None)
    assert cite.start <= cite.answer_start < cite.answer_end <= cite.end
    ranking = rank("Where is TikTok's US user data stored?", index, settings=whole)
    windows = passage_windows(ranking, index, 5)
    rows = [r for w in windows for r in w.rows]
    assert len(rows) == len(set(rows))                    # overlapping passages are read once
    for w in windows:
        assert all(w.text[o:o + len(index.sentences[r].text)] == index.sentences[r].text
                   for r, o in zip(w.rows, w.offsets, strict=True))
    with pytest.raises(SettingsError, match="reader_passages"):
        Settings(reader_passages=21)


def test_abbreviations_are_spelled_out_as_the_documents_spell_them() -> None:
    from qa.abbreviations import long_forms_in, spelled_out

    texts = ["Officials of the Department of Homeland Security's Cybersecurity and Infrastructure Security "
             "Agency spoke.", "CISA said so. The Cybersecurity and Infrastructure Security Agency agreed."]
    assert long_forms_in("CISA", texts).most_common(1) == [("Cybersecurity and Infrastructure Security Agency", 2)]
    assert not long_forms_in("CISA", ["Critical Infrastructure matters."])   # initials fall short
    assert not long_forms_in("TSA", ["the security administration said"])    # long forms are capitalised
    forms = {"CISA": "Cybersecurity and Infrastructure Security Agency"}
    assert spelled_out("Which department does CISA belong to?", forms) == (
        "Which department does the Cybersecurity and Infrastructure Security Agency belong to?")
    assert spelled_out("Who runs the CISA office?", forms) == (
        "Who runs the Cybersecurity and Infrastructure Security Agency office?")
    assert spelled_out("Who runs CISAX?", forms) == "Who runs CISAX?"    # whole words only


def test_a_question_asked_with_an_abbreviation_the_article_never_defines(seeds_index: Path) -> None:
    # The first article names "the Department of Homeland Security's Cybersecurity and
    # Infrastructure Security Agency" once and says "CISA" after, never the two side by side.
    from qa.abbreviations import long_forms

    index = load_index(seeds_index)
    ranking = rank("Which department does CISA belong to?", index, settings=Settings())
    assert long_forms("Which department does CISA belong to?", index, ranking.rows[:5]) == {
        "CISA": "Cybersecurity and Infrastructure Security Agency"}
    assert long_forms("WHICH DEPARTMENT DOES CISA BELONG TO?", index, ranking.rows[:5]) == {}  # typed in capitals
    reply = answer("Which department does CISA belong to?", index=index)
    assert reply.status == "answered", reply.text
    assert "Department of Homeland Security" in reply.citations[0].quote
    check_verbatim(reply)
