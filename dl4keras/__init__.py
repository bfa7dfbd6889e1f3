"""dl4keras: companion package for "Practical 4: Advanced Topics in Deep Learning".

Helpers for transfer learning, fine-tuning, attention, Transformers and modern
training techniques with Keras 3, used by the tutorials in ``tutorials/``.
"""

__version__ = "0.1.0"

from dl4keras import profiles, results  # noqa: E402,F401
