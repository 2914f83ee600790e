"""The experiment's answer: ``predict`` (roll-outs scored and exported), ``references``
(never / random / periodic / content rule / ceiling), ``compare`` (the table, pictures
and write-up) and ``dvc_experiments`` (seeds and the shuffle control from `dvc exp show`)."""
__all__ = ["compare", "dvc_experiments", "predict", "references"]
