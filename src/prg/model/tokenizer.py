"""PRG's special tokens on any tokenizer, and the offline test tokenizer. The prompt is built by the processor
(:mod:`prg.model.processor`); the token names live in :mod:`prg.tokens`."""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from prg.tokens import IGNORE_INDEX, IMAGE_TOKEN, POSE_TOKEN, Segment

__all__ = ["IGNORE_INDEX", "IMAGE_TOKEN", "POSE_TOKEN", "Segment", "add_special_tokens", "tiny_tokenizer"]


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
