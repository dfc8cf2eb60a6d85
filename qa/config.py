"""`Settings`: every knob in one frozen object, built at the edge (CLI, app, tests) and passed down."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from qa.errors import SettingsError

MODES = ("hybrid", "dense", "bm25")
CHOICES = {
    "encoder_backend": ("onnx", "torch", "sentence-transformers"),
    "encoder_precision": ("fp32", "int8"),
    "device": ("cpu", "cuda", "auto"),
    "sentence_vectors": ("pooled", "separate"),
    "dense_index": ("auto", "flat", "ivf", "hnsw"),
    "ivf_codec": ("sq8", "pq", "flat"),
    "engine": ("local", "ray"),
    "ocr": ("auto", "off", "force"),
}
# Settings that are gone, and what took their place (a settings file that still names one gets
# this line instead of "unknown setting").
RENAMED = {
    "feedback_path": "feedback_path is no longer a setting: votes are stored in the database (setting "
                     "database, default qa.sqlite3) with the saved conversations. Remove it from your "
                     "settings; an old feedback.jsonl is left as it was.",
}
# An API key shorter than this is refused: it is the only lock on the API beyond this machine.
MIN_API_KEY_CHARS = 16


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine's loopback address (only this machine reaches a server on it)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """All of `qa`'s settings. Unknown names raise `SettingsError` (see `from_mapping`).

    Chunking is measured in cl100k_base tokens; the model reads at most 256 word pieces, so
    200 tokens leave room for the tokenizers' disagreement.
    """

    corpus: Path = Path("seeds")
    index: Path = Path("index")
    model: str = "all-MiniLM-L6-v2"
    chunk_tokens: int = 200
    chunk_overlap_tokens: int = 40
    top_k: int = 5
    mode: str = "hybrid"
    candidates: int = 50
    # Weight of the dense z-score in the hybrid fusion; BM25 gets 1 - dense_weight.
    # Tuned on BEIR SciFact *train* queries (see eval/README.md), never on test.
    dense_weight: float = 0.5
    # Weight of the best sentence similarity inside a chunk, mixed into the chunk's dense score.
    sentence_weight: float = 0.3
    # Answer composition and abstention (calibrated on eval/qa_pairs.jsonl).
    max_answer_sentences: int = 3
    # Answers are read by the shipped reading model (qa/reader); false = the sentence scorer
    # alone (faster, weaker; kept for comparison).
    reader: bool = True
    # What the reader reads (qa/reading.py, docs/reading.md): the whole of the first N retrieved
    # passages (at most 20), whatever words they share with the question, packed into windows of
    # whole sentences; 0, windows around the sentence scorer's three best sentences (the reading
    # before, kept for comparison).
    reader_passages: int = 5
    # With reader_passages: at most this many word pieces of passage text read per question
    # (passages in rank order; the first is always read whole). 0 = no limit.
    reader_tokens: int = 700
    # With reader_passages: stop reading once a window's span beats its no-answer score by this
    # margin (the passages are read in rank order, two windows at a time). 0 = read them all.
    reader_stop_margin: float = 2.0
    # A reader trained with `qa train-reader --out DIR`; left out, the one shipped with qa.
    reader_model: Path | None = None
    # Below this answer confidence the reply abstains. Left out: the threshold fitted with the
    # confidence model in use (eval/README.md, "Fitted constants").
    abstain_threshold: float | None = None
    # The encoder: "onnx" (default: the model exported once to ONNX and run by onnxruntime),
    # "torch" (the same model in torch; the reference), or "sentence-transformers" (qa's
    # pre-0.3 path, SentenceTransformer.encode; kept to compare against).
    encoder_backend: str = "onnx"
    # "fp32", or "int8" (onnx only; its retrieval cost is measured in docs/speed.md).
    encoder_precision: str = "fp32"
    # Where encoders and the reader run: "cpu", "cuda", or "auto" (a GPU when there is one).
    device: str = "cpu"
    # Sentence vectors: "separate" (each sentence embedded on its own; the fitted answer and
    # confidence constants assume these), or "pooled" from the tokens of the chunk pass, less half
    # the chunk's mean (one encoder pass: full SciFact builds 1.7x faster again, same SciFact
    # nDCG@10 and seed hit@1, but seed hit@5 lower and near misses told from answers less well,
    # even with the answer constants refitted for them). docs/speed.md.
    sentence_vectors: str = "separate"
    # Where ONNX exports of the encoder are cached (made on first use, checked by sha256).
    cache_dir: Path = Path("~/.cache/qa")
    # The dense layer (qa/index/dense.py): "auto" is exact "flat" below ann_threshold chunks and
    # "ivf" at or above it; "hnsw" on request. Changing it rebuilds only that layer, from the
    # stored vectors. 0 for ivf_nlist / ivf_nprobe: chosen from the corpus size (docs/SCALING.md).
    dense_index: str = "auto"
    ann_threshold: int = 50_000
    ivf_nlist: int = 0
    ivf_nprobe: int = 0
    ivf_codec: str = "sq8"
    hnsw_m: int = 32
    hnsw_ef_search: int = 64
    # Where a build chunks and embeds: "local" (this process) or "ray" (a Ray cluster through
    # Ray Data; `pip install 'qa[ray]'`). ray_address None starts a local Ray on this machine.
    engine: str = "local"
    ray_address: str | None = None
    ray_actors: int = 2               # encoder actors (each loads the encoder once)
    ray_cpus_per_actor: float = 1.0
    ray_gpus_per_actor: float = 0.0
    # Texts per encoder batch at most (batches are also capped by padded word pieces).
    embed_batch_size: int = 64
    threads: int = 2
    # Progress bars while embedding. Off for library calls; the CLI and the app turn it on.
    show_progress: bool = False
    # Limits on what a request or a corpus may hold (each is refused with a message past it).
    max_question_chars: int = 2000     # a longer question is refused, never echoed
    history_turns: int = 8             # follow-ups read the user's last 8 questions; older ones are ignored
    max_file_mb: float = 20.0          # larger corpus files are skipped with one line
    max_pdf_pages: int = 2_000         # longer PDFs are skipped with one line
    # OCR of scanned pages (qa/ocr.py, docs/ocr.md): "auto" reads pages without a text layer, or
    # with a sliver of one over a page-sized image (a scan with a typed header); "force" every
    # page; "off" none. Needs Debian's tesseract-ocr and tesseract-ocr-eng (`make` installs them).
    ocr: str = "auto"
    max_ocr_pages: int = 300           # pages OCR'd per document at most (about 5 minutes on 2 cores)
    max_image_megapixels: float = 40.0  # a larger image or page (an A4 page at 600 dpi is 35) is skipped
    # OCR results are cached in cache_dir/ocr by page image (see qa/ocr.py); the least recently
    # used are removed past this size.
    max_ocr_cache_mb: float = 200.0
    # Files or folders reached through a symbolic link that leaves the corpus are skipped unless
    # this is True (a link to /etc/passwd inside a corpus must not become a document).
    follow_external_links: bool = False
    # Index files up to this size are read into memory when an index is loaded (and checked
    # against their checksums whole); larger ones are memory-mapped under a read lease, so that a
    # file changed underneath is noticed and never read through a stale map (qa/index/files.py).
    # 0 maps every file that can be mapped.
    index_memory_mb: float = 16.0
    # Web chat
    host: str = "127.0.0.1"
    port: int = 7860
    concurrency: int = 4
    auth_user: str | None = None
    auth_password: str | None = field(default=None, repr=False)
    # More logins for the chat, each "user:password" (a user name holds no ':'); with auth_user,
    # every one of them may log in, and each sees only their own saved conversations.
    logins: tuple[str, ...] = field(default=(), repr=False)
    # Adding and removing documents in the chat. Whatever this says, they are off when the chat
    # is served on an address other than this machine's loopback without a login (auth_*).
    uploads: bool = True
    # The OpenAI-compatible API (/v1/models, /v1/chat/completions; qa/web/openai_api.py): a client
    # sends `Authorization: Bearer <api_key>`. Left out, the API answers only on a loopback
    # address without a login; beyond it, or behind a login, it is off until a key is set.
    api_key: str | None = field(default=None, repr=False)
    # Saved conversations and feedback votes (SQLite, qa/conversations.py). Conversations are
    # kept only on a loopback address or behind a login, each login's apart.
    database: Path = Path("qa.sqlite3")
    # Collections served side by side (qa/collections.py), each "NAME=CORPUS:INDEX", and/or a
    # folder whose sub-folders are qa indexes (each a collection named after its folder, over
    # the corpus it was built from). Neither: one collection, `corpus` and `index`.
    collections: tuple[str, ...] = ()
    collections_folder: Path | None = None

    def __post_init__(self) -> None:
        self._check_types()
        if self.mode not in MODES:
            raise SettingsError(f"Invalid mode value: {self.mode!r}. Choose from {', '.join(MODES)}.")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise SettingsError(f"Invalid {name} value: {getattr(self, name)!r}. "
                                    f"Choose from {', '.join(allowed)}.")
        if self.encoder_precision == "int8" and self.encoder_backend != "onnx":
            raise SettingsError("encoder_precision = \"int8\" needs encoder_backend = \"onnx\" "
                                "(the int8 encoder is an onnxruntime quantization).")
        positive = ("chunk_tokens", "top_k", "candidates", "embed_batch_size", "threads", "ann_threshold",
                    "hnsw_m", "hnsw_ef_search", "ray_actors", "max_pdf_pages", "max_ocr_pages",
                    "max_answer_sentences", "concurrency", "max_question_chars", "history_turns")
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingsError(f"Invalid {name} value: {getattr(self, name)!r}. It must be 1 or more.")
        if not 0 <= self.reader_passages <= 20:
            raise SettingsError(f"Invalid reader_passages value: {self.reader_passages!r}. Choose 0 (windows "
                                "around the best sentences) or 1 to 20 passages.")
        if not 0 <= self.reader_stop_margin <= 100:
            raise SettingsError(f"Invalid reader_stop_margin value: {self.reader_stop_margin!r}. Choose 0 (read "
                                "every passage) or a margin up to 100.")
        if not 0 <= self.reader_tokens <= 20_000:
            raise SettingsError(f"Invalid reader_tokens value: {self.reader_tokens!r}. Choose 0 (no limit) "
                                "or up to 20000 word pieces.")
        for name in ("ivf_nlist", "ivf_nprobe"):
            if getattr(self, name) < 0:
                raise SettingsError(f"Invalid {name} value: {getattr(self, name)!r}. It must be 0 (chosen "
                                    "from the corpus size) or more.")
        if self.ray_cpus_per_actor < 0 or self.ray_gpus_per_actor < 0:
            raise SettingsError("ray_cpus_per_actor and ray_gpus_per_actor must be 0 or more.")
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"Invalid port value: {self.port!r}. It must lie in 1-65535.")
        if not self.index_memory_mb >= 0:
            raise SettingsError(f"Invalid index_memory_mb value: {self.index_memory_mb!r}. It must be 0 or more.")
        for name in ("max_file_mb", "max_image_megapixels", "max_ocr_cache_mb"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"Invalid {name} value: {getattr(self, name)!r}. It must be above 0.")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_tokens:
            raise SettingsError(
                f"Invalid chunk_overlap_tokens value: {self.chunk_overlap_tokens!r}. "
                f"It must be at least 0 and below chunk_tokens ({self.chunk_tokens})."
            )
        if self.chunk_tokens > 240:
            raise SettingsError(
                f"Invalid chunk_tokens value: {self.chunk_tokens!r}. The model reads at most 256 "
                "word pieces; keep chunk_tokens at 240 or below."
            )
        for name in ("dense_weight", "sentence_weight"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise SettingsError(f"Invalid {name} value: {getattr(self, name)!r}. It must lie in [0, 1].")
        if (self.auth_user is None) != (self.auth_password is None):
            raise SettingsError("Set both auth_user and auth_password, or neither.")
        self._check_logins()
        if self.api_key is not None and len(self.api_key.strip()) < MIN_API_KEY_CHARS:
            raise SettingsError(f"Invalid api_key: it has {len(self.api_key.strip())} characters; use at least "
                                f"{MIN_API_KEY_CHARS}, e.g. the output of `python -c \"import secrets; "
                                "print(secrets.token_urlsafe(32))\"`.")

    def _check_logins(self) -> None:
        users = [self.auth_user] if self.auth_user else []
        for number, login in enumerate(self.logins, 1):
            user, colon, password = login.partition(":")
            if not colon or not user.strip() or not password:
                raise SettingsError(f"Invalid logins entry {number}: write it as \"user:password\" (a user name "
                                    "and a password, neither empty).")
            users.append(user)
        doubled = sorted({u for u in users if users.count(u) > 1})
        if doubled:
            raise SettingsError(f"The login {doubled[0]!r} is given more than once; give each user one password.")

    def login_pairs(self) -> list[tuple[str, str]]:
        """Every `(user, password)` that may log in to the chat (empty: no login)."""
        pairs = [(self.auth_user, self.auth_password)] if self.auth_user and self.auth_password else []
        return pairs + [(user, password) for user, _, password in (s.partition(":") for s in self.logins)]

    def _check_types(self) -> None:
        """Each value has its field's type: a TOML `top_k = "eight"` is one clear error."""
        hints = get_type_hints(type(self))
        for f in fields(self):
            value, kind = getattr(self, f.name), hints[f.name]
            # `X | None`: left out (None) is fine; anything else must be an X.
            optional = type(None) in get_args(kind)
            if optional:
                if value is None:
                    continue
                kind = next(k for k in get_args(kind) if k is not type(None))
            left_out = ", or left out" if optional else ""
            if kind is Path:
                if not isinstance(value, str | Path) or not str(value):
                    raise SettingsError(f"Invalid {f.name} value: {value!r}. It must be a path (text){left_out}.")
                object.__setattr__(self, f.name, Path(value))
            elif kind is int:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise SettingsError(f"Invalid {f.name} value: {value!r}. It must be a whole number{left_out}.")
            elif kind is float:
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise SettingsError(f"Invalid {f.name} value: {value!r}. It must be a number{left_out}.")
                object.__setattr__(self, f.name, float(value))
            elif kind is bool:
                if not isinstance(value, bool):
                    raise SettingsError(f"Invalid {f.name} value: {value!r}. It must be true or false{left_out}.")
            elif kind is str and not isinstance(value, str):
                raise SettingsError(f"Invalid {f.name} value: {value!r}. It must be text{left_out}.")
            elif get_origin(kind) is tuple:   # tuple[str, ...]: a TOML list of strings
                if isinstance(value, str) or not isinstance(value, list | tuple) \
                        or not all(isinstance(v, str) for v in value):
                    raise SettingsError(f"Invalid {f.name} value: {value!r}. It must be a list of texts.")
                object.__setattr__(self, f.name, tuple(value))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Build settings from a mapping, rejecting names that are not settings."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        gone = [RENAMED[name] for name in unknown if name in RENAMED]
        if gone:
            raise SettingsError(gone[0])
        if unknown:
            raise SettingsError(
                f"Unknown setting(s): {', '.join(unknown)}. Known settings: {', '.join(sorted(known))}."
            )
        return cls(**dict(values))

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> Settings:
        """Read settings from a TOML file (a flat table of the names above); overrides win."""
        values = cls.read_file(path)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(values)

    @staticmethod
    def read_file(path: str | Path) -> dict[str, Any]:
        """The values of a TOML settings file, unchecked (`from_mapping` checks them).

        Raises:
            SettingsError: the file is missing, unreadable or not valid TOML.
        """
        try:
            with open(path, "rb") as fh:
                values = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise SettingsError(f"Settings file not found: {path}. Check the path or leave it out.") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"Settings file {path} is not valid TOML: {exc}.") from exc
        except OSError as exc:
            raise SettingsError(f"Settings file {path} cannot be read ({exc.strerror}). Check the path.") from exc
        return values

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (unknown names raise)."""
        return self.from_mapping({**dataclasses.asdict(self), **changes})
