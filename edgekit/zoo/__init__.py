"""The built-in stack-model zoo. Importing this package registers every kind."""

from edgekit.zoo import (  # noqa: F401
    diffusion_policy,
    humanoid,
    omni_body,
    reward_model,
    vla,
    world_model,
)
from edgekit.zoo.base import ZOO, StackModel, ZooEntry

__all__ = ["ZOO", "StackModel", "ZooEntry"]
