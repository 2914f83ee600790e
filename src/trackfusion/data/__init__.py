"""From raw files to a corpus the models read: ``synthetic`` (the default corpus),
``ingest`` (a user's timelines), ``validation``, ``alignment`` (features onto the track's
frame times), ``embeddings`` (CLIP unit length), ``normalization`` (fitted on train only), ``corpus`` (the memory-mapped
result and its splits) and ``build`` (the align and normalize stages' drivers)."""
__all__ = ["alignment", "build", "corpus", "embeddings", "ingest", "normalization", "synthetic", "validation"]
