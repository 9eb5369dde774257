"""A run's model side, prepared from its options: the model loaded, what to capture
found, and how its images are preprocessed (for ``render`` and ``sites``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..attention import AttentionRecorder
    from ..images import Preprocessor
    from ..loading import LoadedModel
    from ..options import CaptureOptions

__all__ = ["prepare_model"]


def prepare_model(
    model: str, capture: CaptureOptions
) -> tuple[LoadedModel, AttentionRecorder, Preprocessor]:
    """Load ``model`` and find what to capture.  What loading found worth saying is in
    ``loaded.notes`` (said by the caller); ``preprocessor.notes`` once the run worked."""
    import warnings

    from ..attention import AttentionRecorder
    from ..images import Preprocessor
    from ..loading import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # library chatter; our own notes say what matters
        loaded = load_model(
            model,
            pretrained=capture.pretrained,
            checkpoint=capture.checkpoint,
            img_size=capture.img_size,
            device=capture.device,
            dtype=capture.dtype,
        )
    recorder = AttentionRecorder(loaded.module, capture.capture)
    preprocessor = Preprocessor.for_model(
        loaded.module,
        capture.img_size,
        mean=capture.mean,
        std=capture.std,
        resize=capture.resize,
        image_processor=loaded.image_processor,
    )
    return loaded, recorder, preprocessor
