"""Evaluation: metrics and reports over PRG datasets (retrieval today; grasping and text with the model)."""
