"""DVC stage `predict`: roll both models out on the test videos and export the edits as .otio."""
import argparse
import logging
from pathlib import Path

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.params import stage_params
from trackfusion.results import run_facts_path
from trackfusion.experiment.predict import run_predict
from trackfusion.learn import MODEL_KINDS
from trackfusion.learn.rollout import rollout_context

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--counts", required=True, help="each video's roll-out counts per model (JSON)")
    for kind in MODEL_KINDS:
        parser.add_argument(f"--{kind}", required=True, help=f"the {kind} model file")
    args = parser.parse_args()
    params = stage_params(args.params)
    run_predict(
        args.corpus,
        {kind: Path(getattr(args, kind)) for kind in MODEL_KINDS},
        args.out,
        args.metrics,
        context=rollout_context(params),
        teacher_context=params.model.seq_len,  # the windows of training's test figures, so the two agree
        active_threshold=params.predict.threshold,
        param_tolerance=params.predict.param_tolerance,
        edit_rate=params.predict.edit_rate,
        facts_path=run_facts_path("predict"),
        state_confidence=params.predict.state_confidence,
        counts_path=args.counts,
        recall_placement=params.predict.recall_placement,
        toggle_threshold=params.predict.toggle_threshold,
    )
