"""A stochastic bilevel problem with a closed-form solution, for tests and benchmarks.

    g(x, y; xi) = 1/2 y' A_xi y - y' B_xi x              (lower level, strongly convex in y)
    f(x, y; xi) = 1/2 ||y - c_xi||^2 + mu/2 ||x||^2      (upper level)

with ``A_xi = A + sigma_h S``, ``B_xi = B + sigma N``, ``c_xi = c + sigma n`` and S (symmetrised), N, n
standard Gaussian. The Hessian noise ``sigma_h`` is kept small by default (a batch's ``A_xi`` must stay
positive definite, and ``E[A_xi^{-1}] != A^{-1}`` biases every implicit-gradient estimator by
O(sigma_h^2 / b)). A minibatch of size b is the average of b samples, i.e. the same matrices with
noise ``sigma / sqrt(b)`` (drawn directly: exact in distribution, O(1) work per batch).

Solution: ``y*(x) = M x`` with ``M = A^{-1} B``, ``Phi(x) = 1/2 ||M x - c||^2 + mu/2 ||x||^2``, so
``x* = (M'M + mu I)^{-1} M'c`` and ``grad Phi(x) = M'(M x - c) + mu x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .problem import Tensors


@dataclass
class QuadraticBatch:
    A: Tensor
    B: Tensor
    c: Tensor


class QuadraticBilevel:
    """The problem above with ``dim_x = dim_y = dim``, A's eigenvalues spread over [1, kappa]."""

    def __init__(self, dim: int = 5, sigma: float = 1.0, sigma_h: float = 0.1, mu: float = 1.0,
                 kappa: float = 3.0, seed: int = 0, dtype: torch.dtype = torch.float64) -> None:
        gen = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=dtype))
        eig = torch.linspace(1.0, kappa, dim, dtype=dtype)
        self.A = q @ torch.diag(eig) @ q.T
        self.B = torch.randn(dim, dim, generator=gen, dtype=dtype) / dim ** 0.5 + torch.eye(dim, dtype=dtype)
        self.c = torch.randn(dim, generator=gen, dtype=dtype)
        self.dim, self.sigma, self.sigma_h, self.mu, self.dtype = dim, sigma, sigma_h, mu, dtype
        self.M = torch.linalg.solve(self.A, self.B)

    # -- oracles ----------------------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator) -> QuadraticBatch:
        s, sh = self.sigma / n ** 0.5, self.sigma_h / n ** 0.5
        d, dt = self.dim, self.dtype
        noise = torch.randn(d, d, generator=generator, dtype=dt)
        return QuadraticBatch(self.A + sh * (noise + noise.T) / 2 ** 0.5,
                              self.B + s * torch.randn(d, d, generator=generator, dtype=dt),
                              self.c + s * torch.randn(d, generator=generator, dtype=dt))

    def lower(self, x: Tensors, y: Tensors, batch: QuadraticBatch) -> Tensor:
        (x,), (y,) = x, y
        return 0.5 * y @ batch.A @ y - y @ batch.B @ x

    def upper(self, x: Tensors, y: Tensors, batch: QuadraticBatch) -> Tensor:
        (x,), (y,) = x, y
        return 0.5 * ((y - batch.c) ** 2).sum() + 0.5 * self.mu * (x ** 2).sum()

    # -- closed form ------------------------------------------------------------------------------
    def solution(self) -> tuple[Tensor, Tensor]:
        """``(x*, y*(x*))``."""
        eye = torch.eye(self.dim, dtype=self.dtype)
        x = torch.linalg.solve(self.M.T @ self.M + self.mu * eye, self.M.T @ self.c)
        return x, self.M @ x

    def phi(self, x: Tensor) -> float:
        return float(0.5 * ((self.M @ x - self.c) ** 2).sum() + 0.5 * self.mu * (x ** 2).sum())

    def grad_phi(self, x: Tensor) -> Tensor:
        return self.M.T @ (self.M @ x - self.c) + self.mu * x
