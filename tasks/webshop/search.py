"""``search[...]``: BM25 over the products, as the original's Lucene index (``search_engine/``).

Each product is one document: its title, description, first bullet point and option text
(``name: v1, v2, and name2: ...``) joined and lower-cased, as ``convert_product_file_format.py``
writes them. The index is bm25s with Lucene's BM25 (Lucene 8 on, as pyserini 0.17 runs it: idf times
tf / (tf + k1 (1 - b + b dl / avgdl)); k1 = 0.9, b = 0.4, pyserini's defaults) over
tokens of Lucene's English analyser: word characters, Lucene's 33 English stop words removed, Porter
stems (PyStemmer). A query returns the best 50 products that share a term with it, by score, ties in
catalogue order (Lucene's doc-id order). Departures: Lucene's lossy norm encoding and its own
tokeniser rules (e.g. for apostrophes) are not reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evobench.tasks.webshop.schema import Product

SEARCH_RETURN_N = 50  # products a search returns (the original's SEARCH_RETURN_N)
K1, B = 0.9, 0.4
TOKEN_PATTERN = r"(?u)\b\w+\b"


def document(p: Product) -> str:
    """The indexed text of a product."""
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in p.options.items())
    first_bullet = p.bullet_points[0] if p.bullet_points else ""
    return " ".join([p.title, p.description, first_bullet, option_text]).lower()


class SearchEngine:
    """A BM25 index over ``products``; :meth:`search` returns product indices, best first."""

    def __init__(self, products: Sequence[Product]) -> None:
        import bm25s
        import Stemmer

        self._bm25s = bm25s
        self._stemmer = Stemmer.Stemmer("porter")
        self.n = len(products)
        corpus = self._tokens([document(p) for p in products])
        self.index = bm25s.BM25(k1=K1, b=B, method="lucene")
        self.index.index(corpus, show_progress=False)
        # bm25s keeps an empty-string placeholder in its vocabulary with no column in the index: a
        # query of stop words only tokenises to it, so it must not count as a known term
        self.vocab = set(self.index.vocab_dict) - {""}

    def _tokens(self, texts: list[str], ids: bool = True):
        return self._bm25s.tokenize(texts, lower=True, token_pattern=TOKEN_PATTERN, stopwords="en",
                                    stemmer=self._stemmer, return_ids=ids, show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every product for ``query`` (zeros when no query term is in the index)."""
        terms = [t for t in self._tokens([query], ids=False)[0] if t in self.vocab]
        if not terms:
            return np.zeros(self.n)
        return np.asarray(self.index.get_scores(terms), dtype=np.float64)

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> list[int]:
        """Indices of the best ``k`` products with a positive score, best first, ties by index."""
        s = self.scores(query)
        hits = np.flatnonzero(s > 0)
        order = hits[np.lexsort((hits, -s[hits]))]
        return order[:k].tolist()
