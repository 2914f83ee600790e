"""From raw files to a corpus the models read: ``extract`` (feature tables from recordings),
``synthetic`` (the default corpus),
``ingest`` (a user's timelines), ``validation``, ``alignment`` (features onto the track's
frame times), ``embeddings`` (CLIP unit length), ``normalization`` (fitted on train only), ``corpus`` (the memory-mapped
result and its splits) and ``build`` (the align and normalize stages' drivers)."""
__all__ = ["alignment", "build", "corpus", "embeddings", "extract", "ingest", "normalization", "synthetic", "validation"]
