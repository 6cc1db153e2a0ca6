"""Batched logistic regression by Newton's method, shared by Bradley–Terry and AlpacaEval's GLM.

`fit_logistic(X, y, weights)` maximises Σ_n w_rn·[y_n·log σ(x_n·β_r) + (1 − y_n)·log(1 − σ(x_n·β_r))]
for every row r of `weights` at once (bootstrap resamples share X and y, only the weights
change), with soft labels y ∈ [0, 1], no intercept and no penalty: the plain MLE.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: a wild first step on near-separated data is cut to this size (in logits)
MAX_STEP = 5.0


def sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = np.exp(-np.logaddexp(0.0, -x))
    return out


def fit_logistic(x: FloatArray, y: FloatArray, weights: FloatArray, *, max_iter: int = 200,
                 damping: float = 1e-9) -> FloatArray:
    """β (rows of `weights` × columns of x). `damping` is added to the Hessian in the linear
    solve only: it keeps a singular direction (BT's constant shift) from moving, and leaves
    the fixed point, the zero of the gradient, unchanged."""
    rows, k = weights.shape[0], x.shape[1]
    beta = np.zeros((rows, k))
    ridge = damping * np.eye(k)
    for _ in range(max_iter):
        p = sigmoid(beta @ x.T)  # rows × n
        grad = (weights * (y - p)) @ x  # rows × k
        curvature = weights * p * (1.0 - p)
        hess = np.einsum("rn,ni,nj->rij", curvature, x, x, optimize=True) + ridge
        step = np.clip(np.linalg.solve(hess, grad[..., None])[..., 0], -MAX_STEP, MAX_STEP)
        beta += step
        if np.max(np.abs(step)) < 1e-12 or np.max(np.abs(grad)) < 1e-11:
            break
    return beta
