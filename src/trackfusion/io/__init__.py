"""Files in and out, one module per format: ``sequences`` (the editors' track frames,
``sequences.npz``), ``features`` (the per-video feature CSVs), ``timeline`` (editors'
timelines through OpenTimelineIO: .otio, FCP 7 / Premiere XML, EDL)."""
__all__ = ["features", "sequences", "timeline"]
