"""The published sizes of SDXL and Qwen-Image-Edit (`FULL`) and tiny versions of the same
architectures (`TINY`, for a CPU smoke run of the same code), as the constructor arguments
that easel.generation.tiny's pipeline builders take."""

from __future__ import annotations

from typing import Any

from easel.generation.tiny import QWEN_EDIT_CONFIGS

# ---- SDXL (stabilityai/stable-diffusion-xl-base-1.0) -------------------------------------
SDXL_SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
    "timestep_spacing": "leading",
}
CLIP_VOCAB = 49408  # CLIP's embedding size; the byte-level tokenizer uses its first ids

SDXL_FULL: dict[str, dict[str, Any]] = {
    "unet": {
        "sample_size": 128,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        "block_out_channels": (320, 640, 1280),
        "layers_per_block": 2,
        "transformer_layers_per_block": (1, 2, 10),
        "attention_head_dim": (5, 10, 20),  # diffusers' name; SDXL's heads are 64 wide
        "cross_attention_dim": 2048,  # 768 (CLIP-L) + 1280 (OpenCLIP bigG)
        "use_linear_projection": True,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 2816,  # 6 * 256 + 1280
        "norm_num_groups": 32,
    },
    "vae": {
        "block_out_channels": (128, 256, 512, 512),
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "latent_channels": 4,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "sample_size": 1024,
        "scaling_factor": 0.13025,
        "force_upcast": False,  # bf16 decodes fine; fp16 would need the upcast
    },
    "text_encoder": {  # CLIP ViT-L/14 text tower
        "vocab_size": CLIP_VOCAB,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "hidden_act": "quick_gelu",
        "projection_dim": 768,
    },
    "text_encoder_2": {  # OpenCLIP ViT-bigG/14 text tower, with projection
        "vocab_size": CLIP_VOCAB,
        "hidden_size": 1280,
        "intermediate_size": 5120,
        "num_hidden_layers": 32,
        "num_attention_heads": 20,
        "hidden_act": "gelu",
        "projection_dim": 1280,
    },
    "scheduler": SDXL_SCHEDULER,
}

# Not easel's tiny-random-xl: SDXL's structure kept (two layers per block, deeper
# transformers lower down, linear projections), so the smoke run takes SDXL's code paths.
SDXL_TINY: dict[str, dict[str, Any]] = {
    "unet": {
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "block_out_channels": (32, 64),
        "layers_per_block": 2,
        "transformer_layers_per_block": (1, 2),
        "attention_head_dim": (2, 4),
        "cross_attention_dim": 64,
        "use_linear_projection": True,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 8,
        "projection_class_embeddings_input_dim": 80,  # 6 * 8 + 32
        "norm_num_groups": 8,
    },
    "vae": {
        "block_out_channels": (8, 8, 8, 8),  # 4 blocks: the real scale factor 8
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "latent_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": 4,
        "sample_size": 64,
        "scaling_factor": 0.13025,
        "force_upcast": False,
    },
    "text_encoder": {
        "vocab_size": CLIP_VOCAB,
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "hidden_act": "quick_gelu",
        "projection_dim": 32,
    },
    "text_encoder_2": {
        "vocab_size": CLIP_VOCAB,
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "hidden_act": "gelu",
        "projection_dim": 32,
    },
    "scheduler": SDXL_SCHEDULER,
}

# ---- Qwen-Image-Edit (Qwen/Qwen-Image-Edit) ----------------------------------------------
QWEN_SCHEDULER = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 8192,
    "max_shift": 0.9,
    "shift_terminal": 0.02,
    "time_shift_type": "exponential",
    "use_dynamic_shifting": True,
}

QWEN_FULL: dict[str, dict[str, Any]] = {
    "transformer": {
        "patch_size": 2,
        "in_channels": 64,
        "out_channels": 16,
        "num_layers": 60,
        "attention_head_dim": 128,
        "num_attention_heads": 24,
        "joint_attention_dim": 3584,
        "guidance_embeds": False,
        "axes_dims_rope": (16, 56, 56),
    },
    "vae": {
        "base_dim": 96,
        "z_dim": 16,
        "dim_mult": [1, 2, 4, 4],
        "num_res_blocks": 2,
        "temperal_downsample": [False, True, True],
    },
    "text_encoder": {  # Qwen2.5-VL-7B-Instruct
        "text_config": {
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "vocab_size": 152064,
            "max_position_embeddings": 128000,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": [16, 24, 24],
            },
        },
        "vision_config": {
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 3584,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [7, 15, 23, 31],
        },
    },
    # Qwen2.5-VL's published preprocessor limits: a 1024x1024 condition image becomes
    # 74x74 patches, 1369 vision tokens in the prompt.
    "processor": {"min_pixels": 3136, "max_pixels": 12845056},
    "scheduler": QWEN_SCHEDULER,
}

# easel's own tiny-random-qwen-edit, with the real scheduler's settings.
QWEN_TINY: dict[str, dict[str, Any]] = {**QWEN_EDIT_CONFIGS, "scheduler": QWEN_SCHEDULER}

# QwenImageEditPipeline.prompt_template_encode (diffusers 0.42), for the tokenizer's merges
# only: the pipeline formats prompts with its own copy and drops the first 64 tokens.
QWEN_EDIT_TEMPLATE = (
    "<|im_start|>system\nDescribe the key features of the input image (color, shape, size, "
    "texture, objects, background), then explain how the user's text instruction should alter "
    "or modify the image. Generate a new image that meets the user's requirements while "
    "maintaining consistency with the original input where appropriate.<|im_end|>\n"
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
QWEN_TEMPLATE_DROP = 64
