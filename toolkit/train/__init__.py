"""Training: the builtin base model, SFT with LoRA through TRL + PEFT."""
