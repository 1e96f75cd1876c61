"""Risk screening: the shipped ONNX model (``ScreeningModel``) and its scores (``ScreenScores``).

Training (``ops.training.screening_train``) needs the ``train`` extra; the runtime needs only numpy,
onnxruntime and tokenizers.
"""

from core.screening.model import DEFAULT_MODEL_DIR, ScreeningModel, ScreenScores, prepare_text

__all__ = ["DEFAULT_MODEL_DIR", "ScreenScores", "ScreeningModel", "prepare_text"]
