"""The models and how they learn: ``dataset`` (windows of a corpus), ``fusion``, ``model``,
``loss``, ``metrics``, ``checkpoint``, ``task`` (what is learned and scored), ``trainer``
(one loop, DDP via ``distributed``, over ``runtime`` and ``fingerprint``), ``recipe`` (the
training stage's run) and ``rollout`` (an edit generated frame by frame from the model's
own output)."""

__all__ = ["checkpoint", "dataset", "distributed", "fingerprint", "fusion", "loss", "metrics", "model", "recipe",
           "rollout", "runtime", "task", "trainer"]  # the submodules

#: every model kind, in the order tables list them (``learn.model.MODEL_CLASSES`` builds each); here,
#: not in ``learn.model``, so the experiment's tables can name the kinds without importing torch
MODEL_KINDS: tuple[str, ...] = ("baseline", "multimodal")
