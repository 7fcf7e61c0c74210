"""Choose the last ranking stage's weights on the docs-search development set (never a test set).

Sweeps, in one run on one index of the docs-search dev corpus (`scripts/prepare_docs_dev.py`):
- the field weight (file names and headings; `search/refine.py` FIELD_WEIGHT, 0 = off) in hybrid,
- late interaction (`rerank="maxsim"`) at several MAXSIM_WEIGHTs, in hybrid and dense,
and prints file-level hits@1/3/10 and nDCG@10 of each (the dev split; `--split heldout` reports).
The BEIR dev sets get the MaxSim rows through `m2vsearch eval --mode hybrid,hybrid+maxsim,...`.

    python benchmarks/last_stage.py --data ~/.cache/m2vsearch/docs-dev --json benchmarks/results/last_stage.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from docs_search import build_index, read_split, run_mode  # benchmarks/docs_search.py

import m2vsearch.search.refine as refine
from m2vsearch.distributed import open_index
from m2vsearch.eval.datasets import load_beir
from m2vsearch.eval.metrics import mean_metrics
from m2vsearch.eval.run import rank_queries
from m2vsearch.index.index import Index
from m2vsearch.model.static import StaticModel

MAXSIM_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7)


def beir_sweep(folder: Path, model: StaticModel, work: Path, weights: tuple[float, ...]) -> list[dict[str, object]]:
    """Hybrid nDCG@10 of a BEIR-layout dev set without late interaction and at each MaxSim weight."""
    data = load_beir(folder)
    rows = []
    doc_ids = list(data.corpus)
    with Index.create(work / f"set-{len(list(work.iterdir()))}", model=model) as index:
        to_doc = dict(zip(index.add_texts([data.corpus[d] for d in doc_ids]), doc_ids))
        for weight in (None, *weights):
            refine.MAXSIM_WEIGHT = weight or refine.MAXSIM_WEIGHT
            ranked = rank_queries(index, data.queries, data.queries, "hybrid+maxsim" if weight else "hybrid+none")
            metrics = mean_metrics({q: [to_doc[i] for i in ids] for q, ids in ranked.items()}, data.relevant)
            rows.append({"case": f"{data.name} hybrid", "maxsim_weight": weight, **metrics})
            print(f"{data.name:20s} maxsim {weight or 0:4.2f} nDCG@10 {metrics['ndcg@10']:.4f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("~/.cache/m2vsearch/docs-dev").expanduser())
    parser.add_argument("--split", default="dev", choices=["dev", "heldout", "all"])
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--beir", type=Path, action="append", default=[], help="Also sweep MaxSim on this dev set.")
    parser.add_argument("--weights", default=",".join(map(str, MAXSIM_WEIGHTS)), help="MaxSim weights to try.")
    parser.add_argument("--no-fields", action="store_true", help="Skip the field-weight rows.")
    args = parser.parse_args()
    folder = build_index(args.data, None, "default", None, False)
    queries, relevant = read_split(args.data, args.split)
    shipped = (refine.FIELD_WEIGHT, refine.MAXSIM_WEIGHT)
    weights = tuple(float(w) for w in args.weights.split(","))
    cases: list[tuple[str, str, float, float | None]] = []
    if not args.no_fields:
        cases += [("hybrid", "hybrid", w, None) for w in (0.0, 0.1, 0.25, 0.5)]
    cases += [("hybrid+maxsim", "hybrid", shipped[0], w) for w in weights]
    cases += [("dense", "dense", 0.0, None)] + [("dense+maxsim", "dense", 0.0, w) for w in (0.2, 0.5)]
    results = []
    if args.beir:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="last-stage-") as work:
            for dev_set in args.beir:
                results += beir_sweep(dev_set, StaticModel.from_pretrained("default"), Path(work), weights)
        refine.MAXSIM_WEIGHT = shipped[1]
    print(f"{args.split}: {len(queries)} queries")
    print(f"{'case':16s} {'fields':>6s} {'maxsim':>6s} {'hits@1':>7s} {'hits@3':>7s} {'hits@10':>7s} {'nDCG@10':>7s}")
    with open_index(folder) as index:
        for name, mode, field_weight, maxsim_weight in cases:
            refine.FIELD_WEIGHT = field_weight
            refine.MAXSIM_WEIGHT = maxsim_weight or shipped[1]
            kwargs = {"rerank": "maxsim" if maxsim_weight is not None else "none"}
            found = run_mode(index, queries, relevant, args.data, mode, args.k, kwargs)
            m = found["metrics"]
            results.append({"case": name, "field_weight": field_weight, "maxsim_weight": maxsim_weight, **m})
            print(f"{name:16s} {field_weight:6.2f} {maxsim_weight or 0:6.2f} {m['hits@1']:7.4f} {m['hits@3']:7.4f} "
                  f"{m['hits@10']:7.4f} {m['ndcg@10']:7.4f}")  # fmt: skip
        refine.FIELD_WEIGHT, refine.MAXSIM_WEIGHT = shipped
        print("\nper file, in the 10 hits a person sees (k=10 chunks): distinct files and where the right one is")
        print(f"{'per_file':>8s} {'files':>6s} {'hits@3':>7s} {'hits@10':>7s} {'nDCG@10':>7s}")
        for limit in (1, 2, 3, 5, None):
            found = run_mode(index, queries, relevant, args.data, "hybrid", 10, {"per_file": limit})
            m, files = found["metrics"], found["mean_files"]
            results.append({"case": "hybrid, k=10", "per_file": limit, "mean_files": files, **m})
            print(f"{limit or 'none':>8} {files:6.2f} {m['hits@3']:7.4f} {m['hits@10']:7.4f} {m['ndcg@10']:7.4f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"split": args.split, "queries": len(queries), "results": results}, indent=1))


if __name__ == "__main__":
    main()
