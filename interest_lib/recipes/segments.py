r"""Chapter 4's recipe: users as TF-IDF vectors, KMeans segments graded against the planted ones.

The functions follow the chapter's sections; :func:`segments_chapter` runs all of them with the
chapter's parameters (:data:`SEGMENT_DEFAULTS`) and is what the chapter's tests check.

- :func:`training_data` — the training window, its vocabulary and counts, the answer key;
- :func:`idf_facts` — what the idf and the logarithmic term frequency do;
- :func:`silhouette_reading`, :func:`cluster_names`, :func:`profile_hits`;
- :func:`split_half_stability`, :func:`term_frequency_variants` — logarithmic against raw counts;
- :func:`share_bins`, :func:`error_rates`, :func:`error_table` — where the clusters err;
- :func:`limit_facts` — what limits the agreement: sparse, overlapping segments and personal
  favourites, measured on the vectors and the simulator's emission rows;
- :func:`session_route` — sessions clustered and read back to users;
- :func:`rules_case` — a shallow decision tree that explains the segments;
- :func:`platform_vectors`, :func:`transfer_comparison`, :func:`top_category_share` — carrying
  segments from the app to the web with centroids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.tree import DecisionTreeClassifier

from interest_lib.data import features
from interest_lib.data.features import CategoryVocabulary, UserCategoryMatrix
from interest_lib.data.simulation import Simulation, simulate
from interest_lib.data.split import split_by_time
from interest_lib.models import clusters

SEGMENT_DEFAULTS: dict[str, Any] = {
    "n_users": 5000,
    "k_values": tuple(range(2, 11)),
    "n_init": 10,
    "silhouette_sample": 3000,
    "tree_depth": 4,
}
"""Parameters of chapter 4: simulated users, the ``k`` tried, KMeans restarts per fit, rows of the
silhouette subsample, depth of the explaining tree."""

CLOSE_MATCH_ARI: float = 0.7
"""From this ARI against the dominant segments on, the chapter calls the match close
(:func:`match_word`); below it, partial. The chapter reports the measured ARI whatever it is."""


def match_word(ari: float) -> str:
    """How the chapter describes an ARI against the planted segments: ``"closely"`` from
    :data:`CLOSE_MATCH_ARI` on, ``"only in part"`` below it."""
    return "closely" if ari >= CLOSE_MATCH_ARI else "only in part"


def unmatched_phrase(n_unmatched: int) -> str:
    """'every cluster is matched to a segment', 'one cluster is left unmatched', 'n clusters ...'."""
    if n_unmatched == 0:
        return "every cluster is matched to a segment"
    if n_unmatched == 1:
        return "one cluster is left unmatched"
    return f"{n_unmatched} clusters are left unmatched"


@dataclass(eq=False)
class SegmentData:
    """The training window of chapter 4 and its answer key. ``U`` users, ``C`` categories.

    Attributes
    ----------
    train
        Training events of the global time split.
    vocab
        The ``C`` categories of the training window.
    counts
        ``(U, C)`` weighted counts (pv 1, fav 2, cart 3, buy 4) of every user with a training event.
    users
        ``(U,)`` sorted user ids, the rows of ``counts``.
    names
        Names of the planted segments.
    dominant, share, n_events
        ``(U,)`` each user's dominant segment, the share of their training events it explains
        and their number of training events (:func:`~interest_lib.models.clusters.dominant_segment`).
    """

    train: pd.DataFrame
    vocab: CategoryVocabulary
    counts: UserCategoryMatrix
    users: np.ndarray
    names: list[str]
    dominant: np.ndarray
    share: np.ndarray
    n_events: np.ndarray


def training_data(sim: Simulation) -> SegmentData:
    """The training window of ``sim``, its vocabulary and counts, and every user's dominant segment.

    Parameters
    ----------
    sim
        A simulated log with its truth.

    Returns
    -------
    SegmentData
    """
    truth = sim.truth
    train = split_by_time(sim.events).train
    vocab = features.CategoryVocabulary.fit(train)
    counts = features.behavior_matrix(train, vocab)
    users = counts.user_ids
    key = clusters.dominant_segment(train, truth.event_segment[train.index], users,
                                    len(truth.segment_names))
    return SegmentData(train, vocab, counts, users, truth.segment_names,
                       key["segment"].to_numpy(), key["share"].to_numpy(),
                       key["n_events"].to_numpy())


def idf_facts(
    counts: UserCategoryMatrix, transformer: TfidfTransformer, X: np.ndarray, X_raw: np.ndarray
) -> dict[str, Any]:
    """What the idf and the logarithm do: the idf of the most and least popular category, and
    how much one category dominates the median user vector.

    Parameters
    ----------
    counts
        ``(U, C)`` weighted counts.
    transformer
        The TF-IDF transformer fitted on ``counts.log1p()``.
    X, X_raw
        ``(U, C)`` unit-length TF-IDF vectors with a logarithmic and with a raw term frequency.

    Returns
    -------
    dict
        ``df_share`` ``(C,)`` share of users active in each category, ``idf`` ``(C,)``, and the
        floats ``idf_popular``, ``idf_rare``, ``df_popular``, ``df_rare``, ``idf_ratio``,
        ``top_raw``, ``top_log`` (median share of a vector's squared length in its top coordinate).
    """
    df_share = np.asarray((counts.matrix > 0).mean(axis=0)).ravel()
    idf = transformer.idf_
    return {
        "df_share": df_share,
        "idf": idf,
        "idf_popular": float(idf[df_share.argmax()]),
        "idf_rare": float(idf[df_share.argmin()]),
        "df_popular": float(df_share.max()),
        "df_rare": float(df_share.min()),
        "idf_ratio": float(idf[df_share.argmin()] / idf[df_share.argmax()]),
        "top_raw": float(np.median(X_raw.max(axis=1) ** 2)),
        "top_log": float(np.median(X.max(axis=1) ** 2)),
    }


def silhouette_reading(s: float) -> str:
    """The usual verbal reading of a mean silhouette (Kaufman & Rousseeuw)."""
    if s > 0.70:
        return "a strong structure"
    if s > 0.50:
        return "a reasonable structure"
    if s > 0.25:
        return "a weak structure"
    return "no substantial structure"


def cluster_names(mapping: ArrayLike, names: list[str]) -> list[str]:
    """'cluster 3 → baby' for matched clusters, 'cluster 7 (unmatched)' for the others.

    Parameters
    ----------
    mapping
        ``(k,)`` segment of every cluster, ``-1`` when unmatched.
    names
        Segment names.
    """
    return [f"cluster {c} → {names[s]}" if s >= 0 else f"cluster {c} (unmatched)"
            for c, s in enumerate(np.asarray(mapping))]


def profile_hits(centres: np.ndarray, mapping: np.ndarray, emission: np.ndarray) -> float:
    """Share of the 4 strongest categories of each matched cluster that are among the 10 most
    likely categories of its segment.

    Parameters
    ----------
    centres
        ``(k, C)`` cluster centroids.
    mapping
        ``(k,)`` segment of every cluster, ``-1`` when unmatched.
    emission
        ``(S, C)`` P(category | segment) in the vocabulary's order.
    """
    segment_top = np.argsort(-emission, axis=1)[:, :10]
    matched = np.flatnonzero(mapping >= 0)
    hits = [np.isin(np.argsort(-centres[c])[:4], segment_top[mapping[c]]).mean() for c in matched]
    return float(np.mean(hits))


def split_half_stability(V: np.ndarray, k: int, seed: int, n_init: int = 10) -> float:
    """ARI between the KMeans fits of two random halves of the rows, both applied to every row.

    Parameters
    ----------
    V
        ``(n, d)`` vectors.
    k
        Number of clusters.
    seed
        Seed of the halves and of both fits.
    n_init
        KMeans restarts per fit.
    """
    halves = np.array_split(np.random.default_rng(seed).permutation(len(V)), 2)
    fits = [clusters.fit_kmeans(V[h], k, seed=seed, n_init=n_init) for h in halves]
    return adjusted_rand_score(fits[0].predict(V), fits[1].predict(V))


def term_frequency_variants(
    X: np.ndarray, X_raw: np.ndarray, scores: pd.DataFrame, scores_raw: pd.DataFrame,
    labels: np.ndarray, dominant: np.ndarray, seed: int, n_init: int = 10,
) -> pd.DataFrame:
    """The logarithmic and the raw term frequency side by side, each at its own silhouette's ``k``.

    Parameters
    ----------
    X, X_raw
        ``(U, C)`` TF-IDF vectors with ``ln(1 + count)`` and with ``count`` as term frequency.
    scores, scores_raw
        :func:`~interest_lib.models.clusters.choose_k` tables of both (with ``ari`` and ``nmi``).
    labels
        ``(U,)`` KMeans labels of ``X`` at its chosen ``k``.
    dominant
        ``(U,)`` the answer key.
    seed, n_init
        Of the split-half fits.

    Returns
    -------
    pandas.DataFrame
        Rows ``tf = ln(1 + count)`` and ``tf = count``; columns the chosen ``k``, the silhouette
        there, the split-half stability (ARI), ARI and NMI at the chosen ``k``.
    """
    k_chosen = int(scores["silhouette"].idxmax())
    k_raw = int(scores_raw["silhouette"].idxmax())
    return pd.DataFrame(
        {
            "chosen k (silhouette)": [k_chosen, k_raw],
            "silhouette": [float(scores["silhouette"].max()), scores_raw["silhouette"].max()],
            "split-half stability (ARI)": [split_half_stability(X, k_chosen, seed, n_init),
                                           split_half_stability(X_raw, k_raw, seed, n_init)],
            "ARI at chosen k": [adjusted_rand_score(dominant, labels),
                                scores_raw.loc[k_raw, "ari"]],
            "NMI at chosen k": [normalized_mutual_info_score(dominant, labels),
                                scores_raw.loc[k_raw, "nmi"]],
        },
        index=["tf = ln(1 + count)", "tf = count"],
    )


def share_bins(share: ArrayLike) -> pd.Categorical:
    """Users binned by the share of their events from the dominant segment (< 50 % … ≥ 90 %)."""
    return pd.cut(share, [0, 0.5, 0.7, 0.9, 1.01], right=False,
                  labels=["< 50 %", "50–70 %", "70–90 %", "≥ 90 %"])


def error_table(right: ArrayLike, share: ArrayLike, n_events: ArrayLike) -> pd.DataFrame:
    """Users in their segment's cluster, by dominant share and by number of training events.

    Parameters
    ----------
    right
        ``(U,)`` whether each user's cluster is named after their dominant segment.
    share, n_events
        ``(U,)`` dominant share and training events of each user.

    Returns
    -------
    pandas.DataFrame
        Indexed by (grouping, bin); columns ``users`` and ``in their segment's cluster``.
    """
    right = pd.Series(np.asarray(right))
    by_events = pd.cut(n_events, [0, 10, 30, 80, np.inf], right=False,
                       labels=["< 10", "10–29", "30–79", "≥ 80"])
    return pd.concat(
        {
            "dominant share": right.groupby(share_bins(share), observed=False).agg(["size", "mean"]),
            "training events": right.groupby(by_events, observed=False).agg(["size", "mean"]),
        }
    ).rename(columns={"size": "users", "mean": "in their segment's cluster"})


def error_rates(
    right: ArrayLike, share: ArrayLike, n_events: ArrayLike, dominant: ArrayLike, labels: ArrayLike
) -> dict[str, float]:
    """Where the clusters err: accuracy of mixed, focused, light and heavy users.

    Parameters
    ----------
    right, share, n_events
        As in :func:`error_table`.
    dominant, labels
        ``(U,)`` the answer key and the cluster labels.

    Returns
    -------
    dict
        ``acc_mixed`` (share < 0.5), ``acc_focused`` (≥ 0.7), ``acc_light`` (< 10 events),
        ``acc_heavy`` (≥ 80 events) and ``ari_not_light``, the ARI of the users with at least 10
        events.
    """
    right, share, n_events = np.asarray(right), np.asarray(share), np.asarray(n_events)
    light = n_events < 10
    return {
        "acc_mixed": float(right[share < 0.5].mean()),
        "acc_focused": float(right[share >= 0.7].mean()),
        "acc_light": float(right[light].mean()),
        "acc_heavy": float(right[n_events >= 80].mean()),
        "ari_not_light": adjusted_rand_score(np.asarray(dominant)[~light],
                                             np.asarray(labels)[~light]),
    }


def limit_facts(
    X: np.ndarray, data: SegmentData, emission: np.ndarray, seed: int = 0, n_pairs: int = 20000
) -> dict[str, float]:
    """What limits the agreement of user clusters with the planted segments, in numbers.

    Parameters
    ----------
    X
        ``(U, C)`` unit-length TF-IDF user vectors.
    data
        The training window and answer key (:func:`training_data`).
    emission
        ``(S, C)`` P(category | segment) in the vocabulary's order (``truth.emission``).
    seed
        Seed of the random pairs of users.
    n_pairs
        Random pairs of users compared.

    Returns
    -------
    dict
        ``segment_categories``: median number of categories per segment (those for which the
        segment is the most likely source); ``own_mass``: median share of a segment's emission on
        them (the rest is shared with other segments or spread over all categories);
        ``user_categories``: median distinct categories per user; ``cos_same`` / ``cos_diff``:
        mean cosine similarity of random pairs of users with the same / a different dominant
        segment; ``no_shared_same``: share of the same-segment pairs without a common category.
    """
    owner = emission.argmax(axis=0)
    n_own = np.bincount(owner, minlength=len(emission))
    own_mass = np.array([emission[s, owner == s].sum() for s in range(len(emission))])
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(X), size=(2, n_pairs))
    keep = a != b
    a, b = a[keep], b[keep]
    cos = np.einsum("ij,ij->i", X[a], X[b])
    same = data.dominant[a] == data.dominant[b]
    return {
        "segment_categories": float(np.median(n_own)),
        "own_mass": float(np.median(own_mass)),
        "user_categories": float(np.median(data.counts.matrix.getnnz(axis=1))),
        "cos_same": float(cos[same].mean()),
        "cos_diff": float(cos[~same].mean()),
        "no_shared_same": float(np.mean(cos[same] <= 0)),
    }


@dataclass(eq=False)
class SessionRoute:
    """Sessions clustered and read back to users. ``N`` sessions, ``U`` users.

    Attributes
    ----------
    sessions
        The ``(N, C)`` session matrix.
    embedding
        ``(C, d)`` category coordinates from the PPMI spectrum; ``singular_values`` its spectrum.
    labels
        ``(N,)`` KMeans cluster of every session.
    user_segment
        ``(U,)`` the session cluster of most of each user's events.
    ari_sessions
        ARI of the session clusters against every session's planted segment.
    right
        ``(U,)`` whether the user's session cluster is matched to their dominant segment.
    """

    sessions: clusters.SessionMatrix
    embedding: np.ndarray
    singular_values: np.ndarray
    labels: np.ndarray
    user_segment: np.ndarray
    ari_sessions: float
    right: pd.Series


def session_route(
    data: SegmentData, event_segment: np.ndarray, k: int, seed: int = 0, n_init: int = 10
) -> SessionRoute:
    """Cluster the training sessions with KMeans and give each user the cluster of most events.

    Sessions (events less than 30 minutes apart) become the mean of their categories'
    coordinates from :func:`~interest_lib.models.clusters.category_embedding`, scaled to unit
    length.

    Parameters
    ----------
    data
        The training window and answer key.
    event_segment
        The planted segment of every event of the simulated log (``truth.event_segment``).
    k, seed, n_init
        Of the KMeans fit.
    """
    sessions = clusters.session_matrix(data.train, data.vocab)
    embedding, singular_values = clusters.category_embedding(sessions)  # dim from the spectral gap
    Z = clusters.session_vectors(sessions, embedding)
    session_truth = event_segment[data.train.index][sessions.first_row]
    labels = clusters.fit_kmeans(Z, k, seed=seed, n_init=n_init).labels_
    profiles = clusters.user_profiles(labels, sessions.user_ids, sessions.lengths, data.users, k)
    user_segment = profiles.argmax(axis=1)
    mapping = clusters.match_clusters(user_segment, data.dominant, k, len(data.names))
    return SessionRoute(sessions, embedding, singular_values, labels, user_segment,
                        adjusted_rand_score(session_truth, labels),
                        pd.Series(mapping[user_segment] == data.dominant))


@dataclass(eq=False)
class RulesCase:
    """A shallow decision tree that predicts each user's segment from readable features.

    Attributes
    ----------
    readable
        ``(U, C + 2)`` share of events per category, events, buy rate.
    cluster_label
        ``(k,)`` name of every cluster: its segment, or ``cluster c`` when unmatched.
    segment_label
        ``(U,)`` every user's cluster by that name.
    groups
        ``(C,)`` the cluster whose centroid weights each category most.
    grouped
        Share of events per group of categories, events, buy rate.
    tree, fidelity
        The tree on ``grouped`` and its held-out accuracy against ``segment_label``.
    fidelity_categories
        Held-out accuracy of a tree of the same depth on ``readable``.
    majority
        Share of the largest segment (always guessing it).
    """

    readable: pd.DataFrame
    cluster_label: list[str]
    segment_label: np.ndarray
    groups: np.ndarray
    grouped: pd.DataFrame
    tree: DecisionTreeClassifier
    fidelity: float
    fidelity_categories: float
    majority: float


def rules_case(
    data: SegmentData, labels: np.ndarray, mapping: np.ndarray, centres: np.ndarray,
    max_depth: int = 4, seed: int = 0,
) -> RulesCase:
    """Readable rules for the segments, and how faithful they are.

    Parameters
    ----------
    data
        The training window.
    labels
        ``(U,)`` KMeans labels of the users.
    mapping
        ``(k,)`` segment of every cluster, ``-1`` when unmatched.
    centres
        ``(k, C)`` cluster centroids.
    max_depth, seed
        Of :func:`~interest_lib.models.clusters.segment_rules`.
    """
    readable = clusters.category_shares(data.train, data.vocab, data.users)
    cluster_label = [data.names[s] if s >= 0 else f"cluster {c}" for c, s in enumerate(mapping)]
    segment_label = np.array(cluster_label)[labels]
    groups = clusters.category_groups(centres)
    grouped = clusters.group_shares(readable, groups, cluster_label)
    tree, fidelity = clusters.segment_rules(grouped, segment_label, max_depth=max_depth, seed=seed)
    _, fidelity_categories = clusters.segment_rules(readable, segment_label, max_depth=max_depth,
                                                    seed=seed)
    majority = pd.Series(segment_label).value_counts(normalize=True).iloc[0]
    return RulesCase(readable, cluster_label, segment_label, groups, grouped, tree, fidelity,
                     fidelity_categories, majority)


@dataclass(eq=False)
class PlatformVectors:
    """Each user's app events and web events as two TF-IDF vectors, the idf fitted on the app.

    Attributes
    ----------
    web
        The web events of the training window.
    app_counts, web_counts
        Weighted counts of the users with app (web) events.
    X_app, X_web
        Their unit-length log-TF-IDF vectors (dense).
    """

    web: pd.DataFrame
    app_counts: UserCategoryMatrix
    web_counts: UserCategoryMatrix
    X_app: np.ndarray
    X_web: np.ndarray


def platform_vectors(train: pd.DataFrame, vocab: CategoryVocabulary) -> PlatformVectors:
    """The app (source) and web (target) user vectors of the training window."""
    on_app = (train["platform"] == "app").to_numpy()
    app, web = train[on_app], train[~on_app]
    app_counts = features.behavior_matrix(app, vocab)
    web_counts = features.behavior_matrix(web, vocab)
    X_app, app_transformer = features.tfidf(app_counts.log1p())  # idf fitted on the source
    X_web = features.tfidf(web_counts.log1p(), app_transformer)[0].toarray(np.float64)
    return PlatformVectors(web, app_counts, web_counts, X_app.toarray(np.float64), X_web)


def transfer_comparison(
    vectors: PlatformVectors, source: KMeans, warm: KMeans, cold: KMeans,
    event_segment: np.ndarray, n_segments: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three ways to segment the web users, against the source model and the web answer key.

    Parameters
    ----------
    vectors
        The app and web vectors.
    source
        KMeans fitted on the app users.
    warm, cold
        KMeans refitted on the web users from the source centroids and from k-means++.
    event_segment
        The planted segment of every event of the simulated log.
    n_segments
        Number of planted segments.

    Returns
    -------
    (transfer, web_key)
        ``transfer``: rows source centroids kept fixed, refit from them, fresh fit; columns the
        share with the source model's cluster number, the ARI against the web users' dominant
        segments, the refit iterations. ``web_key``: the web users' answer key
        (:func:`~interest_lib.models.clusters.dominant_segment`).
    """
    web = vectors.web
    as_source = source.predict(vectors.X_web)  # what the source model calls each web user
    web_key = clusters.dominant_segment(web, event_segment[web.index],
                                        vectors.web_counts.user_ids, n_segments)
    web_truth = web_key["segment"].to_numpy()
    transfer = pd.DataFrame(
        {
            "same cluster number as the source model": [1.0, np.mean(warm.labels_ == as_source),
                                                        np.mean(cold.labels_ == as_source)],
            "ARI vs web dominant segments": [adjusted_rand_score(web_truth, m) for m in
                                             (as_source, warm.labels_, cold.labels_)],
            "refit iterations": [0, warm.n_iter_, cold.n_iter_],
        },
        index=["source centroids, kept fixed", "init = source centroids, refit",
               "init = k-means++, refit (fresh)"],
    )
    return transfer, web_key


def top_category_share(centres: np.ndarray) -> np.ndarray:
    """``(k,)`` share of each centroid's squared length in its largest coordinate."""
    return centres.max(axis=1) ** 2 / (centres ** 2).sum(axis=1)


def segments_chapter(sim: Simulation | None = None, *, seed: int = 0, **params: Any) -> dict[str, Any]:
    """Everything chapter 4 computes, with its parameters, in the chapter's order.

    Parameters
    ----------
    sim
        The simulated log (default: ``simulate(n_users=SEGMENT_DEFAULTS["n_users"], seed=seed)``).
    seed
        The chapter's one seed: of the log, every KMeans fit, every sample and the tree.
    **params
        Overrides of :data:`SEGMENT_DEFAULTS`.

    Returns
    -------
    dict
        ``data`` (:class:`SegmentData`), ``X``, ``X_raw``, ``scores``, ``scores_raw``,
        ``k_chosen``, ``k_elbow``, ``k_raw``, ``labels``, ``mapping``, ``right``, ``ari_users``,
        ``nmi_users``, ``profile_hits``, ``variants``, ``errors`` (:func:`error_rates`),
        ``limits`` (:func:`limit_facts`),
        ``reference`` and ``reference_segment`` (ARI and cross-validated predictions of
        :func:`~interest_lib.models.clusters.supervised_reference`),
        ``route`` (:class:`SessionRoute`), ``ari_profile``, ``rules`` (:class:`RulesCase`),
        ``vectors`` (:class:`PlatformVectors`), ``source``, ``transfer``.
    """
    unknown = set(params) - set(SEGMENT_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown parameter(s) {sorted(unknown)}")
    p = {**SEGMENT_DEFAULTS, **params}
    n_init, k_values = p["n_init"], list(p["k_values"])
    sim = simulate(n_users=p["n_users"], seed=seed) if sim is None else sim
    truth = sim.truth
    data = training_data(sim)
    X = features.tfidf(data.counts.log1p())[0].toarray(np.float64)
    X_raw = features.tfidf(data.counts)[0].toarray(np.float64)
    choice = {"seed": seed, "truth": data.dominant, "n_init": n_init,
              "silhouette_sample": p["silhouette_sample"]}
    scores, user_labels = clusters.choose_k(X, k_values, return_labels=True, **choice)
    scores_raw = clusters.choose_k(X_raw, k_values, **choice)
    k_chosen = int(scores["silhouette"].idxmax())
    labels = user_labels[k_chosen]
    mapping = clusters.match_clusters(labels, data.dominant, k_chosen, len(data.names))
    centres = clusters.centroids(X, labels, k_chosen)
    emission = truth.emission[:, truth.category_index(data.vocab.ids)]
    route = session_route(data, truth.event_segment, k_chosen, seed=seed, n_init=n_init)

    vectors = platform_vectors(data.train, data.vocab)
    source = clusters.fit_kmeans(vectors.X_app, k_chosen, seed=seed, n_init=n_init)
    source_centroids = clusters.centroids(vectors.X_app, source.labels_, k_chosen)
    warm = clusters.fit_kmeans(vectors.X_web, k_chosen, init=source_centroids, n_init=1)
    cold = clusters.fit_kmeans(vectors.X_web, k_chosen, seed=seed + 1, n_init=n_init)
    transfer, _ = transfer_comparison(vectors, source, warm, cold, truth.event_segment,
                                      len(data.names))
    right = mapping[labels] == data.dominant
    reference = clusters.supervised_reference(X, data.dominant, seed=seed, folds=5)
    return {
        "data": data, "X": X, "X_raw": X_raw, "scores": scores, "scores_raw": scores_raw,
        "k_chosen": k_chosen, "k_elbow": clusters.elbow_k(scores.index, scores["inertia"]),
        "k_raw": int(scores_raw["silhouette"].idxmax()), "labels": labels, "mapping": mapping,
        "right": right, "ari_users": adjusted_rand_score(data.dominant, labels),
        "nmi_users": normalized_mutual_info_score(data.dominant, labels),
        "profile_hits": profile_hits(centres, mapping, emission),
        "variants": term_frequency_variants(X, X_raw, scores, scores_raw, labels, data.dominant,
                                            seed, n_init),
        "errors": error_rates(right, data.share, data.n_events, data.dominant, labels),
        "limits": limit_facts(X, data, emission, seed=seed),
        "reference": reference[0], "reference_segment": reference[1],
        "route": route, "ari_profile": adjusted_rand_score(data.dominant, route.user_segment),
        "rules": rules_case(data, labels, mapping, centres, max_depth=p["tree_depth"], seed=seed),
        "vectors": vectors, "source": source, "transfer": transfer,
    }
