#!/usr/bin/env bash
# The demo's SFT -> DPO variant (docs/training.md): after `dvc repro` has trained and gated the SFT
# adapter, release it, then run DPO on the ticket task's preference pairs as a DVC experiment that
# continues the released SFT adapter. The canary tier compares SFT+DPO with the SFT release.
#   bash scripts/demo_sft_dpo.sh [EXPERIMENT_NAME]      (make demo-dpo)
set -euo pipefail
name="${1:-sft-dpo}"

source "$(dirname "$0")/release_sft.sh"   # sets $sft_bundle

# One epoch at 1e-4: DPO moves probability from rejected to chosen answers quickly on this tiny model;
# 2 epochs at 5e-4 ranked every held-out pair right and broke every generated answer (see
# docs/benchmarks.md), which the canary tier caught against the SFT release.
dvc exp run -n "$name" \
  -S data.path=data/support_tickets_preference.jsonl \
  -S data.datasheet=data/support_tickets_preference.datasheet.yaml \
  -S train.method=dpo \
  -S "train.init_adapter=$sft_bundle" \
  -S train.epochs=1 \
  -S train.learning_rate=0.0001 \
  -S train.batch_size=8
dvc exp show --only-changed
