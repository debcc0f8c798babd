"""PRG: Professional Reasoning Grasping.

A robot sees a workspace, hears an instruction that needs professional knowledge, retrieves the rules from
regulatory documents, answers with citations and grasps the right tool. See ``docs/`` for the architecture.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
