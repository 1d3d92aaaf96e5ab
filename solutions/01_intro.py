"""Reference answers to the exercises of lesson 01 (nbs/01_intro.ipynb). Try them yourself first."""
from collections import Counter
import numpy as np

MODULE = 'course_lib.intro'


def confusion_matrix(preds, targs, n_classes):
    "Cell [true, predicted] counts the pictures of class `true` predicted as `predicted`."
    cm = np.zeros((n_classes, n_classes), dtype=int)
    for p, t in zip(np.asarray(preds), np.asarray(targs)): cm[t, p] += 1
    return cm


def most_confused(cm, vocab, min_val=1):
    "Off-diagonal cells with a count of at least `min_val`, as (true label, predicted label, count), largest first."
    pairs = [(vocab[i], vocab[j], cm[i, j]) for i in range(len(vocab)) for j in range(len(vocab))
             if i != j and cm[i, j] >= min_val]
    return sorted(pairs, key=lambda t: t[2], reverse=True)


def majority_baseline(train_labels, valid_labels):
    "Accuracy on the validation labels of always answering the most common training label."
    top = Counter(train_labels).most_common(1)[0][0]
    return float(np.mean(np.asarray(valid_labels) == top))


def confusion_matrix_transposed(preds, targs, n_classes):
    "Wrong: rows are the predictions and columns the true classes."
    return confusion_matrix(preds, targs, n_classes).T


def most_confused_with_diagonal(cm, vocab, min_val=1):
    "Wrong: keeps the diagonal (the right answers) among the 'confusions'."
    pairs = [(vocab[i], vocab[j], cm[i, j]) for i in range(len(vocab)) for j in range(len(vocab)) if cm[i, j] >= min_val]
    return sorted(pairs, key=lambda t: t[2], reverse=True)


def majority_baseline_from_valid(train_labels, valid_labels):
    "Wrong: picks the most common label of the validation set, which a model cannot know in advance."
    top = Counter(valid_labels).most_common(1)[0][0]
    return float(np.mean(np.asarray(valid_labels) == top))


SOLUTIONS = {'01.confusion_matrix': confusion_matrix, '01.most_confused': most_confused,
             '01.majority_baseline': majority_baseline}
WRONG = {'01.confusion_matrix': confusion_matrix_transposed, '01.most_confused': most_confused_with_diagonal,
         '01.majority_baseline': majority_baseline_from_valid}
