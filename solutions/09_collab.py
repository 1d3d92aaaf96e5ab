"Reference solutions for the exercises of nbs/09_collab.ipynb (try them yourself first)."
import numpy as np

MODULE = 'course_lib.collab'

def most_similar(factors, idx, k):
    "Indices of the `k` rows most cosine-similar to row `idx`, most similar first, `idx` left out."
    f = np.asarray(factors, np.float64)
    f = f/np.linalg.norm(f, axis=1, keepdims=True)
    sim = f @ f[idx]
    sim[idx] = -np.inf
    return np.argsort(-sim)[:k]

def embedding_grad(idx, grad_out, n):
    "Gradient of the `[n, k]` table: each looked-up row receives the sum of its rows of `grad_out`."
    g = np.zeros((n, np.shape(grad_out)[1]))
    np.add.at(g, np.asarray(idx), np.asarray(grad_out))
    return g

def _wrong_most_similar(factors, idx, k):          # dot product: long rows win whatever their direction
    f = np.asarray(factors, np.float64); sim = f @ f[idx]; sim[idx] = -np.inf
    return np.argsort(-sim)[:k]

def _wrong_embedding_grad(idx, grad_out, n):        # fancy-index assignment keeps only the last of repeated rows
    g = np.zeros((n, np.shape(grad_out)[1])); g[np.asarray(idx)] = np.asarray(grad_out)
    return g

SOLUTIONS = {'09.most_similar': most_similar, '09.embedding_grad': embedding_grad}
WRONG = {'09.most_similar': _wrong_most_similar, '09.embedding_grad': _wrong_embedding_grad}
