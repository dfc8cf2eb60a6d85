"""The web chat: a Gradio 6 app over one loaded index (`build_app`) and its server (`serve`).

One `Index` is loaded at start-up and shared by every session, as is the encoder inside
`qa.answer`; the queue runs `settings.concurrency` questions at once. Each session keeps its own
conversation (`Turn`s) in `gr.State`; the chat shows HTML rendered by `qa.web_html`, where all
document and user text is escaped, so the Chatbot runs with Markdown off and its sanitizer on.

Besides the page, one HTTP endpoint is public: `/ask` (question, history) -> the JSON of
`qa ask --json`. The page's own events are private to the page.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gradio as gr

from qa.answer import answer, answer_to_json
from qa.config import Settings
from qa.errors import IndexMissingError, QAError
from qa.index import Index, build_index, load_index
from qa.web_html import (
    SourceText,
    Turn,
    answer_html,
    corpus_html,
    error_html,
    header_html,
    question_html,
    sources_html,
)

log = logging.getLogger(__name__)

# Shown on the first screen when they are answered from the loaded corpus (checked at start-up).
EXAMPLE_QUESTIONS = (
    "Where is TikTok's US user data stored?",
    "How many times has TikTok been downloaded?",
    "Why did FCC commissioner Brendan Carr want TikTok removed from app stores?",
)

WELCOME = (
    "<div class='qa-welcome'><h2>Ask the documents</h2>"
    "<p>Every answer quotes the exact sentences it rests on. Click a marker like <b>[1]</b> to "
    "see the quote inside its passage. When the documents do not say, the answer says so.</p></div>"
)

_feedback_lock = threading.Lock()


def open_index(settings: Settings, log_line: Any = print) -> Index:
    """Load `settings.index`, building it from `settings.corpus` first when it is missing.

    Raises:
        CorpusError: the index is missing and the corpus has no readable document.
        IndexCorruptError: the index on disk cannot be used.
    """
    try:
        return load_index(settings.index)
    except IndexMissingError:
        log_line(f"No index at {settings.index}: building it from {settings.corpus} (first run only).")
        build_index(settings.corpus, settings.index, settings=settings, log=log_line)
        return load_index(settings.index)


def working_examples(index: Index, settings: Settings,
                     questions: Sequence[str] = EXAMPLE_QUESTIONS) -> list[str]:
    """The example questions the index answers (not abstains on). Also warms the model up."""
    found = []
    for question in questions:
        try:
            if not answer(question, [], index=index, settings=settings).abstained:
                found.append(question)
        except QAError:
            continue
    return found


def history_messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The conversation as plain `{"role", "content"}` messages, the form `qa.answer` reads."""
    messages = []
    for turn in turns:
        messages.append({"role": "user", "content": turn.question})
        messages.append({"role": "assistant", "content": turn.reply.text})
    return messages


def chat_messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The conversation as Chatbot messages (escaped HTML, markers linked to their sources)."""
    messages = []
    for k, turn in enumerate(turns, 1):
        messages.append({"role": "user", "content": question_html(turn.question)})
        messages.append({"role": "assistant", "content": answer_html(k, turn.reply)})
    return messages


def record_feedback(path: Path, turn: Turn, vote: str) -> dict[str, Any]:
    """Append one JSON line for a vote on an answer; returns the record written."""
    reply = turn.reply
    record = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "vote": vote,
        "question": turn.question,
        "answer": reply.text,
        "abstained": reply.abstained,
        "confidence": round(reply.confidence, 4),
        "citations": [asdict(c) for c in reply.citations],
    }
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _feedback_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
    return record


def build_app(settings: Settings, index: Index | None = None) -> gr.Blocks:
    """The chat page over `index` (default: `settings.index`, built when missing).

    Style and theme are `launch()` options in Gradio 6; `serve` passes `CSS` and `theme()`.
    """
    loaded = index if index is not None else open_index(settings)
    source_text = SourceText(loaded)
    examples = working_examples(loaded, settings)

    def ask(question: str, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """Answer a question from the documents, with verbatim cited quotes.

        Args:
            question: the question.
            history: earlier messages of the conversation, as {"role", "content"} dicts.

        Returns:
            answer (text with [n] markers), abstained, confidence, citations (n, doc_id, title,
            quote, start, end, date, answer_start, answer_end), passages, latency_ms.
        """
        try:
            reply = answer(question, history or [], index=loaded, settings=settings)
        except QAError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        return answer_to_json(reply)

    def respond(question: str, turns: list[Turn]) -> Iterator[tuple[Any, ...]]:
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        pending = [*chat_messages(turns), {"role": "user", "content": question_html(question)}]
        yield pending, "", gr.skip(), gr.skip()
        try:
            reply = answer(question, history_messages(turns), index=loaded, settings=settings)
        except QAError as exc:
            yield [*pending, {"role": "assistant", "content": error_html(str(exc))}], "", gr.skip(), turns
            return
        turns = [*turns, Turn(question, reply)]
        yield chat_messages(turns), "", sources_html(turns, loaded, source_text), turns

    def respond_example(turns: list[Turn], evt: gr.SelectData) -> Iterator[tuple[Any, ...]]:
        value = evt.value
        text = value.get("text", "") if isinstance(value, dict) else str(value or "")
        yield from respond(text, turns)

    def vote(turns: list[Turn], evt: gr.LikeData) -> None:
        index_no = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        k = int(index_no) // 2
        if not 0 <= k < len(turns):
            return
        liked = evt.liked
        choice = ("up" if liked else "down") if isinstance(liked, bool) else str(liked or "cleared")
        record_feedback(settings.feedback_path, turns[k], choice)

    def new_conversation() -> tuple[Any, ...]:
        return [], "", corpus_html(loaded), []

    with gr.Blocks(title="qa · cited answers", analytics_enabled=False) as app:
        turns_state = gr.State([])
        with gr.Row(elem_id="qa-top", equal_height=True):
            gr.HTML(header_html(loaded), js_on_load=None, scale=10)
            new = gr.Button("New conversation", variant="secondary", size="md", scale=0,
                            min_width=170, elem_id="qa-new")
        with gr.Row(equal_height=False, elem_id="qa-main"):
            with gr.Column(scale=3, min_width=420, elem_id="qa-chat-col"):
                chatbot = gr.Chatbot(
                    elem_id="qa-chat",
                    show_label=False,
                    height="calc(100vh - 250px)",
                    min_height=420,
                    layout="bubble",
                    render_markdown=False,   # we send escaped HTML, never Markdown from documents
                    sanitize_html=True,
                    allow_tags=False,
                    latex_delimiters=[],
                    feedback_options=("Like", "Dislike"),
                    buttons=[],  # Gradio's copy buttons would copy our HTML, not the text
                    placeholder=WELCOME,
                    examples=[{"text": q} for q in examples] or None,
                    autoscroll=True,
                )
                with gr.Row(elem_id="qa-ask-row"):
                    box = gr.Textbox(
                        show_label=False,
                        placeholder="Ask a question about the documents…",
                        lines=1,
                        max_lines=4,
                        scale=8,
                        autofocus=True,
                        submit_btn=False,
                        elem_id="qa-question",
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=90, elem_id="qa-ask")
            with gr.Column(scale=2, min_width=340, elem_id="qa-sources-col"):
                sources = gr.HTML(corpus_html(loaded), elem_id="qa-sources", js_on_load=CITE_JS,
                                  padding=False)

        outputs = [chatbot, box, sources, turns_state]
        gr.on([box.submit, send.click], respond, inputs=[box, turns_state], outputs=outputs,
              api_visibility="private", show_progress="minimal", show_progress_on=[chatbot])
        chatbot.example_select(respond_example, inputs=[turns_state], outputs=outputs,
                               api_visibility="private", show_progress="minimal",
                               show_progress_on=[chatbot])
        chatbot.like(vote, inputs=[turns_state], outputs=None, api_visibility="private", queue=False)
        gr.on([new.click, chatbot.clear], new_conversation, outputs=outputs, api_visibility="private",
              queue=False)
        gr.api(ask, api_name="ask")
    return app


def serve(settings: Settings, *, block: bool = True, index: Index | None = None) -> gr.Blocks:
    """Start the chat on `settings.host:settings.port` (127.0.0.1:7860 by default).

    Builds the index first when it is missing. Serves the page and its API only: no file
    folder is allowed, and the corpus, index and feedback file are blocked outright.

    Args:
        settings: everything, including host, port, concurrency, auth and feedback_path.
        block: keep serving until interrupted; False returns once the server is up.
        index: an index already loaded (default: `settings.index`).

    Returns:
        The running app (call `.close()` to stop it when `block` is False).
    """
    loaded = index if index is not None else open_index(settings)
    print(f"Loading the chat over {loaded.path} ({len(loaded.documents)} documents)...", flush=True)
    app = build_app(settings, loaded)
    app.queue(default_concurrency_limit=settings.concurrency, max_size=256)
    auth = (settings.auth_user, settings.auth_password) if settings.auth_user and settings.auth_password \
        else None
    blocked = [str(Path(p).resolve()) for p in (settings.corpus, loaded.path, settings.feedback_path)]
    app.launch(
        server_name=settings.host,
        server_port=settings.port,
        auth=auth,
        prevent_thread_lock=not block,
        share=False,
        show_error=False,
        footer_links=["api"],
        run_history=False,
        enable_monitoring=False,
        mcp_server=False,
        ssr_mode=False,
        pwa=False,
        allowed_paths=None,
        blocked_paths=blocked,
        max_file_size="1mb",
        theme=theme(),
        css=CSS,
    )
    return app


def theme() -> gr.themes.Base:
    """The page's theme: Gradio's Soft in indigo and slate, on system fonts only."""
    return gr.themes.Soft(
        primary_hue="indigo",
        neutral_hue="slate",
        # The app runs offline: no font is fetched from a font service.
        font=["Inter", "ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto",
              "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )

# Opens and scrolls to the card a marker points at (the sources panel runs it once, on load).
CITE_JS = """
if (!window.__qaCites) {
  window.__qaCites = true;
  document.addEventListener('click', (event) => {
    const link = event.target.closest ? event.target.closest('a.qa-cite') : null;
    if (!link) return;
    const id = (link.getAttribute('href') || '').slice(1);
    const card = id ? document.getElementById(id) : null;
    if (!card) return;
    event.preventDefault();
    event.stopPropagation();
    for (let d = card.closest('details'); d; d = d.parentElement && d.parentElement.closest('details')) {
      d.open = true;
    }
    document.querySelectorAll('.qa-source.qa-active').forEach((el) => el.classList.remove('qa-active'));
    card.classList.add('qa-active');
    // Scroll the panel, not the page, when the panel scrolls on its own (wide screens).
    const panel = document.getElementById('qa-sources');
    if (panel && panel.scrollHeight > panel.clientHeight && panel.contains(card)) {
      const top = card.getBoundingClientRect().top - panel.getBoundingClientRect().top;
      panel.scrollTo({top: panel.scrollTop + top - 8, behavior: 'smooth'});
    } else {
      card.scrollIntoView({behavior: 'smooth', block: 'start'});
    }
  }, true);
}
"""

CSS = """
.gradio-container { max-width: 1480px !important; }
#qa-top { align-items: center; padding-bottom: 8px; margin-bottom: 4px;
  border-bottom: 1px solid var(--border-color-primary); }
.qa-header { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between;
  gap: 6px 24px; padding: 4px 2px; }
.qa-brand { display: flex; align-items: baseline; gap: 12px; }
.qa-logo { font-weight: 800; font-size: 1.5rem; letter-spacing: -0.03em; color: var(--color-accent); }
.qa-tagline { color: var(--body-text-color-subdued); font-size: 0.95rem; }
.qa-corpus { color: var(--body-text-color-subdued); font-size: 0.88rem; }
.qa-corpus b { color: var(--body-text-color); }
.qa-corpus span::before { content: "·"; margin: 0 7px; }
.qa-welcome { text-align: center; max-width: 520px; margin: 0 auto; }
.qa-welcome h2 { font-size: 1.3rem; margin-bottom: 6px; }
.qa-welcome p { color: var(--body-text-color-subdued); line-height: 1.55; }
#qa-chat .message-row .message { font-size: 0.97rem; }
.qa-q { white-space: pre-wrap; }
.qa-reply { line-height: 1.6; }
.qa-reply .qa-text { white-space: pre-wrap; overflow-wrap: anywhere; }
.qa-label { display: inline-block; font-size: 0.72rem; font-weight: 600; letter-spacing: 0.04em;
  text-transform: uppercase; padding: 1px 8px; border-radius: 999px; margin-bottom: 6px;
  background: rgba(79, 70, 229, 0.10); color: #4338ca; }
.qa-abstained { border-left: 3px solid #d97706; padding-left: 12px; }
.qa-abstained .qa-label { background: rgba(217, 119, 6, 0.14); color: #b45309; }
.qa-abstained .qa-text { color: var(--body-text-color); font-style: italic; }
.qa-error .qa-label { background: rgba(220, 38, 38, 0.12); color: #b91c1c; }
.qa-tentative .qa-label { background: rgba(100, 116, 139, 0.16); color: #475569; }
.qa-related-head { margin-top: 10px; font-size: 0.8rem; color: var(--body-text-color-subdued); }
a.qa-cite { text-decoration: none !important; cursor: pointer; }
.qa-text a.qa-cite { font-size: 0.78em; font-weight: 700; padding: 0 4px; margin: 0 1px;
  border-radius: 5px; vertical-align: 0.15em; background: rgba(79, 70, 229, 0.12); color: #4338ca; }
.qa-text a.qa-cite:hover { background: #4338ca; color: #fff; }
.qa-text strong.qa-span { font-weight: 700; box-shadow: inset 0 -0.4em 0 rgba(250, 204, 21, 0.45); }
.qa-chips { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px; }
a.qa-chip { font-size: 0.8rem; padding: 2px 10px; border-radius: 999px; color: var(--body-text-color);
  max-width: 100%; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-primary); }
a.qa-chip:hover { border-color: #4338ca; color: #4338ca; }
.qa-abstained a.qa-chip:hover { border-color: #d97706; color: #b45309; }
#qa-sources-col { position: sticky; top: 8px; align-self: flex-start; }
#qa-sources { max-height: calc(100vh - 140px); overflow-y: auto !important; padding-right: 4px; }
.qa-panel-title { font-weight: 700; font-size: 1.05rem; margin: 2px 0 8px; }
.qa-panel-sub { font-weight: 600; font-size: 0.85rem; margin: 14px 0 6px;
  color: var(--body-text-color-subdued); text-transform: uppercase; letter-spacing: 0.04em; }
.qa-note { color: var(--body-text-color-subdued); font-size: 0.88rem; line-height: 1.5; margin: 0 0 10px; }
.qa-docs { list-style: none; padding: 0; margin: 0; }
.qa-docs li { padding: 7px 0; border-bottom: 1px solid var(--border-color-primary);
  display: flex; flex-direction: column; gap: 2px; }
.qa-doc-title { font-size: 0.9rem; }
.qa-doc-meta, .qa-more { font-size: 0.78rem; color: var(--body-text-color-subdued); }
.qa-file { font-family: var(--font-mono); font-size: 0.92em; }
details.qa-turn { border: 1px solid var(--border-color-primary); border-radius: 10px;
  margin-bottom: 10px; background: var(--background-fill-secondary); }
details.qa-turn > summary { cursor: pointer; padding: 9px 12px; display: flex; gap: 10px;
  align-items: baseline; justify-content: space-between; font-size: 0.9rem; list-style: none; }
details.qa-turn > summary::-webkit-details-marker { display: none; }
details.qa-turn > summary::before { content: "▸"; color: var(--body-text-color-subdued); }
details.qa-turn[open] > summary::before { content: "▾"; }
.qa-turn-q { flex: 1; font-weight: 600; }
.qa-tag { white-space: nowrap; font-size: 0.72rem; padding: 1px 8px; border-radius: 999px;
  background: rgba(79, 70, 229, 0.10); color: #4338ca; }
.qa-tag-abstained { background: rgba(217, 119, 6, 0.14); color: #b45309; }
details.qa-turn > .qa-note { padding: 0 12px; }
.qa-source { margin: 0 10px 10px; padding: 10px 12px 12px; border-radius: 8px;
  background: var(--background-fill-primary); border: 1px solid var(--border-color-primary);
  border-left: 3px solid #6366f1; scroll-margin-top: 8px; transition: box-shadow 0.3s; }
.qa-source.qa-related { border-left-color: #d97706; }
.qa-source.qa-active, .qa-source:target { box-shadow: 0 0 0 2px #818cf8; }
.qa-source.qa-related.qa-active { box-shadow: 0 0 0 2px #f59e0b; }
.qa-source-head { display: flex; gap: 8px; align-items: baseline; }
.qa-n { flex: none; font-size: 0.75rem; font-weight: 700; color: #fff; background: #4f46e5;
  border-radius: 5px; padding: 0 6px; }
.qa-n-related { background: #d97706; }
.qa-title { font-weight: 600; font-size: 0.92rem; line-height: 1.35; overflow-wrap: anywhere; }
.qa-meta { display: flex; flex-wrap: wrap; gap: 2px 12px; font-size: 0.76rem; margin: 4px 0 8px;
  color: var(--body-text-color-subdued); }
.qa-passage { white-space: pre-line; font-size: 0.88rem; line-height: 1.6; overflow-wrap: anywhere;
  color: var(--body-text-color); font-family: Georgia, "Iowan Old Style", "Times New Roman", serif; }
mark.qa-quote { background: rgba(250, 204, 21, 0.38); color: inherit; padding: 1px 0;
  border-radius: 2px; box-decoration-break: clone; -webkit-box-decoration-break: clone; }
strong.qa-span { background: rgba(250, 204, 21, 0.75); font-weight: 700; }
"""
