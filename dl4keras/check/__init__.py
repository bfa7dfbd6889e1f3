"""Self-checks a learner runs on their own exercise solutions.

Each check runs your code on a handful of small random cases, compares it
with a reference (`dl4keras.attention` for attention; mean pooling over the
real tokens + L2 normalisation, what `keras_hub.models.TextEmbedder`
computes, for `sentence_embeddings`), prints readable feedback and returns
`True` (all cases pass) or `False`. When a case fails, the check also
runs the *typical wrong versions* of the computation on the same inputs
(forgot the 1/√d scale, softmax over the wrong axis, mask applied after the
softmax, heads merged in the wrong order, ...) and, if your result matches
one of them, names the mistake:

```python
import keras
from keras import ops

from dl4keras import check


def my_attention(query, key, value, mask=None):
    scores = ops.matmul(query, ops.swapaxes(key, -1, -2))  # forgot: / sqrt(d_k)
    if mask is not None:
        scores = ops.where(mask, scores, -1e9)
    return ops.matmul(ops.softmax(scores, axis=-1), value)


check.self_attention(my_attention)  # False, "DIAGNOSIS: forgot the 1/sqrt(d_k) scale: ..."
check.multi_head_attention(keras.layers.MultiHeadAttention)  # True; pass your layer class
```

`training_setup` checks a set-up rather than a function: it inspects a
compiled model (gradient accumulation, dtype policy, output dtype, loss
scaling, a learning-rate schedule right under accumulation) and names each
usual mistake with its fix.
"""

from dl4keras.check.attention import multi_head_attention, self_attention
from dl4keras.check.feature_extraction import feature_extractor
from dl4keras.check.fine_tuning import fine_tuning_setup
from dl4keras.check.text import sentence_embeddings
from dl4keras.check.training import training_setup
from dl4keras.check.vit import vit_variants

__all__ = [
    "feature_extractor",
    "fine_tuning_setup",
    "multi_head_attention",
    "self_attention",
    "sentence_embeddings",
    "training_setup",
    "vit_variants",
]
