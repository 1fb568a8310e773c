"""Models and LoRA adapters made on the spot for the conversion tests (no download)."""

from __future__ import annotations

from pathlib import Path


def make_adapter(model_dir: Path, out: Path, seed: int = 0, std: float = 0.02) -> Path:
    """A LoRA adapter (r=8, alpha=16, all seven linear modules) whose B matrices are random
    (normal, ``std``), so applying it really changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=targets))
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, std)
    peft_model.save_pretrained(out)
    return out


def tiny_qwen2(hf_default_model: Path, out: Path, *, tied: bool) -> Path:
    """A randomly initialised 2-layer Qwen2 with the default model's tokenizer (no download)."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(1)
    config = Qwen2Config(
        vocab_size=49152,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=tied,
        initializer_range=0.1,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():  # random init leaves biases at zero; make them matter
        for layer in model.model.layers:
            attention = layer.self_attn
            for bias in (attention.q_proj.bias, attention.k_proj.bias, attention.v_proj.bias):
                bias.normal_(0.0, 0.5)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(hf_default_model).save_pretrained(out)
    return out
