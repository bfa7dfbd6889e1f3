"""Argument validation shared by the layers and models (private).

Every check raises a `ValueError` in Keras's own wording: the argument, what
is allowed, and the value received, e.g. "Received an invalid value for
argument `num_heads`, expected a positive integer. Received: num_heads=0".
Like `keras/src/utils/argument_validation.py`, this module imports nothing
but the standard library.
"""

import numbers


def invalid(name, expected, value):
    """The `ValueError` for argument `name`: what was `expected`, and `value`."""
    return ValueError(
        f"Received an invalid value for argument `{name}`, expected {expected}. "
        f"Received: {name}={value!r}"
    )


def is_positive_int(value):
    """True for an integer > 0 (Python or NumPy), False for bools and anything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(name, value, allow_none=False):
    """`value` as an `int` > 0 (or None when `allow_none`), else a clear `ValueError`."""
    if allow_none and value is None:
        return None
    if not is_positive_int(value):
        raise invalid(name, "a positive integer" + (" or None" if allow_none else ""), value)
    return int(value)


def positive_float(name, value):
    """`value` as a `float` > 0, else a clear `ValueError`."""
    if not _is_real(value) or not value > 0:
        raise invalid(name, "a positive float", value)
    return float(value)


def rate(name, value):
    """`value` as a `float` in [0, 1) (a dropout or drop-path rate), else a `ValueError`."""
    if not _is_real(value) or not 0.0 <= value < 1.0:
        raise invalid(name, "a float in [0, 1)", value)
    return float(value)


def pair(name, value):
    """`value` as a `(height, width)` tuple of positive ints, from an int or a pair."""
    given = value
    if is_positive_int(value):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(is_positive_int(v) for v in value)
    ):
        raise invalid(
            name, "a positive integer or a tuple of two positive integers (height, width)", given
        )
    return (int(value[0]), int(value[1]))


def positive_int_tuple(name, value, allow_none=False):
    """`value` as a non-empty tuple of positive ints, from an int or a sequence."""
    if allow_none and value is None:
        return None
    given = value
    if is_positive_int(value):
        value = (value,)
    if (
        not isinstance(value, (tuple, list))
        or not value
        or not all(is_positive_int(v) for v in value)
    ):
        expected = "a positive integer or a non-empty tuple of positive integers"
        raise invalid(name, expected + (" or None" if allow_none else ""), given)
    return tuple(int(v) for v in value)


def heads_divide(hidden_dim, num_heads):
    """Raises a `ValueError` unless `num_heads` divides `hidden_dim` (each head's share)."""
    if hidden_dim % num_heads:
        raise ValueError(
            f"`hidden_dim` must be divisible by `num_heads`: each head gets "
            f"hidden_dim / num_heads features. Received: hidden_dim={hidden_dim}, "
            f"num_heads={num_heads} ({hidden_dim} / {num_heads} = "
            f"{hidden_dim / num_heads:g})"
        )


def one_of(name, value, allowed):
    """`value` if it is in `allowed`, else a `ValueError` listing the allowed values."""
    if value not in allowed:
        raise invalid(name, "one of " + ", ".join(repr(a) for a in allowed), value)
    return value


def optional_seed(name, value):
    """`value` if it is an int or None (a random seed), else a clear `ValueError`."""
    if value is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool)):
        raise invalid(name, "an integer or None", value)
    return value
