"""Gradients on the JAX backend: jax.grad, the auxiliary output carried along."""

import jax


def gradient(fn, x):
    return jax.grad(fn, has_aux=True)(x)
