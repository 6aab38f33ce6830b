"""Support-vector machine CPU kernels: dual coordinate descent for linear SVMs
(LIBLINEAR's solver) and SMO for kernel SVMs (LIBSVM's solver).

Both solve one binary problem and release the GIL, so the caller runs the
problems of a multi-class fit (one per class or per pair of classes) on a
thread pool.

Linear SVM, ``linear_svm_dual``: X (n, d) float64 (a constant column appended
by the caller for the intercept, which is then penalised like LIBLINEAR's),
y (n,) float64 of +-1 targets, w (d,) output. It minimises
1/2 |w|^2 + C sum loss(y_i w.x_i) through its dual; ``loss`` is 0 for the
hinge (0 <= alpha <= C) and 1 for the squared hinge (alpha >= 0, diagonal
1 / (2C)); coordinates are visited in a random order per sweep with
LIBLINEAR's shrinking and stop when the projected-gradient spread < tol.

Kernel SVM, ``smo``: X (n, d) float64, y (n,) +-1, output ``alpha`` (n,);
returns (rho, iterations). It minimises 1/2 a'Qa - sum a with 0 <= a <= C,
y'a = 0, Q_ij = y_i y_j K(x_i, x_j), by SMO with LIBSVM's second-order
working-set selection (WSS2: Fan, Chen and Lin, 2005) and an LRU cache of
float32 kernel rows (``cache_rows`` of them); the decision function is
sum_i a_i y_i K(x_i, x) - rho. Kernels: 0 linear x.z, 1 polynomial
(gamma x.z + coef0)^degree, 2 RBF exp(-gamma |x - z|^2).
"""
import numpy as np
from numba import njit

from nbdl.kernels.cpu.forest import _rand_below

LINEAR, POLY, RBF = 0, 1, 2
_TAU = 1e-12


@njit(cache=True, nogil=True)
def linear_svm_dual(X, y, C, loss, max_iter, tol, seed, w):
    """One binary linear SVM by dual coordinate descent; ``w`` (d,) out.
    Returns the number of sweeps."""
    n, d = X.shape
    diag = 0.5 / C if loss == 1 else 0.0
    upper = np.inf if loss == 1 else C
    state = np.empty(1, np.uint64)
    state[0] = np.uint64(seed)
    alpha = np.zeros(n)
    qd = np.empty(n)
    for i in range(n):
        qd[i] = diag + np.dot(X[i], X[i])
    w[:] = 0.0
    index = np.arange(n)
    active = n
    pg_max_old = np.inf
    pg_min_old = -np.inf
    it = 0
    while it < max_iter:
        pg_max = -np.inf
        pg_min = np.inf
        for s in range(active):
            j = s + _rand_below(state, active - s)
            index[s], index[j] = index[j], index[s]
        s = 0
        while s < active:
            i = index[s]
            g = y[i] * np.dot(w, X[i]) - 1.0 + alpha[i] * diag
            pg = 0.0
            if alpha[i] == 0.0:
                if g > pg_max_old:
                    active -= 1
                    index[s], index[active] = index[active], index[s]
                    continue
                if g < 0.0:
                    pg = g
            elif alpha[i] == upper:
                if g < pg_min_old:
                    active -= 1
                    index[s], index[active] = index[active], index[s]
                    continue
                if g > 0.0:
                    pg = g
            else:
                pg = g
            pg_max = max(pg_max, pg)
            pg_min = min(pg_min, pg)
            if abs(pg) > 1e-12 and qd[i] > 0.0:
                old = alpha[i]
                alpha[i] = min(max(old - g / qd[i], 0.0), upper)
                step = (alpha[i] - old) * y[i]
                for k in range(d):
                    w[k] += step * X[i, k]
            s += 1
        it += 1
        if pg_max - pg_min <= tol:
            if active == n:
                break
            active = n
            pg_max_old = np.inf
            pg_min_old = -np.inf
            continue
        pg_max_old = pg_max if pg_max > 0.0 else np.inf
        pg_min_old = pg_min if pg_min < 0.0 else -np.inf
    return it


@njit(cache=True, nogil=True)
def squared_hinge_terms(X, y, w, C, grad, hess):
    """Objective 1/2 |w|^2 + C sum max(0, 1 - y_i w.x_i)^2 at w (returned),
    its gradient into ``grad`` (d,) and, when ``hess`` has d rows, its
    generalised Hessian I + 2C X_A'X_A over the margin violators A into
    ``hess`` (d, d); X (n, d), y (n,) +-1. One pass over X, no BLAS (the
    primal Newton steps of ``LinearSVC``)."""
    n, d = X.shape
    with_hess = hess.shape[0] == d
    obj = 0.5 * np.dot(w, w)
    grad[:] = w
    if with_hess:
        hess[:] = 0.0
    for i in range(n):
        m = 1.0 - y[i] * np.dot(X[i], w)
        if m > 0.0:
            obj += C * m * m
            c = -2.0 * C * y[i] * m
            for a in range(d):
                grad[a] += c * X[i, a]
            if with_hess:
                for a in range(d):
                    xa = 2.0 * C * X[i, a]
                    for b in range(a, d):
                        hess[a, b] += xa * X[i, b]
    if with_hess:
        for a in range(d):
            hess[a, a] += 1.0
            for b in range(a):
                hess[a, b] = hess[b, a]
    return obj


@njit(cache=True, fastmath=True)
def _kernel_row(X, sq, i, kernel, gamma, coef0, degree, out):
    """out[j] = K(x_i, x_j) for every row j of X (sq: squared row norms)."""
    n, d = X.shape
    for j in range(n):
        dot = 0.0
        for k in range(d):
            dot += X[i, k] * X[j, k]
        if kernel == LINEAR:
            out[j] = dot
        elif kernel == POLY:
            out[j] = (gamma * dot + coef0) ** degree
        else:
            out[j] = np.exp(-gamma * max(sq[i] + sq[j] - 2.0 * dot, 0.0))


@njit(cache=True)
def _cached_row(i, X, sq, kernel, gamma, coef0, degree, cache, slot_of, owner, last_used, clock):
    """Row i of K from the LRU cache (computed into the least recently used
    slot on a miss; the row fetched last is never evicted by the next fetch).
    ``clock[0]`` counts accesses, ``clock[1]`` filled slots."""
    clock[0] += 1
    slot = slot_of[i]
    if slot < 0:
        if clock[1] < cache.shape[0]:
            slot = clock[1]
            clock[1] += 1
        else:
            slot = np.argmin(last_used)
            slot_of[owner[slot]] = -1
        owner[slot] = i
        slot_of[i] = slot
        _kernel_row(X, sq, i, kernel, gamma, coef0, degree, cache[slot])
    last_used[slot] = clock[0]
    return cache[slot]


@njit(cache=True, nogil=True)
def smo(X, y, C, kernel, gamma, coef0, degree, tol, max_iter, cache_rows, alpha):
    """One binary kernel SVM (X (n, d), y (n,) +-1) by SMO; ``alpha`` (n,) out.
    Returns (rho, iterations)."""
    n = X.shape[0]
    sq = np.empty(n)
    qd = np.empty(n)
    for i in range(n):
        sq[i] = np.dot(X[i], X[i])
        if kernel == LINEAR:
            qd[i] = sq[i]
        elif kernel == POLY:
            qd[i] = (gamma * sq[i] + coef0) ** degree
        else:
            qd[i] = 1.0
    cache = np.empty((max(2, min(cache_rows, n)), n), np.float32)
    slot_of = np.full(n, -1, np.int64)
    owner = np.full(cache.shape[0], -1, np.int64)
    last_used = np.zeros(cache.shape[0], np.int64)
    clock = np.zeros(2, np.int64)
    alpha[:] = 0.0
    grad = np.full(n, -1.0)
    it = 0
    while it < max_iter:
        # WSS2: i maximises -y_i grad_i over the "up" set, j the second-order gain
        g_max = -np.inf
        i = -1
        for t in range(n):
            if y[t] > 0:
                if alpha[t] < C and -grad[t] >= g_max:
                    g_max = -grad[t]
                    i = t
            elif alpha[t] > 0.0 and grad[t] >= g_max:
                g_max = grad[t]
                i = t
        if i < 0:
            break
        k_i = _cached_row(i, X, sq, kernel, gamma, coef0, degree, cache, slot_of, owner,
                          last_used, clock)
        g_max2 = -np.inf
        j = -1
        obj_min = np.inf
        for t in range(n):
            if y[t] > 0:
                if alpha[t] > 0.0:
                    diff = g_max + grad[t]
                    g_max2 = max(g_max2, grad[t])
                else:
                    continue
            else:
                if alpha[t] < C:
                    diff = g_max - grad[t]
                    g_max2 = max(g_max2, -grad[t])
                else:
                    continue
            if diff > 0.0:
                quad = qd[i] + qd[t] - 2.0 * k_i[t]
                obj = -diff * diff / (quad if quad > 0.0 else _TAU)
                if obj <= obj_min:
                    obj_min = obj
                    j = t
        if g_max + g_max2 < tol or j < 0:
            break
        it += 1
        k_j = _cached_row(j, X, sq, kernel, gamma, coef0, degree, cache, slot_of, owner,
                          last_used, clock)
        a_i, a_j = alpha[i], alpha[j]
        q_ij = y[i] * y[j] * k_i[j]
        if y[i] != y[j]:
            quad = qd[i] + qd[j] + 2.0 * q_ij
            delta = (-grad[i] - grad[j]) / (quad if quad > 0.0 else _TAU)
            diff = a_i - a_j
            new_i = a_i + delta
            new_j = a_j + delta
            if diff > 0.0:
                if new_j < 0.0:
                    new_j = 0.0
                    new_i = diff
            elif new_i < 0.0:
                new_i = 0.0
                new_j = -diff
            if diff > 0.0:
                if new_i > C:
                    new_i = C
                    new_j = C - diff
            elif new_j > C:
                new_j = C
                new_i = C + diff
        else:
            quad = qd[i] + qd[j] - 2.0 * q_ij
            delta = (grad[i] - grad[j]) / (quad if quad > 0.0 else _TAU)
            total = a_i + a_j
            new_i = a_i - delta
            new_j = a_j + delta
            if total > C:
                if new_i > C:
                    new_i = C
                    new_j = total - C
            elif new_j < 0.0:
                new_j = 0.0
                new_i = total
            if total > C:
                if new_j > C:
                    new_j = C
                    new_i = total - C
            elif new_i < 0.0:
                new_i = 0.0
                new_j = total
        alpha[i] = new_i
        alpha[j] = new_j
        d_i = (new_i - a_i) * y[i]
        d_j = (new_j - a_j) * y[j]
        for t in range(n):
            grad[t] += y[t] * (k_i[t] * d_i + k_j[t] * d_j)

    # rho: mean of y_i grad_i over free alphas, else the middle of the bounds
    n_free = 0
    free_sum = 0.0
    ub = np.inf
    lb = -np.inf
    for t in range(n):
        yg = y[t] * grad[t]
        if alpha[t] >= C:
            if y[t] < 0:
                ub = min(ub, yg)
            else:
                lb = max(lb, yg)
        elif alpha[t] <= 0.0:
            if y[t] > 0:
                ub = min(ub, yg)
            else:
                lb = max(lb, yg)
        else:
            n_free += 1
            free_sum += yg
    rho = free_sum / n_free if n_free > 0 else (ub + lb) / 2.0
    return rho, it
