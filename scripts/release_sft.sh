# Sourced by the demo's two-stage variants (demo_sft_dpo.sh, demo_sft_grpo.sh): releases the SFT
# adapter of the last `dvc repro` and sets $sft_bundle to the release bundle the next stage continues.
released=$(toolkit release)
echo "$released"
# "released version N -> <registry>/releases/vN (...)"
sft_bundle=$(sed -n 's/^released version [^ ]* -> \([^ ]*\).*/\1/p' <<<"$released")
[ -n "$sft_bundle" ] || { echo "could not read the released bundle from toolkit release" >&2; exit 2; }
