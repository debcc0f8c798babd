"""Serving PRG: ``prg serve`` (an HTTP API for robots and a web page, :mod:`prg.serve.app`) and ``prg chat``
(a terminal session, :mod:`prg.serve.chat`). Thin shells over :class:`prg.pipeline.PRGPipeline`."""
