"""Self-check of Exercise 4.1: a feature extractor that pools a named layer of a frozen backbone."""

from __future__ import annotations

from dl4keras.check import _common

__all__ = ["feature_extractor"]


def _pooled_references(backbone, images):
    """`{(layer, pooling): features}` of every 4-D layer output of `backbone` on `images`."""
    import keras
    import numpy as np

    layers = [
        layer
        for layer in backbone.layers
        if not isinstance(layer, keras.layers.InputLayer) and len(layer.output.shape) == 4
    ]
    maps = keras.Model(backbone.input, [layer.output for layer in layers])(images)
    references = {}
    for layer, fmap in zip(layers, maps, strict=True):
        fmap = np.asarray(keras.ops.convert_to_numpy(fmap), dtype="float64")
        references[(layer.name, "avg")] = fmap.mean(axis=(1, 2))
        references[(layer.name, "max")] = fmap.max(axis=(1, 2))
        references[(layer.name, "flat")] = fmap.reshape(len(fmap), -1)
        references[(layer.name, "map")] = fmap
    return references


def _matches(got, references):
    import numpy as np

    return [
        key
        for key, ref in references.items()
        if ref.shape == got.shape and np.allclose(got, ref, atol=1e-4, rtol=1e-3)
    ]


def feature_extractor(make_probe, backbone, layer_names, images=None, verbose=True):
    """Checks Exercise 4.1: does the probe read the named layer, pooled, with the backbone frozen?

    For each name in `layer_names`, the check calls `make_probe(name)` (or
    takes the model, if you pass one model and one name), runs it on a few
    images and compares its output with the reference: the named layer's
    output of `backbone`, global-average-pooled. It names the usual
    mistakes, each with its fix:

    - **not a model**: `make_probe` did not return a `keras.Model`;
    - **trainable**: the probe has trainable weights, so training a head on
      top of it (or fine-tuning by mistake) would change the backbone;
    - **no pooling**: the output is a feature map `(batch, h, w, c)` or its
      flattened version, not one vector per image;
    - **max pooling** instead of average pooling;
    - **wrong layer**: the output is the pooled output of another layer
      (e.g. always the last block);
    - **other weights**: the output matches no layer of `backbone`: the
      probe was built from another (e.g. randomly initialised) backbone.

    Args:
        make_probe: a function `layer_name -> keras.Model` (raw images in,
            `(batch, channels)` features out), or a `keras.Model` (then
            `layer_names` is the one layer it should read).
        backbone: the pretrained backbone whose layers are read, e.g.
            `extractor.get_layer("tiny_resnet")`.
        layer_names: the layer names, e.g. `("stem_relu", "block3_out")`, or
            one name.
        images: optional images to run both on; default 4 random 0-255
            images of the backbone's input size.
        verbose: print the feedback.

    Returns:
        `True` if every layer's probe is right, `False` otherwise.

    Raises:
        ValueError: if `backbone` is not a `keras.Model` or a name is not
            one of its layers.

    Examples:
        >>> import keras
        >>> from dl4keras import backbones, check
        >>> tiny = backbones.build("tiny_resnet", weights=None).get_layer("tiny_resnet")
        >>> def make_probe(name):
        ...     pooled = keras.layers.GlobalAveragePooling2D()(tiny.get_layer(name).output)
        ...     return keras.Model(tiny.input, pooled)
        >>> check.feature_extractor(make_probe, tiny, ("stem_relu", "block3_out"))
        Checking the probes of 2 layers of 'tiny_resnet' ...
        [PASS] stem_relu: its output, average-pooled to 32 features, backbone frozen
        [PASS] block3_out: its output, average-pooled to 192 features, backbone frozen
        All 2 probes are right.
        True
        >>> def last_layer_always(name):  # a typical mistake: the name is ignored
        ...     return make_probe("block3_out")
        >>> check.feature_extractor(last_layer_always, tiny, "stem_relu")  # doctest: +ELLIPSIS
        Checking the probes of 1 layer of 'tiny_resnet' ...
        [FAIL] stem_relu: wrong layer: the probe reads 'block3_out', not 'stem_relu'
          FIX: pool tiny_resnet.get_layer('stem_relu').output, the layer asked for...
        0/1 probes are right; fix: stem_relu.
        False
    """
    import keras
    import numpy as np

    from dl4keras import _validation

    if not isinstance(backbone, keras.Model):
        raise _validation.invalid("backbone", "a `keras.Model`", backbone)
    names = (layer_names,) if isinstance(layer_names, str) else tuple(layer_names)
    known = [layer.name for layer in backbone.layers]
    for name in names:
        if name not in known:
            raise ValueError(
                f"{name!r} is not a layer of {backbone.name!r}. Its layers: {', '.join(known)}."
            )
    if isinstance(make_probe, keras.Model):
        if len(names) != 1:
            raise ValueError("Pass one layer name with one model, or a function make_probe(name).")
        model = make_probe
        make_probe = lambda name: model  # noqa: E731
    if images is None:
        shape = tuple(s or 32 for s in backbone.input.shape[1:])
        images = np.random.default_rng(0).integers(0, 256, (4, *shape)).astype("float32")
    references = _pooled_references(backbone, images)
    lines, failed = [], []

    def fail(name, problem, fix):
        lines.extend(_common.wrapped("[FAIL] ", f"{name}: {problem}"))
        lines.extend(_common.wrapped("  FIX: ", fix))
        failed.append(name)

    get = f"{backbone.name}.get_layer({{!r}}).output"
    for name in names:
        try:
            probe = make_probe(name)
        except Exception as error:  # the learner's code failed: report it
            fail(name, f"make_probe raised {type(error).__name__}: {error}", "fix the error above.")
            continue
        if not isinstance(probe, keras.Model):
            fail(
                name,
                f"make_probe returned a {type(probe).__name__}, not a keras.Model",
                f"return keras.Model({backbone.name}.input, "
                f"GlobalAveragePooling2D()({get.format(name)})).",
            )
            continue
        try:
            got = np.asarray(keras.ops.convert_to_numpy(probe(images)), dtype="float64")
        except Exception as error:
            fail(
                name,
                f"the probe failed on images {images.shape}: {type(error).__name__}",
                f"build it from {backbone.name}.input, which takes raw 0-255 images.",
            )
            continue
        found = _matches(got, references)
        right = (name, "avg") in found
        trainable = sum(int(np.prod(w.shape)) for w in probe.trainable_weights)
        if trainable:
            fail(
                name,
                f"the backbone is trainable: the probe has {trainable:,} trainable "
                "parameters, so training on it would change the pretrained weights",
                f"freeze it first: {backbone.name}.trainable = False (or probe.trainable = False).",
            )
        elif right:
            lines.extend(
                _common.wrapped(
                    "[PASS] ",
                    f"{name}: its output, average-pooled to {got.shape[-1]} features, "
                    "backbone frozen",
                )
            )
        elif (name, "map") in found or (name, "flat") in found:
            what = "feature map" if got.ndim == 4 else "flattened feature map"
            fail(
                name,
                f"no pooling: the probe returns the {what} {got.shape[1:]} of each image, "
                "not one vector",
                f"global-average-pool it: GlobalAveragePooling2D()({get.format(name)}).",
            )
        elif (name, "max") in found:
            fail(
                name,
                "max pooling instead of average pooling",
                "use GlobalAveragePooling2D, the pooling the backbone's own head uses.",
            )
        elif found:
            other = found[0][0]
            fail(
                name,
                f"wrong layer: the probe reads {other!r}, not {name!r}",
                f"pool {get.format(name)}, the layer asked for (use the name you are "
                "given, not a fixed one).",
            )
        else:
            ref = references[(name, "avg")]
            detail = (
                f"shape {got.shape}, expected {ref.shape}"
                if got.shape != ref.shape
                else f"largest difference {float(np.max(np.abs(got - ref))):.3g}"
            )
            fail(
                name,
                f"the output matches no layer of {backbone.name!r} ({detail})",
                f"build the probe from this backbone ({backbone.name}.input to "
                f"{get.format(name)}), not from a new or randomly initialised one.",
            )
    header = (
        f"Checking the probes of {len(names)} layer{'s' * (len(names) > 1)} of "
        f"{backbone.name!r} ..."
    )
    if failed:
        end = f"{len(names) - len(failed)}/{len(names)} probes are right; fix: {', '.join(failed)}."
    else:
        end = f"All {len(names)} probes are right." if len(names) > 1 else "The probe is right."
    if verbose:
        print("\n".join([header, *lines, end]))
    return not failed
