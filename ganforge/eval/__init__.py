"""Evaluation: the interfaces of metrics and feature extractors, and scoring checkpoints."""
