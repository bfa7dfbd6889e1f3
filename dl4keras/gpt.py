"""GPT: the decoder-only Transformer, a causal language model.

GPT (Radford et al., 2018; GPT-2, 2019) is a stack of Transformer *decoder*
blocks with no encoder and no cross-attention. Each block's self-attention
is causal: position `t` sees the tokens `0..t` only. Trained to predict token
`t + 1` at every position `t` at once (next-token prediction, a *causal
language model*, as opposed to BERT's masked language model, which sees
both sides), it generates text one token at a time: feed the sequence, take
the last position's distribution over the vocabulary, pick a token, append
it, repeat.

The output layer is *tied* to the input embedding (Press & Wolf, 2017): the
logits are `h @ Eᵀ`, `E` the `(vocabulary_size, hidden_dim)` token embedding
matrix, so a token's input vector is also its output vector, and the model
has one vocabulary-sized matrix, not two.

- `GPT`: the model, a functional `keras.Model` of `TransformerDecoderBlock`s
  that returns float32 logits and saves to `.keras` files.
- `generate`: autoregressive generation through KerasHub's samplers
  (greedy, top-k, top-p, random, beam), reproducible with a seed.
- `load_keras_hub_weights`: copies a KerasHub `GPT2Backbone`'s weights (e.g.
  the pretrained `gpt2_base_en` preset) into a `GPT`.

Examples:
    >>> from dl4keras.gpt import GPT, generate
    >>> model = GPT(vocabulary_size=20, sequence_length=8, hidden_dim=16, num_layers=1,
    ...             num_heads=2, mlp_dim=32)
    >>> logits = model(np.array([[3, 1, 4, 1, 5]]))  # one sequence of 5 token ids
    >>> tuple(logits.shape)  # a score for each of the 20 tokens, at every position
    (1, 5, 20)
    >>> keras.backend.standardize_dtype(logits.dtype)
    'float32'
    >>> generate(model, [[3, 1, 4]], max_length=6).shape  # the prompt + 3 new tokens
    (1, 6)
"""

import numbers

import keras
import numpy as np
from keras import ops

from dl4keras import _validation
from dl4keras.transformer import PositionEmbedding, TransformerDecoderBlock, gelu_approximate

__all__ = ["GPT", "SAMPLERS", "generate", "load_keras_hub_weights"]

SAMPLERS = ("greedy", "random", "top_k", "top_p", "beam")
"""The KerasHub sampler names `generate` accepts (as `keras_hub.samplers.get`)."""

_INPUT_KEYS = ("token_ids", "padding_mask")


def _is_integer_dtype(dtype):
    return keras.backend.standardize_dtype(dtype).startswith(("int", "uint"))


@keras.saving.register_keras_serializable(package="dl4keras")
class GPT(keras.Model):
    """GPT, a decoder-only Transformer language model.

    ```
    token ids → token embedding E + learned position embedding → dropout
              → TransformerDecoderBlock × num_layers (causal self-attention, MLP)
              → LayerNorm → logits = h @ Eᵀ (tied to the token embedding)
    ```

    A functional `keras.Model` (so `summary()` shows every layer). The token
    embedding is a `keras.layers.ReversibleEmbedding`, called forwards on the
    ids and in reverse on the final states, so the output projection *is*
    the embedding matrix (one variable). The position embedding is
    `dl4keras.transformer.PositionEmbedding`, so the model takes sequences of
    up to `sequence_length` tokens. The weights are initialised as GPT-2's:
    normal with standard deviation 0.02.

    The logits are float32 whatever the dtype policy: with
    `dtype="mixed_float16"` or `"mixed_bfloat16"` the blocks compute in half
    precision, the variables stay float32, and the output projection runs in
    float32.

    Args:
        vocabulary_size: Number of token ids (ids are `0..vocabulary_size-1`).
        sequence_length: The longest sequence the model takes (the rows of
            the position embedding).
        hidden_dim: Size of the token vectors.
        num_layers: Number of decoder blocks.
        num_heads: Attention heads per block; must divide `hidden_dim`.
        mlp_dim: Hidden size of each block's MLP (usually `4 * hidden_dim`).
        dropout: Dropout after the embeddings, on the attention weights, after
            each attention output and in the MLPs (training only).
        layer_norm_epsilon: Epsilon of every LayerNormalization.
        activation: Activation of the MLPs: `"gelu"` (exact),
            `"gelu_approximate"` (GPT-2's tanh approximation, needed for
            `load_keras_hub_weights`) or any Keras activation.
        name: Model name.
        **kwargs: Other `keras.Model` arguments (`dtype` for the dtype policy,
            `trainable`).

    Call arguments:
        - `inputs`: Token ids of shape `(batch, T)`, `T <= sequence_length`
          (integers), or a dict, as KerasHub's `GPT2Backbone` takes:
          `{"token_ids": (batch, T), "padding_mask": (batch, T)}` with
          `padding_mask` 1 (or `True`) for real tokens and 0 for padding; no
          token attends to a padded one. Without a padding mask every token is
          real. Right padding needs no mask at all: causal attention never
          looks ahead.
        - `training`: Python boolean: dropout in training only.

    Returns:
        Logits of shape `(batch, T, vocabulary_size)`, float32: position `t`
        scores the token that follows token `t`.

    Raises:
        ValueError: For invalid arguments, and inputs that are not
            `(batch, T)` integer ids with `T <= sequence_length` (ids
            `0..vocabulary_size-1`, checked for NumPy inputs), or a dict
            with other keys.

    Examples:
        Train on next-token prediction: the targets are the inputs shifted by one.

        >>> from dl4keras.gpt import GPT
        >>> model = GPT(vocabulary_size=20, sequence_length=8, hidden_dim=16, num_layers=2,
        ...             num_heads=2, mlp_dim=32)
        >>> ids = np.random.randint(0, 20, size=(4, 9))
        >>> loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        >>> model.compile("adam", loss)
        >>> history = model.fit(ids[:, :-1], ids[:, 1:], epochs=1, verbose=0)
        >>> tuple(model(ids[:, :-1]).shape)
        (4, 8, 20)
        >>> # Tied: the embedding matrix is the output projection, one variable.
        >>> [tuple(w.shape) for w in model.weights if w.shape[0] == 20]
        [(20, 16)]
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        hidden_dim,
        num_layers,
        num_heads,
        mlp_dim,
        dropout=0.0,
        layer_norm_epsilon=1e-5,
        activation="gelu",
        name="gpt",
        **kwargs,
    ):
        vocabulary_size = _validation.positive_int("vocabulary_size", vocabulary_size)
        sequence_length = _validation.positive_int("sequence_length", sequence_length)
        num_layers = _validation.positive_int("num_layers", num_layers)
        dropout = _validation.rate("dropout", dropout)
        layer_norm_epsilon = _validation.positive_float("layer_norm_epsilon", layer_norm_epsilon)
        if callable(activation):
            activation = keras.activations.serialize(activation)
        dtype = kwargs.pop("dtype", None)
        policy = keras.dtype_policies.get(dtype or keras.config.dtype_policy())
        initializer = {"class_name": "RandomNormal", "config": {"stddev": 0.02}}

        # === The functional graph ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        # The blocks validate hidden_dim, num_heads and mlp_dim: create them
        # before anything else uses those numbers.
        blocks = [
            TransformerDecoderBlock(
                hidden_dim,
                num_heads,
                mlp_dim,
                dropout=dropout,
                attention_dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                activation=activation,
                kernel_initializer=initializer,
                dtype=policy,
                name=f"decoder_block_{i}",
            )
            for i in range(num_layers)
        ]
        embedding = keras.layers.ReversibleEmbedding(
            vocabulary_size,
            hidden_dim,
            embeddings_initializer=keras.initializers.get(initializer),
            reverse_dtype="float32",
            dtype=policy,
            name="token_embedding",
        )
        x = embedding(token_ids)
        x = PositionEmbedding(
            sequence_length,
            initializer=keras.initializers.get(initializer),
            dtype=policy,
            name="position_embedding",
        )(x)
        x = keras.layers.Dropout(dropout, dtype=policy, name="embedding_dropout")(x)
        for block in blocks:
            x = block(x, attention_mask=padding_mask)
        x = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="final_norm"
        )(x)
        logits = embedding(x, reverse=True)  # x @ Eᵀ, in float32
        logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=logits,
            name=name,
            **kwargs,
        )
        # Functional models ignore `dtype`; `compile()` reads the model's policy
        # to add loss scaling under mixed_float16.
        self.dtype_policy = policy

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.hidden_dim = blocks[0].hidden_dim
        self.num_layers = num_layers
        self.num_heads = blocks[0].num_heads
        self.mlp_dim = blocks[0].mlp_dim
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.activation = activation

    def get_config(self):
        return {
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "activation": self.activation,
            "dtype": self.dtype_policy.name,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)

    # ------------------------------------------------------------- inspect

    @property
    def token_embedding(self):
        """The `keras.layers.ReversibleEmbedding`: the input embedding and the output projection."""
        return self.get_layer("token_embedding")

    @property
    def decoder_blocks(self):
        """The `TransformerDecoderBlock`s, first to last."""
        return [self.get_layer(f"decoder_block_{i}") for i in range(self.num_layers)]

    # ---------------------------------------------------------------- call

    def _standardize(self, inputs):
        """`inputs` as the dict of the functional graph, checked."""
        if isinstance(inputs, dict):
            unknown = sorted(set(inputs) - set(_INPUT_KEYS))
            if unknown or "token_ids" not in inputs:
                raise ValueError(
                    f"`{self.name}` takes token ids of shape (batch, T), or a dict with "
                    f"the key 'token_ids' and optionally 'padding_mask'. Received: a dict "
                    f"with keys {sorted(inputs)}"
                )
            token_ids, padding_mask = inputs["token_ids"], inputs.get("padding_mask")
        else:
            token_ids, padding_mask = inputs, None
        token_ids = self._check_ids(token_ids)
        if padding_mask is None:
            padding_mask = ops.ones_like(token_ids, dtype="int32")
        else:
            padding_mask = ops.convert_to_tensor(padding_mask)
            mask_shape, ids_shape = tuple(padding_mask.shape), tuple(token_ids.shape)
            if len(mask_shape) != len(ids_shape) or any(
                a is not None and b is not None and a != b for a, b in zip(mask_shape, ids_shape)
            ):
                raise ValueError(
                    "`padding_mask` must have the shape of the token ids. Received: "
                    f"token_ids.shape={ids_shape}, padding_mask.shape={mask_shape}"
                )
            padding_mask = ops.cast(padding_mask, "int32")
        return {"token_ids": token_ids, "padding_mask": padding_mask}

    def _check_ids(self, token_ids):
        if isinstance(token_ids, (list, tuple, np.ndarray)):
            array = np.asarray(token_ids)
            if array.ndim == 2 and array.size and _is_integer_dtype(array.dtype):
                if array.min() < 0 or array.max() >= self.vocabulary_size:
                    raise ValueError(
                        f"Token ids must be in [0, {self.vocabulary_size}) "
                        f"(vocabulary_size={self.vocabulary_size}). Received: ids from "
                        f"{array.min()} to {array.max()}"
                    )
            token_ids = array
        if not isinstance(token_ids, keras.KerasTensor):
            token_ids = ops.convert_to_tensor(token_ids)
        shape = tuple(token_ids.shape)
        if len(shape) != 2 or not _is_integer_dtype(token_ids.dtype):
            raise ValueError(
                f"`{self.name}` expects integer token ids of shape (batch, T). Received: "
                f"token_ids.shape={shape}, dtype={keras.backend.standardize_dtype(token_ids.dtype)}"
            )
        if shape[1] is not None and shape[1] > self.sequence_length:
            raise ValueError(
                f"`{self.name}` takes sequences of up to sequence_length="
                f"{self.sequence_length} tokens. Received: token_ids.shape={shape}"
            )
        return token_ids

    def __call__(self, *args, **kwargs):
        if args:
            args = (self._standardize(args[0]), *args[1:])
        elif "inputs" in kwargs:
            kwargs["inputs"] = self._standardize(kwargs["inputs"])
        return super().__call__(*args, **kwargs)

    def call(self, inputs, training=None, mask=None, **kwargs):
        # JAX's and PyTorch's trainers call `call` (through `stateless_call`), not
        # `__call__`: plain token ids become the graph's dict here too.
        return super().call(self._standardize(inputs), training=training, mask=mask, **kwargs)


# --------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------


def _sampler(sampler, seed):
    """A `keras_hub.samplers.Sampler` from a name or an object, seeded with `seed` if given."""
    import keras_hub

    if isinstance(sampler, str):
        if sampler not in SAMPLERS:
            raise _validation.invalid(
                "sampler",
                "a keras_hub.samplers.Sampler or one of " + ", ".join(repr(s) for s in SAMPLERS),
                sampler,
            )
        sampler = keras_hub.samplers.get(sampler)
    elif not isinstance(sampler, keras_hub.samplers.Sampler):
        raise _validation.invalid(
            "sampler",
            "a keras_hub.samplers.Sampler or one of " + ", ".join(repr(s) for s in SAMPLERS),
            sampler,
        )
    elif type(sampler).__name__ in ("ContrastiveSampler", "SpeculativeSampler"):
        raise ValueError(
            f"`generate` recomputes the logits at every step and passes no hidden "
            f"states or draft model: {type(sampler).__name__} needs them. Use one of "
            f"{SAMPLERS}. Received: sampler={sampler!r}"
        )
    seed = _validation.optional_seed("seed", seed)
    config = sampler.get_config()
    if seed is not None and "seed" in config:
        # A fresh copy: the same seed then gives the same tokens at every call.
        config["seed"] = seed
        sampler = type(sampler).from_config(config)
    return sampler


def _prompts(prompt_ids):
    """A list of 1-D integer arrays, one per prompt."""
    if isinstance(prompt_ids, np.ndarray) or hasattr(prompt_ids, "shape"):
        array = np.asarray(ops.convert_to_numpy(prompt_ids))
        if array.ndim == 1:
            array = array[None]
        rows = list(array) if array.ndim == 2 else None
    elif isinstance(prompt_ids, (list, tuple)) and prompt_ids:
        if all(isinstance(t, numbers.Integral) for t in prompt_ids):
            prompt_ids = [prompt_ids]  # one prompt
        rows = [np.asarray(row) for row in prompt_ids]
        if not all(row.ndim == 1 for row in rows):
            rows = None
    else:
        rows = None
    if rows is None or not rows:
        raise _validation.invalid(
            "prompt_ids",
            "token ids of shape (T,) or (batch, T), or a list of token-id lists",
            prompt_ids,
        )
    for row in rows:
        if row.size == 0:
            raise ValueError(
                "Every prompt needs at least one token: the model predicts the next "
                f"token from the ones before it. Received: prompt_ids={prompt_ids!r}"
            )
        if not _is_integer_dtype(row.dtype):
            raise _validation.invalid("prompt_ids", "integer token ids", prompt_ids)
    return rows


def generate(model, prompt_ids, max_length, sampler="greedy", seed=None, stop_token_ids=None):
    """Generates token ids from a causal language model, with a KerasHub sampler.

    The prompts are written into a `(batch, max_length)` array; a KerasHub
    sampler (`keras_hub.samplers`) then fills the positions after each
    prompt one at a time: at each step it calls `model` on the whole array,
    takes the logits of the last filled position, turns them into
    probabilities (softmax, divided by the sampler's `temperature`) and
    picks the next token. The prompt tokens are never overwritten. There is
    no key/value cache: every step recomputes the logits of all positions,
    which is simple and plenty fast for small models (KerasHub's
    `GPT2CausalLM.generate` caches them). Causal attention makes the
    positions not yet generated (placeholder ids) irrelevant to the position read.

    Args:
        model: A causal language model mapping token ids `(batch, T)` to
            logits `(batch, T, vocabulary_size)`, e.g. a `GPT`.
        prompt_ids: The prompts: token ids of shape `(T,)` (one prompt) or
            `(batch, T)`, or a list of token-id lists of different lengths.
        max_length: Length of each returned sequence, prompt included; at
            least the longest prompt's length and at most the model's
            `sequence_length`.
        sampler: A sampler name, `"greedy"` (default: the most probable
            token), `"top_k"`, `"top_p"`, `"random"` or `"beam"` (the default
            sampler of that name, as `keras_hub.samplers.get` gives it), or a
            `keras_hub.samplers.Sampler` object, e.g.
            `keras_hub.samplers.TopKSampler(k=5, temperature=0.7)`.
        seed: Optional integer: a random sampler is rebuilt with this seed,
            so the same seed gives the same tokens. Without it, a sampler
            object keeps drawing from its own seed generator, whose state
            advances with each call. Greedy and beam search ignore it.
        stop_token_ids: Optional token id or sequence of ids (e.g. an
            end-of-text token): generation stops once every sequence has
            generated one, and each sequence's positions after its first
            generated stop token are filled with that stop token.

    Returns:
        A NumPy int32 array of shape `(batch, max_length)`: each prompt
        followed by its generated tokens.

    Raises:
        ValueError: For an unknown sampler, empty or non-integer prompts, and
            a `max_length` shorter than a prompt or longer than the model's
            `sequence_length`.

    Examples:
        >>> from dl4keras.gpt import GPT, generate
        >>> model = GPT(vocabulary_size=20, sequence_length=10, hidden_dim=16, num_layers=1,
        ...             num_heads=2, mlp_dim=32)
        >>> out = generate(model, [[1, 2, 3], [4, 5]], max_length=6)  # two prompts, greedy
        >>> out.shape, out[0, :3].tolist(), out[1, :2].tolist()  # the prompts are kept
        ((2, 6), [1, 2, 3], [4, 5])
        >>> a = generate(model, [1, 2, 3], max_length=8, sampler="top_k", seed=7)
        >>> b = generate(model, [1, 2, 3], max_length=8, sampler="top_k", seed=7)
        >>> bool((a == b).all())  # the same seed, the same tokens
        True
        >>> # Top-p (nucleus) sampling with a temperature, from a KerasHub sampler object:
        >>> import keras_hub
        >>> sampler = keras_hub.samplers.TopPSampler(p=0.9, temperature=0.7)
        >>> generate(model, [1, 2, 3], max_length=8, sampler=sampler, seed=1).shape
        (1, 8)
    """
    sampler = _sampler(sampler, seed)
    rows = _prompts(prompt_ids)
    max_length = _validation.positive_int("max_length", max_length)
    longest = max(len(row) for row in rows)
    if max_length < longest:
        raise ValueError(
            f"`max_length` is the length of the returned sequences, prompt included: it "
            f"must be at least the longest prompt's length, {longest}. Received: "
            f"max_length={max_length}"
        )
    limit = getattr(model, "sequence_length", None)
    if limit is not None and max_length > limit:
        raise ValueError(
            f"The model takes sequences of up to sequence_length={limit} tokens. "
            f"Received: max_length={max_length}"
        )
    if stop_token_ids is not None:
        if isinstance(stop_token_ids, numbers.Integral):
            stop_token_ids = (stop_token_ids,)
        if not (
            isinstance(stop_token_ids, (list, tuple))
            and stop_token_ids
            and all(isinstance(t, numbers.Integral) for t in stop_token_ids)
        ):
            raise _validation.invalid(
                "stop_token_ids", "None, a token id or a sequence of token ids", stop_token_ids
            )
        stop_token_ids = tuple(int(t) for t in stop_token_ids)

    # The positions still to fill hold a token that is not a stop token: the
    # sampler stops once every sequence holds a stop token outside its prompt.
    stops = set(stop_token_ids or ())
    filler = min(set(range(len(stops) + 1)) - stops)
    token_ids = np.full((len(rows), max_length), filler, "int32")
    mask = np.zeros((len(rows), max_length), bool)
    for i, row in enumerate(rows):
        token_ids[i, : len(row)] = row
        mask[i, : len(row)] = True
    if all(len(row) == max_length for row in rows):
        return token_ids  # nothing to generate

    def next(prompt, cache, index):
        # No cache: the logits of every position are recomputed each step, and
        # those of the last filled position (index - 1) predict token `index`.
        logits = model(prompt, training=False)
        return ops.take(logits, index - 1, axis=1), None, cache

    output = sampler(
        next=next,
        prompt=ops.convert_to_tensor(token_ids),
        index=min(len(row) for row in rows),
        mask=ops.convert_to_tensor(mask),
        stop_token_ids=stop_token_ids,
        model=model,
    )
    output = np.asarray(ops.convert_to_numpy(output)).astype("int32")
    if stop_token_ids is not None:
        for i in range(len(rows)):
            generated = np.flatnonzero(np.isin(output[i], stop_token_ids) & ~mask[i])
            if generated.size:
                first = generated[0]
                output[i, first + 1 :] = output[i, first]
    return output


# --------------------------------------------------------------------------
# KerasHub weights
# --------------------------------------------------------------------------


def load_keras_hub_weights(model, backbone):
    """Copies the weights of a KerasHub `GPT2Backbone` into a `GPT`.

    KerasHub's GPT-2 is the same architecture: token and learned position
    embeddings, pre-LayerNorm decoder blocks (`TransformerDecoder` with
    `normalize_first=True`; separate query, key and value projections in a
    `keras.layers.MultiHeadAttention`, the layout of
    `dl4keras.MultiHeadAttention`) with a GELU MLP, a final LayerNorm, and the
    token embedding as the output projection (`GPT2CausalLM`). After loading,
    `model(inputs)` equals `backbone(inputs) @ Eᵀ`, `E` the backbone's
    token embedding matrix.

    Build the model with the backbone's numbers: `vocabulary_size`,
    `num_layers`, `num_heads`, `hidden_dim`, `mlp_dim` (`intermediate_dim`),
    `layer_norm_epsilon=1e-5` and `activation="gelu_approximate"` (GPT-2's
    tanh GELU), and `sequence_length` at most the backbone's
    `max_sequence_length` (the first position embeddings are copied). Dropout
    may differ.

    Args:
        model: A `GPT`.
        backbone: A `keras_hub.models.GPT2Backbone` (e.g. from
            `GPT2Backbone.from_preset("gpt2_base_en")`).

    Returns:
        The model, its weights replaced.

    Raises:
        ValueError: If `model` is not a `GPT`, `backbone` not a
            `GPT2Backbone`, or their configurations differ (every difference
            is listed).

    Examples:
        The pretrained GPT-2 (124M parameters; downloaded once, about 500 MB):

        ```python
        # requires: network
        import keras_hub
        from dl4keras.gpt import GPT, load_keras_hub_weights

        backbone = keras_hub.models.GPT2Backbone.from_preset("gpt2_base_en")
        model = GPT(vocabulary_size=50257, sequence_length=1024, hidden_dim=768,
                    num_layers=12, num_heads=12, mlp_dim=3072,
                    activation="gelu_approximate")
        load_keras_hub_weights(model, backbone)
        ```

        Offline, a tiny random `GPT2Backbone`: after loading, the logits are
        the backbone's final states times the token embedding matrix.

        >>> import keras_hub
        >>> from dl4keras.gpt import GPT, load_keras_hub_weights
        >>> backbone = keras_hub.models.GPT2Backbone(
        ...     vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=16,
        ...     intermediate_dim=32, max_sequence_length=16,
        ... )
        >>> model = GPT(vocabulary_size=50, sequence_length=16, hidden_dim=16, num_layers=1,
        ...             num_heads=2, mlp_dim=32, activation="gelu_approximate")
        >>> model = load_keras_hub_weights(model, backbone)
        >>> inputs = {"token_ids": np.array([[5, 7, 9, 11]]), "padding_mask": np.ones((1, 4))}
        >>> states = backbone(inputs)
        >>> expected = keras.ops.matmul(states, keras.ops.transpose(
        ...     backbone.token_embedding.embeddings))
        >>> difference = keras.ops.max(keras.ops.abs(model(inputs) - expected))
        >>> bool(difference <= 1e-4)
        True
    """
    import keras_hub

    if not isinstance(model, GPT):
        raise ValueError(f"`model` must be a dl4keras GPT. Received: {type(model).__name__}")
    if not isinstance(backbone, keras_hub.models.GPT2Backbone):
        raise ValueError(
            "`backbone` must be a keras_hub.models.GPT2Backbone. Received: "
            f"{type(backbone).__name__}"
        )
    layers = backbone.transformer_layers
    activation = model.decoder_blocks[0].activation
    wanted = {
        "vocabulary_size": (model.vocabulary_size, backbone.vocabulary_size),
        "num_layers": (model.num_layers, backbone.num_layers),
        "num_heads": (model.num_heads, backbone.num_heads),
        "hidden_dim": (model.hidden_dim, backbone.hidden_dim),
        "mlp_dim": (model.mlp_dim, backbone.intermediate_dim),
        "layer_norm_epsilon": (model.layer_norm_epsilon, float(layers[0].layer_norm_epsilon)),
        "activation": (
            "gelu_approximate" if activation is gelu_approximate else model.activation,
            "gelu_approximate",
        ),
    }
    wrong = [
        f"{key}={ours!r} (backbone: {theirs!r})"
        for key, (ours, theirs) in wanted.items()
        if ours != theirs
    ]
    if model.sequence_length > backbone.max_sequence_length:
        wrong.append(
            f"sequence_length={model.sequence_length} (backbone: at most "
            f"max_sequence_length={backbone.max_sequence_length})"
        )
    if wrong:
        raise ValueError(
            "The model does not match the KerasHub backbone: "
            + ", ".join(wrong)
            + ". Build it with the backbone's values."
        )

    model.token_embedding.embeddings.assign(
        ops.convert_to_numpy(backbone.token_embedding.embeddings)
    )
    positions = ops.convert_to_numpy(backbone.position_embedding.position_embeddings)
    model.get_layer("position_embedding").embeddings.assign(positions[: model.sequence_length])
    for ours, theirs in zip(model.decoder_blocks, layers):
        # KerasHub's TransformerDecoder keeps its sublayers in private attributes.
        ours.ln_1.set_weights(theirs._self_attention_layer_norm.get_weights())
        ours.mha.set_weights(theirs._self_attention_layer.get_weights())
        ours.ln_2.set_weights(theirs._feedforward_layer_norm.get_weights())
        ours.dense_1.set_weights(theirs._feedforward_intermediate_dense.get_weights())
        ours.dense_2.set_weights(theirs._feedforward_output_dense.get_weights())
    model.get_layer("final_norm").set_weights(backbone.layer_norm.get_weights())
    return model
