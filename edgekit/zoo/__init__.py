"""The built-in stack-model zoo. Importing this package registers every kind."""

from edgekit.zoo import humanoid, omni_body, reward_model, vla, world_model  # noqa: F401
from edgekit.zoo.base import ZOO, StackModel, ZooEntry

__all__ = ["ZOO", "StackModel", "ZooEntry"]
