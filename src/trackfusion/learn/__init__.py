"""The models and how they learn: ``dataset`` (windows of a corpus), ``fusion``, ``model``,
``loss``, ``metrics``, ``checkpoint``, ``training`` (one loop, DDP via ``distributed``) and
``rollout`` (an edit generated frame by frame from the model's own output)."""
__all__ = ["checkpoint", "dataset", "distributed", "fusion", "loss", "metrics", "model", "rollout", "training"]
