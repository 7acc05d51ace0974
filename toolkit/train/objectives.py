"""Training objectives: which TRL trainer and config each `train.method` uses, and the data it needs.

- sft: SFTTrainer on conversations (loss on assistant tokens only for chat data);
- dpo: DPOTrainer on preference pairs (loss_type ["sigmoid"], or ["ipo"] for IPO; beta); with a
  PEFT model the reference is the model with the adapter switched off, so no second copy loads;
- kto: KTOTrainer on prompt/completion/label feedback;
- orpo: ORPOTrainer (trl.experimental) on preference pairs, no reference model;
- grpo: GRPOTrainer on the prompts of conversations, sampling `num_generations` completions per
  prompt and rewarding them with evaluation metrics (toolkit.scoring.rewards); the KL reference is the
  starting policy (a copy of `init_adapter` when continuing one, else the base).
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.config import TrainParams
from toolkit.train.packing import Packing

DATA_KIND = {"sft": "sft", "dpo": "preference", "orpo": "preference", "kto": "kto", "grpo": "sft"}
KIND_WORDS = {"sft": "conversations (SFT)", "preference": "preference pairs", "kto": "KTO feedback"}


def data_kind(row: dict) -> str:
    if "messages" in row:
        return "sft"
    return "preference" if "chosen" in row else "kto"


@dataclass(frozen=True)
class Objective:
    method: str
    config_cls: type
    trainer_cls: type
    extra_config: dict
    best_metric: str = "eval_loss"      # what early stopping and the best checkpoint watch
    greater_is_better: bool = False
    unsupported: tuple[str, ...] = ()   # common training settings this trainer's config does not take


def objective(cfg: TrainParams, packing: Packing) -> Objective:
    pref = cfg.preference
    if cfg.method == "sft":
        from trl import SFTConfig, SFTTrainer

        # padding_free is done by toolkit.train.packing's collator: TRL's own needs max_length unset.
        return Objective("sft", SFTConfig, SFTTrainer, {
            "assistant_only_loss": cfg.assistant_only_loss,
            "packing": packing.mode == "bfd",
            **({"packing_strategy": "bfd"} if packing.mode == "bfd" else {}),
        })
    if cfg.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        return Objective("dpo", DPOConfig, DPOTrainer, {"beta": pref.beta, "loss_type": [pref.loss_type]})
    if cfg.method == "kto":
        from trl import KTOConfig, KTOTrainer

        return Objective("kto", KTOConfig, KTOTrainer, {"beta": pref.beta, "desirable_weight": pref.desirable_weight,
                                                         "undesirable_weight": pref.undesirable_weight})
    if cfg.method == "grpo":
        from trl import GRPOConfig, GRPOTrainer

        grpo = cfg.grpo
        completions_per_step = grpo.prompts_per_step * grpo.num_generations
        return Objective("grpo", GRPOConfig, GRPOTrainer, {
            "per_device_train_batch_size": completions_per_step,
            "per_device_eval_batch_size": completions_per_step,
            "learning_rate": grpo.learning_rate,
            "max_steps": grpo.max_steps,
            "num_generations": grpo.num_generations,
            "max_completion_length": grpo.max_completion_length,
            "temperature": grpo.temperature,
            "beta": grpo.beta,
            "reward_weights": [reward.weight for reward in grpo.rewards],
            "shuffle_dataset": True,
            # Dropout makes the policy differ from its reference copy before any update: a KL of noise.
            "disable_dropout": True,
        }, best_metric="eval_reward", greater_is_better=True, unsupported=("max_length",))
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return Objective("orpo", ORPOConfig, ORPOTrainer, {"beta": pref.beta})


def loss_on(method: str, args) -> str:
    """What the trainer computed the loss on, read from the config it actually ran with."""
    if method == "sft":
        if getattr(args, "assistant_only_loss", False):
            return "assistant tokens only (system and user turns masked)"
        if getattr(args, "completion_only_loss", None):
            return "completion tokens only (prompt masked)"
        return "every token of each conversation"
    if method == "dpo":
        loss = ", ".join(getattr(args, "loss_type", None) or ["sigmoid"])
        return f"chosen vs rejected completions against the reference model ({loss} loss; prompt tokens masked)"
    if method == "grpo":
        beta = getattr(args, "beta", 0.0)
        kl = f"KL penalty beta {beta:g} against the starting policy" if beta else "no KL penalty"
        return (f"{args.num_generations} sampled completions per prompt, each scored by the weighted rewards "
                f"against its group's mean (GRPO loss, {args.loss_type} token aggregation; {kl}; prompt tokens "
                "masked)")
    if method == "kto":
        return ("desirable and undesirable completions against the reference model (KTO loss; prompt tokens masked)")
    return "chosen completions (NLL) plus the odds ratio of chosen over rejected (ORPO loss; prompt tokens masked)"
