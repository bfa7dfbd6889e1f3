"""Named Vision Transformer configurations: arguments of `VisionTransformer`."""

__all__ = ["CONFIGS", "POLICIES", "list_configs"]

CONFIGS = {
    # ViT / DeiT (Touvron et al., 2021) at 224×224, patch 16.
    "vit_tiny": dict(
        image_size=224, patch_size=16, hidden_dim=192, depth=12, num_heads=3, mlp_dim=768
    ),
    "vit_small": dict(
        image_size=224, patch_size=16, hidden_dim=384, depth=12, num_heads=6, mlp_dim=1536
    ),
    "vit_base": dict(
        image_size=224, patch_size=16, hidden_dim=768, depth=12, num_heads=12, mlp_dim=3072
    ),
    # Small images, trainable on a CPU.
    "vit_digits": dict(  # sklearn digits: 8×8 grey, 16 patches of 2×2
        image_size=8,
        patch_size=2,
        num_channels=1,
        hidden_dim=64,
        depth=4,
        num_heads=4,
        mlp_dim=128,
        num_classes=10,
    ),
    "vit_mnist": dict(  # MNIST / Fashion-MNIST: 28×28 grey, 49 patches of 4×4
        image_size=28,
        patch_size=4,
        num_channels=1,
        hidden_dim=64,
        depth=4,
        num_heads=4,
        mlp_dim=128,
        num_classes=10,
    ),
    "vit_cifar": dict(  # CIFAR-10: 32×32 colour, 64 patches of 4×4
        image_size=32,
        patch_size=4,
        num_channels=3,
        hidden_dim=192,
        depth=6,
        num_heads=3,
        mlp_dim=384,
        num_classes=10,
        stochastic_depth=0.1,
    ),
}
"""Named configurations: arguments of `VisionTransformer`, overridable."""

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
"""The dtype policies a `VisionTransformer` accepts by name."""


def list_configs():
    """The names of the configurations in `CONFIGS`."""
    return sorted(CONFIGS)
