"""Build the engine a config names: its registered factory, checked when asked.

Above both the interface and registry (``base``) and the self-check (``self_check``),
so that each of those imports only what lies below it.
"""

from __future__ import annotations

from dav2_ros.engines.base import Engine, EngineConfig, resolve_backend
from dav2_ros.engines.self_check import build_checked
from dav2_ros.model import DepthAnythingV2


def create_engine(model: DepthAnythingV2, config: EngineConfig) -> Engine:
    """Build the engine ``config.backend`` names.

    ``backend`` is a registered name, or ``"package.module:factory"`` for a plugin
    (imported, then called like a registered factory). With ``config.self_check`` set,
    an engine other than fp32 torch is checked against fp32 torch once built, and one
    that fails is closed and refused (``SelfCheckFailed``) unless ``allow_deviation``.
    """
    factory = resolve_backend(config.backend)
    if config.precision == "auto" and config.backend != "auto":
        factory = resolve_backend("auto")  # tries this backend's precisions, fastest first
    if config.self_check is None or factory is resolve_backend("auto"):  # checks each one
        return factory(model, config)
    return build_checked(factory, model, config)
