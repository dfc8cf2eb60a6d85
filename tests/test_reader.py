"""The reading model: it loads (checked) and reads; spans are verbatim and inside their quotes;
a corrupt or missing weights file is one clear error; training runs end to end on a tiny slice."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.answers import answer
from qa.config import Settings
from qa.errors import QAError
from qa.load import sha256_file
from qa.reader.model import CONFIG_FILE, WEIGHTS_DIR, WEIGHTS_FILE, ReaderError, load_reader

from .conftest import BENCHMARKS, ROOT, SEEDS

FIXTURE = ("The Eiffel Tower was completed in 1889. It was designed by the engineering company of "
           "Gustave Eiffel. The tower is 330 metres tall and stands in Paris.")


def _int8_matrices(path: Path) -> list[Any]:
    """The int8 weight matrices of a dynamically quantized ONNX file (one per linear layer)."""
    import onnx
    from onnx import numpy_helper

    return [numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer
            if i.name.endswith("_quantized") and i.data_type == onnx.TensorProto.INT8]


def test_shipped_reader_is_small_checked_and_reads() -> None:
    weights = WEIGHTS_DIR / WEIGHTS_FILE
    assert weights.stat().st_size <= 25 * 1024 * 1024
    config = json.loads((WEIGHTS_DIR / CONFIG_FILE).read_text(encoding="utf-8"))
    assert config["sha256"] == sha256_file(weights)
    assert (WEIGHTS_DIR / "MODEL_CARD.md").is_file()
    reader = load_reader()
    assert load_reader() is reader  # once per process
    when, who, height = reader.read("When was the Eiffel Tower completed?", [FIXTURE])[0], \
        reader.read("Who designed the Eiffel Tower?", [FIXTURE])[0], \
        reader.read("How tall is the tower?", [FIXTURE])[0]
    assert FIXTURE[when.start:when.end] == "1889"
    assert "Gustave Eiffel" in FIXTURE[who.start:who.end]
    assert "330 metres" in FIXTURE[height.start:height.end]
    # The reader prefers "no answer" for a window that does not hold one.
    silent = reader.read("Who is the president of Brazil?", [FIXTURE])[0]
    assert silent.margin < when.margin and silent.margin < 0
    # It ships with 7-bit weights (docs/reader.md: the same arithmetic on CPUs with and without VNNI).
    linear = _int8_matrices(weights)
    assert len(linear) == 37 and all(int(w.min()) >= -64 and int(w.max()) <= 64 for w in linear)


def test_reader_reads_many_windows_and_odd_text() -> None:
    reader = load_reader()
    assert reader.read("anything?", []) == []
    readings = reader.read("When was it completed?", ["", "   ", FIXTURE, FIXTURE * 8])
    assert readings[0].start is None and readings[1].start is None
    assert FIXTURE[readings[2].start:readings[2].end] == "1889"
    long = FIXTURE * 8   # longer than one window: cut into several, the best span wins
    assert long[readings[3].start:readings[3].end] == "1889"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300),
       question=st.text(min_size=1, max_size=80))
def test_reader_spans_lie_inside_the_text(text: str, question: str) -> None:
    reading = load_reader().read(question, [text])[0]
    if reading.start is not None:
        assert reading.end is not None and 0 <= reading.start < reading.end <= len(text)


QUESTIONS = st.sampled_from([
    "Which US agency said it has started reaching out to TikTok?", "Where is TikTok's US user data stored?",
    "How many accounts did TikTok remove?", "Who is the CEO of TikTok?", "What did the FCC commissioner ask?",
    "When did the Senate vote on the TikTok ban?", "What is Douyin?", "Who owns TikTok?",
    "Why do lawmakers worry about TikTok?", "What did TikTok say about data access?",
])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=QUESTIONS, suffix=st.sampled_from(["", "?", " please", " exactly", " in the articles"]))
def test_every_marked_span_is_verbatim_inside_its_quote(seeds_index: Path, question: str, suffix: str) -> None:
    reply = answer(question + suffix, index=seeds_index, settings=Settings(abstain_threshold=0.0))
    assert reply.citations, reply.text
    for c in reply.citations:
        source = (SEEDS / c.doc_id).read_text(encoding="utf-8")
        assert source[c.start:c.end] == c.quote
        if c.answer_start is not None:
            assert c.answer_end is not None and c.start <= c.answer_start < c.answer_end <= c.end
            span = source[c.answer_start:c.answer_end]
            assert span == c.quote[c.answer_start - c.start:c.answer_end - c.start] and span.strip() == span
    # With the reader on, the first quote carries the marked span.
    assert reply.citations[0].answer_start is not None or any(c.answer_start is not None for c in reply.citations)


def test_reader_off_uses_the_sentence_scorer(seeds_index: Path) -> None:
    question = "Who is TikTok's chief information and security officer?"
    on = answer(question, index=seeds_index)
    off = answer(question, index=seeds_index, settings=Settings(reader=False))
    assert not on.abstained and "Roland Cloutier" in on.text
    marked = [c for c in on.citations if c.answer_start is not None]
    source = (SEEDS / marked[0].doc_id).read_text(encoding="utf-8")
    assert "Cloutier" in source[marked[0].answer_start:marked[0].answer_end]
    assert all(c.answer_start is None for c in off.citations)  # the scorer marks numbers and dates only


def _copy_weights(tmp_path: Path) -> Path:
    folder = tmp_path / "reader"
    shutil.copytree(WEIGHTS_DIR, folder)
    return folder


def test_corrupt_or_missing_weights_are_one_clear_error(tmp_path: Path, seeds_index: Path) -> None:
    folder = _copy_weights(tmp_path)
    data = bytearray((folder / WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ReaderError, match=r"reader.onnx has sha256 .* \(corrupt or replaced\)"):
        load_reader(folder)
    with pytest.raises(QAError, match="cannot be used"):
        answer("Who owns TikTok?", index=seeds_index, settings=Settings(reader_model=folder))
    (folder / WEIGHTS_FILE).unlink()
    with pytest.raises(ReaderError, match="reader.onnx is missing"):
        load_reader(folder)
    (folder / CONFIG_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ReaderError, match="reader.json is unreadable"):
        load_reader(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReaderError, match="reader.json is missing"):
        load_reader(empty)


def test_cli_says_one_line_for_a_corrupt_reader(tmp_path: Path, seeds_index: Path) -> None:
    folder = _copy_weights(tmp_path)
    (folder / WEIGHTS_FILE).write_bytes(b"not a model")
    config = tmp_path / "qa.toml"
    config.write_text(f'reader_model = "{folder}"\n', encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "qa.cli", "--config", str(config), "ask", "Who owns TikTok?",
                          "--index", str(seeds_index)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qa: error: The reading model in") and "sha256" in lines[0]


def _tiny_squad(root: Path) -> Path:
    """Both SQuAD layouts with 14 one-paragraph articles: 7 held out, 1 for validation, 6 to train."""
    facts = [("Avalon", "Avalon was founded in 1820 by Mary Stone.", "Who founded Avalon?", "Mary Stone"),
             ("Brill", "Brill has a population of 4,000 people.", "What is the population of Brill?", "4,000"),
             ("Corin", "The river Corin flows into the Dane at Mellow.", "Where does the Corin flow?", "the Dane"),
             ("Dale", "Dale's main export is copper ore.", "What does Dale export?", "copper ore")]
    for version in ("v1.1", "v2.0"):
        folder = root / f"squad-{version}-dev"
        folder.mkdir(parents=True)
        paragraphs, questions = [], []
        for i in range(14):
            title, context, question, gold = facts[i % len(facts)]
            title = f"{title}_{i}"
            pid = f"{title}#0"
            paragraphs.append({"pid": pid, "title": title, "para_index": 0, "context": context})
            questions.append({"id": f"{version}-{i}", "pid": pid, "title": title, "question": question,
                              "answers": [gold], "is_impossible": False})
            if version == "v2.0":
                questions.append({"id": f"{version}-{i}-no", "pid": pid, "title": title,
                                  "question": "What colour is the moon over " + title + "?", "answers": [],
                                  "is_impossible": True})
        for name, rows in (("paragraphs.jsonl", paragraphs), ("questions.jsonl", questions)):
            (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


@pytest.mark.slow
def test_train_reader_runs_end_to_end_on_a_tiny_slice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The first run is the command a user types, in its own process; the runs that follow it go
    through the same `qa.cli.main` in this process, which spares each the start-up of torch."""
    from qa.cli import main

    def qa_cli(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["train-reader", "--data", str(data), "--quiet", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    data = _tiny_squad(tmp_path / "data")
    out = tmp_path / "model"
    run = subprocess.run([sys.executable, "-m", "qa.cli", "train-reader", "--data", str(data), "--out", str(out),
                          "--epochs", "1", "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "training on 12 questions of 6 articles (6 unanswerable)" in run.stdout
    assert "held-out v1.1 (gold paragraph)" in run.stdout
    # Every int8 form is scored on validation and the best one ships; the fp32 export stays.
    for form in ("per-channel", "per-channel-7bit", "per-tensor"):
        assert f"int8 {form}: validation" in run.stdout
    report = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert set(report["quantizations"]) == {"per-channel", "per-channel-7bit", "per-tensor"}
    assert report["quantization"] in report["quantizations"]
    # --device auto (the default) trains on a GPU only where torch sees one.
    import torch

    assert report["config"]["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert (out / "reader-fp32.onnx").stat().st_size > (out / WEIGHTS_FILE).stat().st_size
    # The 7-bit form's linear weights lie in -64..64 (no 16-bit saturation on CPUs without VNNI).
    import numpy as np

    from qa.training.train import quantize_int8

    quantize_int8(out / "reader-fp32.onnx", tmp_path / "seven.onnx", per_channel=True, reduce_range=True)
    linear = _int8_matrices(tmp_path / "seven.onnx")
    assert len(linear) == 37 and min(int(w.min()) for w in linear) >= -64 and max(int(w.max()) for w in linear) <= 64
    assert any(int(np.abs(w).max()) > 32 for w in linear)
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    for needed in ("Apache-2.0", "CC BY-SA 4.0", "Held out", "Hyperparameters", "Training time and hardware",
                   "Held-out figures", f"int8 {report['quantization']} (shipped)"):
        assert needed in card
    reader = load_reader(out)   # what it wrote loads, checked against its own sha256
    assert reader.config.sha256 == sha256_file(out / WEIGHTS_FILE)
    assert len(reader.read("Who founded Avalon?", [FIXTURE])) == 1

    # Every epoch ends in a checkpoint: --resume with the same settings continues after the last
    # epoch done (here: none left, so it exports again); other settings are one clear error.
    from qa.training.train import CHECKPOINT_FILE

    assert (out / CHECKPOINT_FILE).is_file()
    base = ["--out", str(out), "--resume"]
    code, stdout, stderr = qa_cli(*base, "--epochs", "1")
    assert code == 0, stderr[-2000:]
    assert f"resuming from {out / CHECKPOINT_FILE} after epoch 1" in stdout
    assert json.loads((out / "training.json").read_text(encoding="utf-8"))["epochs"] == report["epochs"]
    # A checkpoint written before --own-words-train took several files (one path, "" for none) resumes.
    import torch

    state = torch.load(out / CHECKPOINT_FILE, weights_only=False)
    assert state["config"]["own_words_train"] == ()
    state["config"]["own_words_train"] = ""
    torch.save(state, out / CHECKPOINT_FILE)
    # --finish exports what a run cut short has done (the epochs asked for no longer matter).
    code, stdout, stderr = qa_cli(*base, "--epochs", "3", "--finish")
    assert code == 0, stderr[-2000:]
    assert "--finish: exporting the best of the 1 epochs trained; 2 not run" in stdout
    assert json.loads((out / "training.json").read_text(encoding="utf-8"))["epochs"] == report["epochs"]
    code, stdout, stderr = qa_cli(*base, "--epochs", "1", "--lr", "0.0002")
    assert code == 2 and "lr: 0.0001 then, 0.0002 now" in stderr
    assert "Traceback" not in stderr

    # --init continues from that run: its fp32 export loads back into the torch network (load_onnx_weights
    # checks that both compute the same logits); a missing or damaged one is one clear error.
    from qa.embed import model_path
    from qa.training.train import FP32_FILE, load_onnx_weights, torch_model

    network = torch_model(model_path("all-MiniLM-L6-v2"))
    before = {k: v.clone() for k, v in network.state_dict().items()}
    load_onnx_weights(network, out / FP32_FILE)
    assert any(not (before[k] == v).all() for k, v in network.state_dict().items())
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / FP32_FILE).write_bytes((out / FP32_FILE).read_bytes()[:5000])
    with pytest.raises(ReaderError, match="onnx cannot read it"):
        load_onnx_weights(network, damaged / FP32_FILE)
    # The continuation also trains on questions in users' own words about a training article
    # (Avalon_0; v1.1 paragraphs) and chooses the epoch on development ones too (Avalon_4, v2.0).
    own_train, own_dev = tmp_path / "own-train.jsonl", tmp_path / "own-dev.jsonl"
    own_train.write_text(
        json.dumps({"pid": "Avalon_0#0", "question": "Which woman set up the town of Avalon?",
                    "answerable": True, "answer": "Mary Stone", "kind": "paraphrase", "note": ""}) + "\n"
        + json.dumps({"pid": "Avalon_0#0", "question": "Who was mayor of Avalon in 1820?", "answerable": False,
                      "answer": "", "kind": "near_miss", "note": "another role"}) + "\n", encoding="utf-8")
    own_dev.write_text(own_train.read_text(encoding="utf-8").replace("Avalon_0#0", "Avalon_4#0"), encoding="utf-8")
    # --own-words-train is given once per file, in order; the card names each file. A file whose
    # lines carry their own paragraph (title, context: news written for training) needs no SQuAD pid.
    own_more = tmp_path / "own-train-more.jsonl"
    harbour = {"title": "Dockworkers end strike at Port Alder", "context": "Dockworkers at Port Alder returned to "
               "work on Monday after an 11-day strike, the union's leader, Ines Vidal, said. Cranes resumed at 6 a.m."}
    own_more.write_text(json.dumps({**harbour, "question": "Who heads the dockers' union?", "answerable": True,
                                    "answer": "Ines Vidal", "kind": "paraphrase", "note": ""}) + "\n", encoding="utf-8")
    again = tmp_path / "again"
    code, stdout, stderr = qa_cli("--out", str(again), "--init", str(out), "--epochs", "1", "--seed", "14",
                                  "--own-words-train", str(own_train), "--own-words-train", str(own_more),
                                  "--own-words-dev", str(own_dev))
    assert code == 0, stderr[-2000:]
    assert f"continuing from {out / FP32_FILE}" in stdout
    assert "; 3 questions in users' own words, 2 times an epoch; 2 development questions" in stdout
    assert "own words (dev) F1" in stdout
    continued = json.loads((again / "training.json").read_text(encoding="utf-8"))
    assert continued["config"]["init"] == str(out) and len(continued["earlier"]) == 1
    assert continued["earlier"][0]["config"]["seed"] == 13
    assert continued["examples"]["own_words_train"] == 3 and continued["examples"]["own_words_dev"] == 2
    assert continued["config"]["own_words_train"] == [str(own_train), str(own_more)]
    assert continued["epochs"][0]["own_words_dev"]["questions"] == 2
    # The weights continued compete with the new epochs on validation (epoch 0 if none beats them).
    assert "start: validation v1.1" in stdout and set(continued["start_valid"]) == {"v1", "v2", "own_words_dev"}
    # Questions about a held-out article (Brill_1) cannot be trained on: one clear error.
    held = tmp_path / "held.jsonl"
    held.write_text(own_train.read_text(encoding="utf-8").replace("Avalon_0#0", "Brill_1#0"), encoding="utf-8")
    code, stdout, stderr = qa_cli("--out", str(tmp_path / "refused"), "--own-words-train", str(held))
    assert code == 2 and "names paragraph 'Brill_1#0', which is not among the training articles'" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "refused").exists()
    # A line carrying its paragraph must hold its answer there.
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(own_more.read_text(encoding="utf-8").replace('"answer": "Ines Vidal"', '"answer": "Ana Ruiz"'),
                     encoding="utf-8")
    code, stdout, stderr = qa_cli("--out", str(tmp_path / "refused"), "--own-words-train", str(wrong))
    assert code == 2
    assert "question 1 (\"Who heads the dockers' union?\") has an answer its paragraph does not hold" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "refused").exists()
    assert continued["best_epoch"] in (0, 1)
    again_card = (again / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "These weights continue earlier `qa train-reader` runs" in again_card
    assert f"texts the files carry, `{own_train}` + `{own_more}`, each seen 2 times an epoch" in again_card
    # Each run's augmentation is named, in the list of runs and in the hyperparameters.
    assert "paraphrase p=" in again_card and "other paragraph p=" in again_card
    assert "the question paraphrased (WordNet synonyms" in again_card
    # --epochs 0 with --init trains nothing: the weights are exported again, every int8 form scored anew,
    # and the card describes the run that trained them.
    exported = tmp_path / "exported"
    # --quantization ships the form named (every form is still scored).
    code, stdout, stderr = qa_cli("--out", str(exported), "--init", str(again), "--epochs", "0",
                                  "--quantization", "per-tensor")
    assert code == 0, stderr[-2000:]
    assert "no training (--epochs 0)" in stdout and "int8 per-channel-7bit: validation" in stdout
    assert f"exported {exported / WEIGHTS_FILE} (" in stdout and "MB, int8 per-tensor)" in stdout
    report = json.loads((exported / "training.json").read_text(encoding="utf-8"))
    assert report["quantization"] == "per-tensor" and len(report["quantizations"]) == 3
    assert report["best_epoch"] == 0 and report["epochs"] == [] and len(report["earlier"]) == 2
    assert report["earlier"][1]["examples"]["train_questions"] == 12
    card = (exported / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "This run trained nothing (`--epochs 0`)" in card and "exported again without training" in card
    # The hyperparameters and epoch table are those of the run that trained (run 2: seed 14, one epoch).
    assert "\nepochs 1, learning rate" in card and "per window (question at most 64), seed 14;" in card
    assert "\n| 1 | " in card
    assert load_reader(exported).config.sha256 == sha256_file(exported / WEIGHTS_FILE)
    code, stdout, stderr = qa_cli("--out", str(tmp_path / "third"), "--init", str(tmp_path / "nowhere"))
    assert code == 2
    assert stderr.startswith(f"qa: error: Cannot continue training from {tmp_path / 'nowhere' / FP32_FILE}: "
                             "the file is missing.")


def test_the_shipped_int8_reader_can_be_trained_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--init qa/reader/weights` (no fp32 export there): the int8 weights are dequantized into the
    torch network, which then computes nearly the file's logits; the check is live on this path."""
    import numpy as np

    import qa.training.train as train
    from qa.embed import model_path

    assert train.init_file(WEIGHTS_DIR) == WEIGHTS_DIR / WEIGHTS_FILE
    network = train.torch_model(model_path("all-MiniLM-L6-v2"))
    base = {k: v.clone() for k, v in network.state_dict().items()}
    train.load_onnx_weights(network, WEIGHTS_DIR / WEIGHTS_FILE)
    state = network.state_dict()
    changed = [k for k in state if not (base[k] == state[k]).all()]
    assert any(k.startswith("bert.encoder.layer.5.") for k in changed) and "head.weight" in changed
    assert not any(k.startswith("bert.embeddings.") and ".LayerNorm." not in k for k in changed)
    # On a real window the dequantized network finds the same best start and end as onnxruntime.
    from qa.reader.model import batch_arrays, question_ids, text_tokens, windows

    ids, offsets = text_tokens(FIXTURE)
    arrays = batch_arrays([windows(question_ids("When was the Eiffel Tower completed?"), ids, offsets, 192, 64)[0]])
    ours = train.torch_logits(network)(*arrays)
    theirs = train.onnx_logits(WEIGHTS_DIR / WEIGHTS_FILE, threads=1)(*arrays)
    assert [int(np.argmax(a)) for a in ours] == [int(np.argmax(b)) for b in theirs]
    monkeypatch.setitem(train.INIT_LOGIT_GAP, "int8", 0.0)
    with pytest.raises(ReaderError, match="logits differ from the file's"):
        train.load_onnx_weights(network, WEIGHTS_DIR / WEIGHTS_FILE)


def test_train_reader_on_cuda_without_a_gpu_is_one_clear_error(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: --device cuda is valid here")
    run = subprocess.run([sys.executable, "-m", "qa.cli", "train-reader", "--data", str(tmp_path),
                          "--device", "cuda"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 2
    assert run.stderr.startswith("qa: error: --device cuda was asked for, but no CUDA GPU is visible to torch. "
                                 "Use --device cpu")


def test_train_reader_says_what_is_missing(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "qa.cli", "train-reader", "--data", str(tmp_path / "nowhere")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 2
    assert run.stderr.startswith("qa: error: Benchmark data for squad not found at") and "--data" in run.stderr


def test_the_split_holds_out_the_named_articles() -> None:
    if not (BENCHMARKS / "squad-v2.0-dev").is_dir():
        pytest.skip(f"SQuAD data not found at {BENCHMARKS} (it lies beside the repository in CI)")
    from qa.training.data import load_squad

    squad = load_squad()
    split = squad.split
    assert sorted(split.held_out) == [
        "Civil_disobedience", "Computational_complexity_theory", "Ctenophora", "European_Union_law",
        "French_and_Indian_War", "Geology", "Huguenot", "Immune_system", "Imperialism", "Jacksonville,_Florida",
        "Oxygen", "Packet_switching", "Prime_number", "Private_school", "Scottish_Parliament",
        "Sky_(United_Kingdom)", "University_of_Chicago"]
    assert len(squad.part(1, split.held_out)) == 2937
    held_v2 = squad.part(2, split.held_out)
    assert len(held_v2) == 5952 and sum(not q.answerable for q in held_v2) == 3070
    assert not (split.train | split.valid) & split.held_out and not split.train & split.valid
    assert all(q.title not in split.held_out for q in squad.training(split.train))


def test_entity_swapped_questions_ask_about_what_the_paragraph_lacks() -> None:
    import random

    from qa.training.data import QAItem
    from qa.training.train import FeatureMaker, TrainConfig, mentions, swapped_question

    # "Thus" opens a sentence; the text also writes it in lower case, so it is no name.
    assert mentions("In what year did Mary Stone's mill open in Avalon? Thus 1,820 men came, thus 3.") == \
        ["Mary Stone", "Avalon", "1,820", "3"]
    context = "Avalon was founded in 1820 by Mary Stone. Thus it grew, and thus it stayed."
    item = QAItem("q1", "Avalon", "When did Mary Stone found Avalon?", context, ("1820",))
    pool = ["Avalon", "Brill", "John Dale", "1900", "Mary Stone"]
    seen = set()
    for seed in range(30):
        question = swapped_question(item, pool, random.Random(seed))
        assert question is not None and question != item.question
        new = next(x for x in pool if x in question and x not in item.question)
        assert new in ("Brill", "John Dale") and new not in context  # a name for a name, never 1900
        seen.add(question)
    assert len(seen) > 1
    number = QAItem("q2", "Avalon", "What happened in 1820?", context, ("it was founded",))
    assert swapped_question(number, pool, random.Random(0)) == "What happened in 1900?"
    assert swapped_question(QAItem("q3", "Avalon", "What grew?", context, ("it",)), pool, random.Random(0)) is None

    # FeatureMaker makes them from the article's names: "Thus" is written in lower case there too.
    other = QAItem("q4", "Avalon", "Who owns the mill at Brill?", "Thus the mill at Brill is owned by Tom Lee.",
                   ("Tom Lee",))
    third = QAItem("q5", "Avalon", "Where is Brill?", "Brill lies near Avalon.", ("near Avalon",))
    maker = FeatureMaker(TrainConfig(swap_prob=1.0))
    made = [maker.swapped([item, other, third], random.Random(seed)) for seed in range(20)]
    assert all(len(copies) == 3 for copies in made)
    assert all(not c.answerable and c.qid.endswith("-swap") and c.context for copies in made for c in copies)
    third_copies = {copies[2].question for copies in made}
    assert third_copies <= {"Where is Mary Stone?", "Where is Tom Lee?"} and len(third_copies) == 2
    plain = FeatureMaker(TrainConfig(swap_prob=0.0))
    assert plain.features([item], random.Random(1)) and plain.swapped_counts == [0]


def test_training_questions_in_other_words_and_other_paragraphs() -> None:
    import random

    from qa.training.data import QAItem
    from qa.training.train import FeatureMaker, TrainConfig, other_paragraph, reworded_question

    first = "Avalon was founded in 1820 by Mary Stone. The town grew around the mill."
    second = "The mill at Brill was owned by Tom Lee, who sold it in 1901."
    third = "Mary Stone also founded the school of Avalon in 1835."
    item = QAItem("q1", "Avalon", "When did Mary Stone found the town of Avalon?", first, ("1820",))
    # Another paragraph of the article, never one that holds the answer.
    assert {other_paragraph(item, [first, second, third], random.Random(s)) for s in range(20)} == {second, third}
    assert other_paragraph(item, [first, "In 1820 nothing else happened."], random.Random(0)) is None
    # Without WordNet a question is reworded by dropping one filler word, never the question word.
    dropped = {reworded_question(item, random.Random(s), None) for s in range(30)}
    assert item.question in dropped and len(dropped) > 1
    assert all(q.startswith("When ") and len(q.split()) >= len(item.question.split()) - 1 for q in dropped)
    maker = FeatureMaker(TrainConfig(other_paragraph_prob=1.0, paraphrase_prob=1.0, swap_prob=0.0))
    pool = [item, QAItem("q2", "Avalon", "Who owned the mill at Brill?", second, ("Tom Lee",)),
            QAItem("q3", "Avalon", "What did Mary Stone found in 1835?", third, ("the school of Avalon",))]
    made = maker.augmented(pool, random.Random(3))
    paired = [q for q in made if q.qid.endswith("-other")]
    assert len(made) == 6 and len(paired) == 3 and maker.other_counts == [3]
    assert all(not q.answerable and q.context != next(p.context for p in pool if p.qid == q.qid[:2])
               for q in paired)
    # The default recipe draws nothing for these: the shipped reader's training is unchanged.
    default = FeatureMaker(TrainConfig())
    assert default.augmented(pool, random.Random(3)) == pool and default.other_counts == [0]


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--epochs", "0", "Invalid --epochs value: 0. It must be 1 or more (0 only with --init: re-export those "
                      "weights in each int8 form without training)."),
    ("--max-len", "50", "Invalid --max-len value: 50. It must lie in 96..512 (the model reads 512)."),
    ("--lr", "2", "Invalid --lr value: 2.0. It must lie in (0, 1)."),
    ("--limit", "-1", "Invalid --limit value: -1. It must be 0 (all) or more."),
    ("--swap-prob", "1.5", "Invalid --swap-prob value: 1.5. It must lie in 0..1."),
    ("--quantization", "fp16", "Invalid --quantization value: fp16. It must be auto or one of per-channel, "
                               "per-channel-7bit, per-tensor."),
    ("--own-words-repeat", "0", "Invalid --own-words-repeat value: 0. It must be 1 or more.")])
def test_train_reader_refuses_bad_settings_in_one_line(tmp_path: Path, flag: str, value: str, says: str) -> None:
    run = subprocess.run([sys.executable, "-m", "qa.cli", "train-reader", "--data", str(tmp_path), flag, value],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 2
    assert run.stderr.strip() == f"qa: error: {says}"
