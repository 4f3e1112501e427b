"""Declared ticks: a user's control loop as data (blocks), carried by every artifact."""

from edgekit.loop.blocks.base import Block, BlockError
from edgekit.loop.blocks.program import BLOCK_KINDS, TickDeclaration, TickProgram, declare_tick

__all__ = ["BLOCK_KINDS", "Block", "BlockError", "TickDeclaration", "TickProgram", "declare_tick"]
