"""The experiment's answer and its use: ``predict`` (roll-outs scored and exported),
``edit`` (a trained model applied to a new recording), ``references`` (never / random /
periodic / content rule / ceiling), ``compare`` (the table, pictures and write-up) and
``dvc_experiments`` (seeds and the shuffle control from `dvc exp show`)."""
__all__ = ["compare", "dvc_experiments", "edit", "predict", "references"]
