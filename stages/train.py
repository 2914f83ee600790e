"""DVC stages `train_baseline` / `train_multimodal`: train one model, test its best-val checkpoint.

With `train.nproc` > 1 a plain start re-launches this script under torchrun (DDP), so
`dvc repro` needs no other command; under torchrun every rank runs `train_model`.
"""
import argparse
import logging
import sys

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.learn import distributed
from trackfusion.params import stage_params
from trackfusion.results import write_run_facts
from trackfusion.learn import MODEL_KINDS
from trackfusion.learn.recipe import train_model

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", required=True, choices=MODEL_KINDS)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--live-dir", required=True, help="DVCLive folder")
    parser.add_argument("--metrics", required=True, help="test metrics JSON")
    parser.add_argument("--model", required=True, help="the best-val model file")
    parser.add_argument("--checkpoints", required=True, help="resume checkpoints (last.pt, best.pt)")
    parser.add_argument("--no-resume", action="store_true", help="ignore a checkpoint of an interrupted run")
    args = parser.parse_args()
    params = stage_params(args.params)  # one clear error before any work starts

    if params.train.nproc > 1 and not distributed.under_torchrun():
        sys.exit(distributed.relaunch_with_torchrun(params.train.nproc))
    if distributed.under_torchrun() and distributed.rank_from_env() != 0:
        logging.getLogger().setLevel(logging.WARNING)  # one rank's log is enough

    result = train_model(
        params,
        args.corpus,
        args.kind,
        live_dir=args.live_dir,
        metrics_path=args.metrics,
        model_path=args.model,
        checkpoint_dir=args.checkpoints,
        resume=not args.no_resume,
    )
    if distributed.rank_from_env() == 0:
        write_run_facts(f"train_{args.kind}", result["facts"])
    if distributed.under_torchrun():  # every output is written and the process group is gone: leave without
        distributed.leave()           # C++ teardown (gloo's threads can abort at exit, failing the whole run)
