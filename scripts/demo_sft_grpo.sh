#!/usr/bin/env bash
# The demo's SFT -> GRPO variant (docs/training.md): after `dvc repro` has trained and gated the SFT
# adapter, release it, then continue it with GRPO on the same tickets as a DVC experiment. The
# rewards are the held-out tier's own metrics (train.grpo.rewards: json_valid 0.5 + field_accuracy
# 1.0), the KL reference is the released SFT adapter, and the canary tier compares with it.
#   bash scripts/demo_sft_grpo.sh [EXPERIMENT_NAME]      (make demo-grpo)
set -euo pipefail
name="${1:-sft-grpo}"

source "$(dirname "$0")/release_sft.sh"   # sets $sft_bundle

# The rest of train.grpo (40 steps of 8 prompts x 4 samples at temperature 0.3, learning rate 1e-4,
# beta 0.04) is params.yaml's; see docs/benchmarks.md for the reward curve it gives.
dvc exp run -n "$name" \
  -S train.method=grpo \
  -S "train.init_adapter=$sft_bundle"
dvc exp show --only-changed
