"""Sentence boundaries: news text, and real layouts (wrapped lines, e-mail, PDF pages)."""

from __future__ import annotations

from qa.bench.sentences import gold_documents, predict
from qa.clean import model_text, page_furniture
from qa.sentences import layout_view, pysbd_cuts, split_sentences, wrap_width


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_abbreviations_initials_and_decimals_do_not_split() -> None:
    text = ("The U.S. government met Mr. Smith on Jan. 5. J. K. Rowling wrote it. "
            "TikTok has 1.5 billion downloads! It was stored in the U.S. The company said so.")
    assert sentences(text) == [
        "The U.S. government met Mr. Smith on Jan. 5.",
        "J. K. Rowling wrote it.",
        "TikTok has 1.5 billion downloads!",
        "It was stored in the U.S.",
        "The company said so.",
    ]


def test_quotes_bullets_headings_and_links() -> None:
    text = ('#### Active surveillance\n  • A PR arm said it. He said “it is fine.” Then left.\n'
            'See [a report](https://x.org/a "Title. More.") for details.')
    assert sentences(text) == [
        "Active surveillance",
        "A PR arm said it.",
        "He said “it is fine.”",
        "Then left.",
        'See [a report](https://x.org/a "Title. More.") for details.',
    ]


def test_offsets_are_exact_and_trimmed() -> None:
    text = "  One sentence here.   Two sentences here?\n\n- Three.  "
    spans = split_sentences(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == ["One sentence here.", "Two sentences here?", "Three."]
    assert all(text[s:e].strip() == text[s:e] for s, e in spans)


# Real layouts: a line break inside a paragraph is not a sentence boundary.

WRAPPED = """HARBOUR REPORT

2. Findings
In the reporting year the authority employed 412 dock workers across
three terminals. The northern terminal was supervised by Ingrid Solvang,
who joined from the coast guard. Dr. Olsen said the infor-
mation about the 3.5 million crowns was wrong, according to the U.S.
officials who visited in Jan. 2023 and stayed for a week.

- first item of a list
- a second item that runs on past the end of the line and wraps onto the
  next line of the list
Name       Terminals   Staff
North      1           120
By Jane Doe
The End.
"""


def test_wrapped_lines_are_joined_and_structure_still_breaks() -> None:
    assert sentences(WRAPPED) == [
        "HARBOUR REPORT",
        "Findings",
        "In the reporting year the authority employed 412 dock workers across\nthree terminals.",
        "The northern terminal was supervised by Ingrid Solvang,\nwho joined from the coast guard.",
        "Dr. Olsen said the infor-\nmation about the 3.5 million crowns was wrong, according to the U.S.\n"
        "officials who visited in Jan. 2023 and stayed for a week.",
        "first item of a list",
        "a second item that runs on past the end of the line and wraps onto the\n  next line of the list",
        "Name       Terminals   Staff",
        "North      1           120",
        "By Jane Doe",
        "The End.",
    ]


def test_layout_view_keeps_length_and_offsets() -> None:
    view = layout_view(WRAPPED, 0, len(WRAPPED), wrap_width(WRAPPED))
    assert len(view) == len(WRAPPED)
    assert all(a == b or b == " " for a, b in zip(WRAPPED, view, strict=True))
    assert wrap_width(WRAPPED) is not None and wrap_width("One line.\n\nA paragraph line of text.") is None


def test_email_quote_continues_across_lines() -> None:
    mail = ("Hi Maria,\n\nThanks for the note. I will send the\nfigures tomorrow.\n\n> On Monday you wrote:\n"
            "> We need the numbers for the\n> board meeting. Can you help?\n\n-- \nJohn Smith\nPort Director\n")
    assert sentences(mail) == ["Hi Maria,", "Thanks for the note.", "I will send the\nfigures tomorrow.",
                               "On Monday you wrote:", "We need the numbers for the\n> board meeting.",
                               "Can you help?", "John Smith", "Port Director"]


def test_paragraph_per_line_text_breaks_at_short_lines() -> None:
    # News text keeps a paragraph per line: a byline and a teaser stay sentences of their own.
    text = ("Alfred Ng\n3 min read\nThe US government has started reaching out to TikTok, officials said on "
            "Tuesday. It is the newest network on the\nagency's radar.\nTikTok did not respond")
    assert sentences(text) == ["Alfred Ng", "3 min read",
                               "The US government has started reaching out to TikTok, officials said on Tuesday.",
                               "It is the newest network on the\nagency's radar.", "TikTok did not respond"]


def test_skipped_range_between_pages_keeps_one_sentence() -> None:
    text = "The table below\nHEADER LINE 1/3\n\nsummarizes the results. Next one."
    skip = [(15, 34)]
    assert [text[s:e] for s, e in split_sentences(text, skip=skip)] == [
        "The table below\nHEADER LINE 1/3\n\nsummarizes the results.", "Next one."]
    assert [text[s:e] for s, e in split_sentences(text)][0] == "The table below"


def test_hyphen_mended_for_the_models_only() -> None:
    assert model_text("the infor-\nmation and well-known") == "the information and well-known"


def test_page_furniture_is_found_on_every_page() -> None:
    pages = [f"{word} is how this page begins.\n{word} goes on here.\nACME Report 2024\nfile:///tmp/report.html {n}/3"
             for n, word in enumerate(("Water", "Power", "Roads"), start=1)]
    text = "\n\n".join(pages)
    starts = tuple(text.index(p) for p in pages)
    found = [text[s:e] for s, e in page_furniture(text, starts)]
    assert found == [line for n in (1, 2, 3) for line in ("ACME Report 2024", f"file:///tmp/report.html {n}/3")]
    assert [pages[0][s:e] for s, e in page_furniture(pages[0], (0,))] == []   # "1/3" is not page 1 of 1
    alone = pages[0].replace("1/3", "1/1")
    assert [alone[s:e] for s, e in page_furniture(alone, (0,))] == ["file:///tmp/report.html 1/1"]


def test_pages_made_only_of_repeated_lines_are_text_not_furniture() -> None:
    # Found by Hypothesis in CI: two DOCX pages with the same single sentence were cut whole and
    # the file was skipped as "only boilerplate".
    page = "0 0 0. 0 0 0. 0 0 0. 0 0 0."
    text = f"{page}\n\n{page}"
    assert page_furniture(text, (0, len(page) + 2)) == []
    numbered = f"{page}\n1\n\n{page}\n2"
    assert [numbered[s:e] for s, e in page_furniture(numbered, (0, len(page) + 3))] == ["1", "2"]


def test_the_gold_set_aligns_and_qa_keeps_its_measured_f1() -> None:
    # eval/sentences/gold.jsonl: every unit is found in the text qa loads (SQuAD paragraphs only
    # where the benchmark data lies beside the repository). pysbd on qa's layout view scored F1
    # 0.94 there, 0.52 line by line (`qa bench sentences`); a change to the splitter that loses
    # more than a little fails here.
    docs, _ = gold_documents()
    assert {d["kind"] for d in docs} >= {"seed", "wrapped", "email", "pdf"}
    hits = predicted = gold = 0
    for d in docs:
        pred = predict(d, pysbd_cuts, layout=True)
        hits, predicted, gold = hits + len(pred & d["gold"]), predicted + len(pred), gold + len(d["gold"])
    assert 2 * hits / (predicted + gold) >= 0.92
