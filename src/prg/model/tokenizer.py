"""PRG special tokens, the offline test tokenizer and the one prompt builder.

The prompt is assembled from separately tokenised pieces so that every token knows which segment it belongs to
(image, retrieved document, instruction, answer): AdaptiveMixture's router reads these segment ids, and the
truncation rule (cut documents, never the instruction or the image) needs them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

POSE_TOKEN = "[POSE]"
IMAGE_TOKEN = "<image>"
IGNORE_INDEX = -100  # label value the HF causal-LM loss skips


class Segment(IntEnum):
    """Which part of the prompt a token belongs to."""

    IMAGE = 0
    DOCUMENT = 1
    INSTRUCTION = 2
    ANSWER = 3


def add_special_tokens(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """Add ``[POSE]`` and ``<image>`` as extra special tokens where missing.

    Returns ``{"pose": id, "image": id}`` resolved with ``convert_tokens_to_ids`` (never by tokenising the string,
    which splits it into several pieces on tokenizers that do not know it). The caller resizes the model's
    embeddings to ``len(tokenizer)``.
    """
    vocab = tokenizer.get_vocab()
    missing = [t for t in (POSE_TOKEN, IMAGE_TOKEN) if t not in vocab]
    if missing:
        # extend, do not replace: pretrained tokenizers (SmolLM2, LLaVA) have their own extra special tokens
        tokenizer.add_special_tokens({"extra_special_tokens": missing}, replace_extra_special_tokens=False)
    ids: dict[str, int] = {}
    for name, token in (("pose", POSE_TOKEN), ("image", IMAGE_TOKEN)):
        i = tokenizer.convert_tokens_to_ids(token)
        if not isinstance(i, int) or i == tokenizer.unk_token_id:
            raise RuntimeError(f"{token} did not resolve to a single id: {i}")
        ids[name] = i
    return ids


_TINY_CORPUS = [
    "Turn off the breaker before you touch the busbar.",
    "Verify the absence of voltage with a tested voltage detector.",
    "Hand me the insulated screwdriver, not the metal one.",
    "Wear gloves rated for the voltage of the circuit.",
    "The cabinet must be locked out and tagged out first.",
    "Pick up the torque wrench by its handle.",
    "Chemical containers are carried with both hands.",
    "Never grasp a flask by its neck when it is hot.",
    "Use the pipette to move small volumes of acid.",
    "The safety goggles protect the eyes from splashes.",
    "Grasp the hammer near the end of the handle.",
    "Store the solvent bottle away from heat sources.",
    "The kettle is unplugged before cleaning.",
    "Place the knife with the blade facing away.",
    "According to rule 4.2 the detector is checked on a live source.",
    "The answer cites the document and the section.",
    "I need to confirm this cabinet is dead before I open it.",
    "Give me the tool that measures the current.",
    "Which object should the robot pick up first?",
    "The grasp is placed on the handle of the object.",
    "Read the regulation and then choose the right tool.",
    "A multimeter measures voltage, current and resistance.",
    "Insulating mats are laid in front of the switchgear.",
    "The wrench, the pliers and the screwdriver lie on the table.",
    "Hot plates stay on until the beaker has cooled down.",
    "Label every bottle with its contents and the date.",
    "Close the valve of the gas cylinder after use.",
    "The operator reads the manual before starting the machine.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100.",
    "USER: ASSISTANT: system: documents: [doc] instruction answer",
]


def tiny_tokenizer(vocab_size: int = 300) -> PreTrainedTokenizerFast:
    """An offline byte-level BPE tokenizer (~``vocab_size`` tokens) with pad/bos/eos, ``[POSE]`` and ``<image>``.

    Byte-level, so any text encodes (no unknown tokens); trained in milliseconds on a built-in corpus.
    """
    specials = ["<pad>", "<s>", "</s>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_TINY_CORPUS, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    add_special_tokens(tok)
    return tok


def _encode(tokenizer: PreTrainedTokenizerBase, text: str, split_special: bool = True) -> list[int]:
    # split_special: a literal "<image>" or "[POSE]" inside a document or instruction must stay plain text,
    # otherwise it would add an image slot or a spurious pose position
    return list(tokenizer.encode(text, add_special_tokens=False, split_special_tokens=split_special)) if text else []


def build_prompt(
    tokenizer: PreTrainedTokenizerBase,
    instruction: str,
    documents: Sequence[str],
    n_image_tokens: int,
    answer: str | None = None,
    max_length: int | None = None,
    system: str = "Answer using the documents and cite them. Mark each grasp with the pose token.",
) -> tuple[list[int], list[int]]:
    """Tokenise one PRG prompt; returns ``(input_ids, segment_ids)``, both of length ``L <= max_length``.

    Layout (one line per piece; segment in brackets)::

        <bos> system: {system}\\n                 [instruction]
        [doc 1] {document 1}\\n ...               [document]
        <image> x n_image_tokens                  [image]
        \\nUSER: {instruction}\\nASSISTANT:        [instruction]
        {answer}</s>                              [answer, only when ``answer`` is given]

    Truncation (when ``max_length`` is exceeded) only touches documents: documents are kept in retrieval order
    while they fit; the first one that does not fit is cut to the remaining budget (dropped if not even its
    header fits), and all later ones are dropped. The instruction, image and answer are never cut: if they
    alone exceed ``max_length`` a ``ValueError`` says by how much.
    """
    if n_image_tokens < 0:
        raise ValueError("n_image_tokens must be >= 0")
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    head = bos + _encode(tokenizer, f"system: {system}\n")
    tail = _encode(tokenizer, f"\nUSER: {instruction}\nASSISTANT:")
    answer_ids = []
    if answer is not None:
        answer_ids = [*_encode(tokenizer, f" {answer}", split_special=False), tokenizer.eos_token_id]
    fixed = len(head) + n_image_tokens + len(tail) + len(answer_ids)

    budget = None if max_length is None else max_length - fixed
    if budget is not None and budget < 0:
        raise ValueError(
            f"prompt does not fit max_length={max_length}: system + image ({n_image_tokens} tokens) + instruction"
            f" + answer need {fixed} tokens even with every document dropped"
        )

    doc_ids: list[int] = []
    for i, doc in enumerate(documents, start=1):
        header = _encode(tokenizer, f"[doc {i}] ")
        body = header + _encode(tokenizer, f"{doc}\n")
        if budget is not None and len(doc_ids) + len(body) > budget:
            room = budget - len(doc_ids)
            if room > len(header):  # keep a cut document only if some of its text survives
                doc_ids += body[:room]
            break
        doc_ids += body

    ids = head + doc_ids + [image_id] * n_image_tokens + tail + answer_ids
    seg = (
        [Segment.INSTRUCTION] * len(head)
        + [Segment.DOCUMENT] * len(doc_ids)
        + [Segment.IMAGE] * n_image_tokens
        + [Segment.INSTRUCTION] * len(tail)
        + [Segment.ANSWER] * len(answer_ids)
    )
    return ids, [int(s) for s in seg]


def answer_labels(input_ids: Sequence[int], segment_ids: Sequence[int]) -> list[int]:
    """LM labels for a built prompt: the token id on answer tokens, ``IGNORE_INDEX`` elsewhere."""
    return [t if s == Segment.ANSWER else IGNORE_INDEX for t, s in zip(input_ids, segment_ids, strict=True)]
