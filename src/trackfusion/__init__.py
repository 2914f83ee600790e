"""trackfusion: learn how a video editor edits, reproducibly (DVC + PyTorch).

The library behind the DVC stages in ``stages/``; ``docs/ARCHITECTURE.md`` maps its modules.
"""
__version__ = "0.1.0"
