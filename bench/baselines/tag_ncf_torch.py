"""Tag-aware NCF in PyTorch (Debian python3-torch 1.13): the Python baseline of Petal's
src/model/tag_ncf.{h,cc} and model::LocalWorkload, written from their documented contract.

Same architecture, initialization scheme, loss, optimizer parameter groups, negative
sampling protocol and metrics as Petal; the data is the one petal-client trains on,
exported by `petal_bench_export` (bench/baselines/export_client_data.cc) so that both
sides see the identical partition, split and tag features.

  model (user u, item i, item tag row t_i, user tag profile p_u; E = tag embeddings):
    g = (P_u + A E^T p_u) * (Q_i + B E^T t_i)
    m = MLP([P'_u, Q'_i, E^T t_i, E^T p_u])            (ReLU tower 64-32-16)
    y = w . [g, m] + c + b_u + b_i                      (a logit; BCE, 4 negatives/positive)
  user_* parameters are LOCAL (never sent); the rest are GLOBAL, sent in
  named_parameters() order.

Tag rows are held as dense [rows, num_tags] float32 matrices (ML-100K has 19 genres),
so E^T t is one matmul: the idiomatic PyTorch form, equal to Petal's embedding_bag sum.
"""

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ID_TABLES = ("user_gmf", "user_mlp", "user_bias", "item_gmf", "item_mlp", "item_bias")


def _csr_dense(offsets, indices, weights, rows, cols):
    out = np.zeros((rows, max(cols, 1)), dtype=np.float32)
    row_of = np.repeat(np.arange(rows), np.diff(offsets))
    np.add.at(out, (row_of, indices), weights)
    return torch.from_numpy(out)


class ClientData:
    """One client's data from a petal_bench_export .npz."""

    def __init__(self, path):
        with np.load(path) as z:
            a = {k: z[k] for k in z.files}
        self.num_items = int(a["num_items"][0])
        self.num_tags = int(a["num_tags"][0])
        self.train_user = a["train_user"]
        self.train_item = a["train_item"]
        self.has_train = a["has_train"].astype(bool)
        self.num_users = len(self.has_train)
        self.item_tags = _csr_dense(a["item_tag_offsets"], a["item_tag_indices"],
                                    a["item_tag_weights"], self.num_items, self.num_tags)
        self.profiles = _csr_dense(a["profile_offsets"], a["profile_indices"],
                                   a["profile_weights"], self.num_users, self.num_tags)
        # seen[u, i]: the user trained on item i (negatives are drawn outside it).
        self.seen = np.zeros((self.num_users, self.num_items), dtype=bool)
        so = a["seen_offsets"]
        self.seen[np.repeat(np.arange(self.num_users), np.diff(so)), a["seen_items"]] = True
        self.seen_count = np.diff(so)
        self.rank_user = a["rank_user"]
        self.rank_item = a["rank_item"]
        self.rank_neg_offsets = a["rank_neg_offsets"]
        self.rank_negatives = a["rank_negatives"]


class TagNcf(nn.Module):
    def __init__(self, num_users, num_items, num_tags, gmf_dim=32, mlp_dim=32, tag_dim=32,
                 layers=(64, 32, 16), init_std=0.01):
        super().__init__()
        self.user_gmf = nn.Embedding(num_users, gmf_dim)
        self.user_mlp = nn.Embedding(num_users, mlp_dim)
        self.user_bias = nn.Embedding(num_users, 1)
        self.item_gmf = nn.Embedding(num_items, gmf_dim)
        self.item_mlp = nn.Embedding(num_items, mlp_dim)
        self.item_bias = nn.Embedding(num_items, 1)
        self.tag_embedding = nn.Embedding(max(num_tags, 1), tag_dim)
        self.profile_proj = nn.Linear(tag_dim, gmf_dim, bias=False)
        self.item_tag_proj = nn.Linear(tag_dim, gmf_dim, bias=False)
        self.mlp = nn.ModuleList()
        width = 2 * mlp_dim + 2 * tag_dim
        for h in layers:
            self.mlp.append(nn.Linear(width, h))
            width = h
        self.output = nn.Linear(gmf_dim + width, 1)
        self.init_std = init_std

    def initialize(self, seed):
        """Embeddings N(0, init_std), linear weights Glorot-uniform, biases 0; one generator
        per parameter derived from (seed, name), so global weights do not depend on the
        number of users."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                gen = torch.Generator().manual_seed((seed * 1_000_003 + sum(
                    (i + 1) * ord(c) for i, c in enumerate(name))) % (2 ** 63))
                if name in ("user_bias.weight", "item_bias.weight") or p.dim() == 1:
                    p.zero_()
                elif name.split(".")[0] in ("user_gmf", "user_mlp", "item_gmf", "item_mlp",
                                            "tag_embedding"):
                    p.normal_(0.0, self.init_std, generator=gen)
                else:
                    bound = (6.0 / (p.shape[0] + p.shape[1])) ** 0.5
                    p.uniform_(-bound, bound, generator=gen)

    def forward(self, users, items, item_t_rows, profile_rows, with_penalty=False):
        """users: local rows (-1 = cold start); item_t_rows / profile_rows: [B, T] tag rows."""
        known = (users >= 0).to(torch.float32).unsqueeze(1)
        u = users.clamp_min(0)
        e = self.tag_embedding.weight
        item_t = item_t_rows @ e
        user_t = profile_rows @ e
        p_gmf = self.user_gmf(u) * known
        q_gmf = self.item_gmf(items)
        p_mlp = self.user_mlp(u) * known
        q_mlp = self.item_mlp(items)
        bu = (self.user_bias(u) * known).squeeze(1)
        bi = self.item_bias(items).squeeze(1)
        g = (p_gmf + self.profile_proj(user_t)) * (q_gmf + self.item_tag_proj(item_t))
        h = torch.cat([p_mlp, q_mlp, item_t, user_t], 1)
        for layer in self.mlp:
            h = torch.relu(layer(h))
        y = self.output(torch.cat([g, h], 1)).squeeze(1) + bi + bu
        penalty = None
        if with_penalty:
            penalty = (p_gmf.square().sum(1) + q_gmf.square().sum(1) + p_mlp.square().sum(1)
                       + q_mlp.square().sum(1) + bi.square() + bu.square()).mean()
        return y, penalty

    def global_named(self):
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("user_")]


class Trainer:
    """LocalWorkload's training loop and leave-one-out evaluation, in PyTorch."""

    def __init__(self, data, seed=1, threads=1, batch_size=256, lr=1e-3, weight_decay=0.0,
                 embedding_reg=0.0, num_negatives=4, model_kw=None):
        torch.set_num_threads(threads)
        self.data = data
        self.model = TagNcf(data.num_users, data.num_items, data.num_tags, **(model_kw or {}))
        self.model.initialize(seed)
        self.batch_size = batch_size
        self.embedding_reg = embedding_reg
        self.num_negatives = num_negatives
        emb = [p for n, p in self.model.named_parameters() if n.split(".")[0] in ID_TABLES]
        dense = [p for n, p in self.model.named_parameters() if n.split(".")[0] not in ID_TABLES]
        self.optimizer = torch.optim.Adam([{"params": emb, "weight_decay": 0.0},
                                           {"params": dense, "weight_decay": weight_decay}], lr=lr)
        self.rng = np.random.default_rng(seed)

    # --- parameters (the NumPyClient view) --------------------------------
    def get_global(self):
        return [p.detach().numpy().copy() for _, p in self.model.global_named()]

    def set_global(self, arrays):
        named = self.model.global_named()
        if len(arrays) != len(named):
            raise ValueError(f"expected {len(named)} arrays, got {len(arrays)}")
        with torch.no_grad():
            for (name, p), a in zip(named, arrays):
                if tuple(a.shape) != tuple(p.shape):
                    raise ValueError(f"{name}: shape {a.shape} != {tuple(p.shape)}")
                p.copy_(torch.from_numpy(np.asarray(a, dtype=np.float32)))
                # Optimizer state of global weights described other weights.
                self.optimizer.state.pop(p, None)

    # --- training ---------------------------------------------------------
    def _negatives(self, users):
        """num_negatives uniform items per positive, never one the user trained on."""
        d = self.data
        k = self.num_negatives
        users = users[d.seen_count[users] < d.num_items]
        neg_users = np.repeat(users, k)
        neg_items = self.rng.integers(0, d.num_items, size=len(neg_users))
        bad = d.seen[neg_users, neg_items]
        while bad.any():
            neg_items[bad] = self.rng.integers(0, d.num_items, size=int(bad.sum()))
            bad = d.seen[neg_users, neg_items]
        return neg_users, neg_items

    def train(self, epochs=1):
        d = self.data
        self.model.train()
        t0 = time.perf_counter()
        samples = 0
        last = 0.0
        for _ in range(epochs):
            nu, ni = self._negatives(d.train_user)
            users = np.concatenate([d.train_user, nu])
            items = np.concatenate([d.train_item, ni])
            labels = np.concatenate([np.ones(len(d.train_user), np.float32),
                                     np.zeros(len(nu), np.float32)])
            order = self.rng.permutation(len(users))
            users_t = torch.from_numpy(users[order])
            items_t = torch.from_numpy(items[order])
            labels_t = torch.from_numpy(labels[order])
            rows_t = torch.from_numpy(np.where(d.has_train[users[order]], users[order], -1))
            loss_sum = 0.0
            n = len(users)
            for s in range(0, n, self.batch_size):
                u = users_t[s:s + self.batch_size]
                i = items_t[s:s + self.batch_size]
                y, penalty = self.model(rows_t[s:s + self.batch_size], i, d.item_tags[i],
                                        d.profiles[u], self.embedding_reg > 0)
                data_loss = F.binary_cross_entropy_with_logits(y, labels_t[s:s + self.batch_size])
                loss = data_loss + self.embedding_reg * penalty if penalty is not None else data_loss
                value = float(data_loss)
                if not np.isfinite(value):
                    raise RuntimeError("training diverged: non-finite loss")
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                loss_sum += value * len(u)
            samples += n
            last = loss_sum / max(n, 1)
        seconds = time.perf_counter() - t0
        return {"train_loss": last, "num_samples": samples, "train_seconds": seconds,
                "samples_per_second": samples / seconds if seconds > 0 else 0.0}

    @torch.no_grad()
    def evaluate(self, k=10, batch_size=8192):
        d = self.data
        self.model.eval()
        counts = np.diff(d.rank_neg_offsets)
        cases = len(d.rank_user)
        users = np.repeat(d.rank_user, counts + 1)
        items = np.empty(len(users), dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts + 1)[:-1]]).astype(np.int64)
        items[starts] = d.rank_item
        mask = np.ones(len(users), dtype=bool)
        mask[starts] = False
        items[mask] = d.rank_negatives
        rows = np.where(d.has_train[users], users, -1)
        scores = []
        for s in range(0, len(users), batch_size):
            u = torch.from_numpy(users[s:s + batch_size])
            i = torch.from_numpy(items[s:s + batch_size])
            y, _ = self.model(torch.from_numpy(rows[s:s + batch_size]), i, d.item_tags[i],
                              d.profiles[u])
            scores.append(y)
        scores = torch.cat(scores).numpy().astype(np.float64) if scores else np.zeros(0)
        labels = np.zeros(len(users))
        labels[starts] = 1.0
        # Stable BCE on logits.
        loss = float(np.mean(np.log1p(np.exp(-np.abs(scores))) + np.maximum(scores, 0)
                             - scores * labels)) if len(scores) else 0.0
        hits = ndcg = 0.0
        for c in range(cases):
            pos = scores[starts[c]]
            neg = scores[starts[c] + 1:starts[c] + 1 + counts[c]]
            rank = int(np.sum(~(neg < pos)))
            if rank < k:
                hits += 1.0
                ndcg += 1.0 / np.log2(rank + 2.0)
        self.model.train()
        return {"loss": loss, "num_examples": cases, f"hr@{k}": hits / max(cases, 1),
                f"ndcg@{k}": ndcg / max(cases, 1)}
