"""Random-forest CPU kernels: histogram split search on binned features, trees
built in parallel (one ``prange`` iteration per tree), parallel prediction.

Layouts:

- ``Xb`` (n_features, n_samples) uint8: the bin of every value, feature-major
  so a node's histogram for one feature reads one row. Bin ``b`` of feature
  ``f`` holds the values ``x`` with ``edges[f, b - 1] < x <= edges[f, b]``
  (see ``nbdl.algorithms.forest``); ``n_bins[f]`` bins are used.
- targets: ``yc`` (n_samples,) int64 class indices with ``n_classes >= 2``
  for classification; ``yr`` (n_samples,) float64 with ``n_classes == 0``
  for regression (the other array is ignored).
- trees (one row per tree, ``max_nodes`` slots, node 0 the root): ``feature``
  int64, ``split_bin`` int64 (left child: bin <= split_bin), ``left``/``right``
  int64 child slots (all -1 at a leaf), ``value`` (max_nodes, n_outputs)
  float64 (class fractions, or the mean), ``impurity`` and ``weight`` (the
  bootstrap-weighted sample count) float64, ``node_count`` (n_trees,).

Every tree draws from its own splitmix64 generator seeded by ``seeds[t]``, so
a forest is the same for any number of threads. The split search follows
scikit-learn's: features drawn without replacement until ``max_features``
non-constant ones were scanned, the best proxy improvement wins (first one on
ties), leaves when pure, too deep, or under ``min_samples_split`` samples, and
``min_samples_leaf`` counts distinct (unweighted) samples.
"""
import numpy as np
from numba import njit, prange

GINI, ENTROPY, MSE = 0, 1, 2
_EPS = np.finfo(np.float64).eps


@njit(cache=True)
def _rand(state):
    """splitmix64: the next 64-bit word of the generator held in ``state[0]``."""
    state[0] += np.uint64(0x9E3779B97F4A7C15)
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _rand_below(state, n):
    """A uniform integer in [0, n)."""
    return np.int64(_rand(state) % np.uint64(n))


@njit(cache=True)
def _node_stats(idx, start, end, w, yc, yr, n_classes, criterion, totals):
    """Fill ``totals`` (class weights, or [weight, weighted sum]) of the
    samples ``idx[start:end]``; return (weight, impurity)."""
    totals[:] = 0.0
    total_w = 0.0
    sq = 0.0
    for p in range(start, end):
        i = idx[p]
        wi = w[i]
        total_w += wi
        if n_classes > 0:
            totals[yc[i]] += wi
        else:
            totals[1] += wi * yr[i]
            sq += wi * yr[i] * yr[i]
    if n_classes == 0:
        totals[0] = total_w
        mean = totals[1] / total_w
        return total_w, max(sq / total_w - mean * mean, 0.0)
    impurity = 0.0
    if criterion == GINI:
        impurity = 1.0
        for k in range(n_classes):
            frac = totals[k] / total_w
            impurity -= frac * frac
    else:
        for k in range(n_classes):
            if totals[k] > 0.0:
                frac = totals[k] / total_w
                impurity -= frac * np.log(frac)
    return total_w, impurity


@njit(cache=True)
def _proxy(left, totals, n_stats, criterion):
    """The split score to maximise (scikit-learn's proxy improvement): minus
    the children's weighted impurities up to a constant of the node."""
    if criterion == MSE:
        wl = left[0]
        wr = totals[0] - wl
        sr = totals[1] - left[1]
        return left[1] * left[1] / wl + sr * sr / wr
    wl = 0.0
    wr = 0.0
    for k in range(n_stats):
        wl += left[k]
        wr += totals[k] - left[k]
    if criterion == GINI:
        sl = 0.0
        sr = 0.0
        for k in range(n_stats):
            r = totals[k] - left[k]
            sl += left[k] * left[k]
            sr += r * r
        return sl / wl + sr / wr
    score = 0.0                                 # entropy
    for k in range(n_stats):
        r = totals[k] - left[k]
        if left[k] > 0.0:
            score += left[k] * np.log(left[k] / wl)
        if r > 0.0:
            score += r * np.log(r / wr)
    return score


@njit(cache=True)
def _build_tree(Xb, n_bins, yc, yr, n_classes, criterion, seed, bootstrap, max_features,
                max_depth, min_samples_split, min_samples_leaf,
                feature, split_bin, left, right, value, impurity, weight):
    """Grow one tree depth-first into the given node rows; return its node count."""
    n_features, n = Xb.shape
    n_stats = n_classes if n_classes > 0 else 2
    max_bins = 0
    for f in range(n_features):
        max_bins = max(max_bins, n_bins[f])
    state = np.empty(1, np.uint64)
    state[0] = np.uint64(seed)

    w = np.zeros(n)
    if bootstrap:
        for _ in range(n):
            w[_rand_below(state, n)] += 1.0
    else:
        w[:] = 1.0
    idx = np.empty(n, np.int64)
    n_in = 0
    for i in range(n):
        if w[i] > 0.0:
            idx[n_in] = i
            n_in += 1

    hist = np.zeros(max_bins * n_stats)
    cnt = np.zeros(max_bins, np.int64)
    totals = np.empty(n_stats)
    left_stats = np.empty(n_stats)
    feats = np.arange(n_features)
    max_nodes = feature.shape[0]
    st_node = np.empty(max_nodes, np.int64)
    st_start = np.empty(max_nodes, np.int64)
    st_end = np.empty(max_nodes, np.int64)
    st_depth = np.empty(max_nodes, np.int64)
    st_node[0], st_start[0], st_end[0], st_depth[0] = 0, 0, n_in, 0
    top = 1
    node_count = 1
    while top > 0:
        top -= 1
        node, start, end, depth = st_node[top], st_start[top], st_end[top], st_depth[top]
        w_node, imp = _node_stats(idx, start, end, w, yc, yr, n_classes, criterion, totals)
        weight[node] = w_node
        impurity[node] = imp
        if n_classes > 0:
            for k in range(n_classes):
                value[node, k] = totals[k] / w_node
        else:
            value[node, 0] = totals[1] / w_node
        feature[node] = -1                      # a leaf unless split below
        split_bin[node] = -1
        left[node] = -1
        right[node] = -1
        n_node = end - start
        if depth >= max_depth or n_node < min_samples_split or n_node < 2 * min_samples_leaf \
                or imp <= _EPS:
            continue

        best = -np.inf
        best_f = -1
        best_b = -1
        n_scanned = 0
        i_f = 0
        while i_f < n_features and n_scanned < max_features:
            j = i_f + _rand_below(state, n_features - i_f)
            f = feats[j]
            feats[j] = feats[i_f]
            feats[i_f] = f
            i_f += 1
            row = Xb[f]
            bmin = n_bins[f]
            bmax = -1
            for p in range(start, end):
                i = idx[p]
                b = np.int64(row[i])
                cnt[b] += 1
                if n_classes > 0:
                    hist[b * n_stats + yc[i]] += w[i]
                else:
                    hist[b * 2] += w[i]
                    hist[b * 2 + 1] += w[i] * yr[i]
                bmin = min(bmin, b)
                bmax = max(bmax, b)
            if bmin < bmax:
                n_scanned += 1
                left_stats[:] = 0.0
                n_left = 0
                for b in range(bmin, bmax):
                    if cnt[b] == 0:
                        continue
                    n_left += cnt[b]
                    for k in range(n_stats):
                        left_stats[k] += hist[b * n_stats + k]
                    if n_left < min_samples_leaf:
                        continue
                    if n_node - n_left < min_samples_leaf:
                        break
                    score = _proxy(left_stats, totals, n_stats, criterion)
                    if score > best:
                        best, best_f, best_b = score, f, b
            hist[bmin * n_stats:(bmax + 1) * n_stats] = 0.0
            cnt[bmin:bmax + 1] = 0
        if best_f < 0:
            continue

        row = Xb[best_f]
        lo, hi = start, end - 1
        while lo <= hi:                         # partition: bin <= best_b first
            if np.int64(row[idx[lo]]) <= best_b:
                lo += 1
            else:
                tmp = idx[lo]
                idx[lo] = idx[hi]
                idx[hi] = tmp
                hi -= 1
        feature[node] = best_f
        split_bin[node] = best_b
        left[node] = node_count
        right[node] = node_count + 1
        st_node[top], st_start[top], st_end[top], st_depth[top] = node_count + 1, lo, end, depth + 1
        st_node[top + 1], st_start[top + 1], st_end[top + 1], st_depth[top + 1] = \
            node_count, start, lo, depth + 1
        top += 2
        node_count += 2
    return node_count


@njit(cache=True, parallel=True)
def build_forest(Xb, n_bins, yc, yr, n_classes, criterion, seeds, bootstrap, max_features,
                 max_depth, min_samples_split, min_samples_leaf,
                 feature, split_bin, left, right, value, impurity, weight, node_count):
    """Grow ``len(seeds)`` trees in parallel into row t of each tree array."""
    for t in prange(seeds.shape[0]):
        node_count[t] = _build_tree(Xb, n_bins, yc, yr, n_classes, criterion, seeds[t], bootstrap,
                                    max_features, max_depth, min_samples_split, min_samples_leaf,
                                    feature[t], split_bin[t], left[t], right[t], value[t],
                                    impurity[t], weight[t])


@njit(cache=True, parallel=True)
def predict_forest(X, feature, threshold, left, right, value, roots, partial):
    """``partial[g]`` (n_samples, n_outputs) = sum of the leaf values of the
    rows of X (n_samples, n_features) over the trees of group g (trees
    g, g + G, g + 2G, ..., G = len(partial)). Flat node arrays, tree t rooted
    at ``roots[t]``, go left when ``x[feature] <= threshold``. Parallel over
    the groups: one tree's nodes stay in cache while every row walks it, and
    the caller sums the groups in order, so the result does not depend on the
    number of threads."""
    n = X.shape[0]
    n_groups = partial.shape[0]
    for g in prange(n_groups):
        acc = partial[g]
        acc[:] = 0.0
        for t in range(g, roots.shape[0], n_groups):
            for i in range(n):
                node = roots[t]
                while feature[node] >= 0:
                    if X[i, feature[node]] <= threshold[node]:
                        node = left[node]
                    else:
                        node = right[node]
                for k in range(value.shape[1]):
                    acc[i, k] += value[node, k]
