"""The Vision Transformer (ViT, Dosovitskiy et al., 2021), from its parts.

An image is cut into `patch_size × patch_size` patches; each patch becomes a
token (a linear projection, `PatchEmbedding`); a learned class token is put
in front (or the tokens are averaged at the end, `pooling="gap"`); learned
position embeddings are added (`PatchPositionEmbedding`); a stack of
pre-LayerNorm Transformer encoder blocks (`TransformerEncoderBlock`) mixes
the tokens; a final LayerNorm and a linear head classify.

- `VisionTransformer`: the model, a functional `keras.Model` that saves to
  `.keras` files, with named configurations (`vit_tiny`, `vit_small`,
  `vit_base` of the ViT/DeiT papers and small ones for 8×8 to 32×32 images),
  a `dtype_policy` for mixed precision, an optional convolutional stem
  (`conv_stem`) for small-data training, `attention_scores(images)`, and
  `with_image_size(...)` to fine-tune at another resolution.
- `attention_rollout`: where the class token looks, through all layers
  (Abnar & Zuidema, 2020).
- `train_vit`, `fit_recipe`, `recipe`, `RECIPES`, `compare_recipes`: the
  training recipes of a small-data ViT (warm-up + cosine, AdamW, label
  smoothing, pooling, augmentation, convolutional stem), one ingredient at
  a time; `accuracy` and `images_per_second` measure the result;
  `recipe_search_results` reads the recorded results of the longer search
  (`tools/vit_recipe_search.py`).
- `load_keras_hub_weights`: copies the weights of a KerasHub `ViTBackbone`
  (e.g. a pretrained preset) into a `VisionTransformer`; `keras_hub_rescaling`
  reads the input scaling of the preset's image converter.

The package is split by role, as KerasHub splits `models/vit/`: `layers`
(patch embedding, class token), `presets` (named configurations), `model`
(`VisionTransformer`), `rollout`, `conversion` (KerasHub weights) and
`recipes` (training recipes). Every
public name is importable from `dl4keras.vit`.
"""

from dl4keras.vit.conversion import keras_hub_rescaling, load_keras_hub_weights
from dl4keras.vit.layers import ClassToken, ClassTokenPooling, PatchEmbedding
from dl4keras.vit.model import VisionTransformer, build
from dl4keras.vit.presets import CONFIGS, list_configs
from dl4keras.vit.recipes import (
    BEST,
    PLAIN,
    RECIPES,
    accuracy,
    compare_recipes,
    compare_variants,
    fit_recipe,
    images_per_second,
    recipe,
    recipe_search_results,
    recipe_table,
    search_table,
    train_vit,
)
from dl4keras.vit.rollout import attention_rollout, rollout_matrix

__all__ = [
    "BEST",
    "CONFIGS",
    "PLAIN",
    "RECIPES",
    "ClassToken",
    "ClassTokenPooling",
    "PatchEmbedding",
    "VisionTransformer",
    "accuracy",
    "attention_rollout",
    "build",
    "compare_recipes",
    "compare_variants",
    "fit_recipe",
    "images_per_second",
    "keras_hub_rescaling",
    "list_configs",
    "load_keras_hub_weights",
    "recipe",
    "recipe_search_results",
    "rollout_matrix",
    "recipe_table",
    "search_table",
    "train_vit",
]
