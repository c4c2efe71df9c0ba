"""The type names of the public API: the enumerations of the request fields as ``Literal``
types, so that a type checker catches ``resolution="2k"`` or ``output_format="jpg"``.

Other models (``model="..."``) take any further input field through ``extra={...}``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs start-up time: the aliases are built when first used

__all__ = [
    "AspectRatio",
    "Mode",
    "OutputFormat",
    "PromptOptimizeMode",
    "Provider",
    "Resolution",
    "Sequential",
    "State",
]

if TYPE_CHECKING:
    from typing import Literal, Tuple, Union

    #: ``"2K"`` or ``"3K"`` (seedream-5-0), ``"2K"`` or ``"4K"`` (seedream-4-5), or an explicit
    #: size as ``(width, height)`` in pixels (seedream-5-0: 3686400 to 16777216 pixels, ratio
    #: from 1:16 to 16:1). At run time a ``"WIDTHxHEIGHT"`` string is accepted too.
    Resolution = Union[Literal["2K", "3K", "4K"], Tuple[int, int]]

    #: The aspect ratios of Seedream.
    AspectRatio = Literal["1:1", "2:3", "3:2", "4:3", "3:4", "9:16", "16:9", "21:9"]

    #: ``image-to-image`` needs ``image_urls``.
    Mode = Literal["text-to-image", "image-to-image"]

    #: ``sequential_image_generation``; ``True`` is ``"auto"``, ``False`` is ``"disabled"``.
    Sequential = Union[Literal["disabled", "auto"], bool]

    #: The image format of the results.
    OutputFormat = Literal["jpeg", "png"]

    #: Which APIXO provider pool serves the task.
    Provider = Literal["auto", "value", "official"]

    #: ``prompt_optimize_mode``.
    PromptOptimizeMode = Literal["standard"]

    #: The state of a task; ``success`` and ``failed`` are terminal.
    State = Literal["pending", "processing", "success", "failed"]
else:
    def __getattr__(name: str) -> object:
        if name not in __all__:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from typing import Literal, Tuple, Union

        aliases = {
            "Resolution": Union[Literal["2K", "3K", "4K"], Tuple[int, int]],
            "AspectRatio": Literal["1:1", "2:3", "3:2", "4:3", "3:4", "9:16", "16:9", "21:9"],
            "Mode": Literal["text-to-image", "image-to-image"],
            "Sequential": Union[Literal["disabled", "auto"], bool],
            "OutputFormat": Literal["jpeg", "png"],
            "Provider": Literal["auto", "value", "official"],
            "PromptOptimizeMode": Literal["standard"],
            "State": Literal["pending", "processing", "success", "failed"],
        }
        globals().update(aliases)
        return aliases[name]
