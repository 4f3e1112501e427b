"""The built-in stack-model zoo. Importing this package registers every kind (imports torch).

Each kind lives in ``edgekit/models/<kind>/``; this package is the registry of their entries.
"""

from edgekit.models.base import ZOO, StackModel, ZooEntry
from edgekit.models.diffusion_policy import entry as _diffusion_policy  # noqa: F401
from edgekit.models.humanoid import entry as _humanoid  # noqa: F401
from edgekit.models.omni_body import entry as _omni_body  # noqa: F401
from edgekit.models.reward_model import entry as _reward_model  # noqa: F401
from edgekit.models.vla import entry as _vla  # noqa: F401
from edgekit.models.vla_flow import entry as _vla_flow  # noqa: F401
from edgekit.models.world_model import entry as _world_model  # noqa: F401

__all__ = ["ZOO", "StackModel", "ZooEntry"]
