"""Files: checkpoints (model and training state, the best record), the run folder's files,
rebuilding networks for inference, and writing samples."""
